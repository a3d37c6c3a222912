import type { Command } from 'commander';
import { serverChoice } from '../../config/index.js';
import { formatBytes } from '../../fsutil/index.js';
import { createDispatcher } from '../../manifest/index.js';
import { boxClientId } from '../../state/index.js';
import { fullPackageSize, rolloutStatus } from '../../strategy/index.js';
import { checkForUpdate } from '../../upgrade/check.js';
import { CLIENT_VERSION } from '../client-version.js';
import { action } from '../context.js';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('ask the release server what it offers and what nuwax would do about it (changes nothing)')
    .option('--force-full', 'decide as if a full package were asked for')
    .option('--allow-downgrade', 'accept a version lower than the installed one')
    .action(
      action(async (context, options: { forceFull?: boolean; allowDowngrade?: boolean }) => {
        const { current, fetched, decision } = await checkForUpdate({
          config: context.config,
          paths: context.paths,
          store: context.store,
          clientVersion: CLIENT_VERSION,
          forceFull: options.forceFull ?? false,
          allowDowngrade: options.allowDowngrade ?? false,
          logger: context.logger,
          dispatcher: createDispatcher(context.config),
        });
        const chosen = decision.strategy === 'none' ? null : decision.package;
        const choice = serverChoice(context.config);
        const server = { url: fetched.url, mode: choice?.mode ?? null, default: choice?.isDefault ?? false };
        const { manifest } = fetched;
        const rollout = rolloutStatus(manifest.rollout, boxClientId(context.store.kv), manifest.version);
        const json = {
          current,
          offered: fetched.manifest.version,
          strategy: decision.strategy,
          reason: decision.reason,
          package: chosen
            ? { url: chosen.url, size: chosen.size, hash: chosen.sha256 ? `sha256:${chosen.sha256}` : 'external' }
            : null,
          signed: fetched.signed,
          notes: fetched.manifest.release_notes ?? null,
          release_date: fetched.manifest.release_date ?? null,
          not_modified: fetched.notModified,
          rollout,
          server,
          warnings: decision.warnings,
          unusable: decision.unusable,
        };
        const serverNote = server.default ? " (nuwax-cli's default server: config.toml has no [server])" : '';
        const released = fetched.manifest.release_date ? ` (${fetched.manifest.release_date})` : '';
        const human = [
          `installed:  ${current ?? '(none)'}`,
          `offered:    ${fetched.manifest.version}${released}`,
          `strategy:   ${decision.strategy} — ${decision.reason}`,
        ];
        if (rollout) human.push(`rollout:    ${rollout.percent} % (this box: ${rollout.bucket.toFixed(2)})`);
        if (chosen)
          human.push(`package:    ${chosen.url}${chosen.size !== null ? ` (${formatBytes(chosen.size)})` : ''}`);
        // A patch with thin images is a fraction of the full package: say how much is saved.
        const fullSize = fullPackageSize(manifest, decision.arch);
        if (decision.strategy === 'patch' && chosen?.size != null && fullSize)
          human.push(`download:   patch ${formatBytes(chosen.size)} instead of ${formatBytes(fullSize)}`);
        human.push(`server:     ${server.url}${serverNote}`);
        human.push(`signature:  ${fetched.signed ? 'verified' : 'not checked (no public key configured)'}`);
        for (const warning of decision.warnings) human.push(`warning:    ${warning}`);
        for (const part of decision.unusable) human.push(`unusable:   ${part.part}: ${part.reasons.join('; ')}`);
        if (fetched.manifest.release_notes) human.push('', fetched.manifest.release_notes);
        context.print(human, json);
      }),
    );
}
