import type { Command } from 'commander';
import { formatBytes } from '../../fsutil/index.js';
import { createDispatcher } from '../../manifest/index.js';
import { boxClientId } from '../../state/index.js';
import { rolloutStatus } from '../../strategy/index.js';
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
        const dispatcher = createDispatcher(context.config);
        const { current, fetched, decision } = await checkForUpdate({
          config: context.config,
          paths: context.paths,
          store: context.store,
          clientVersion: CLIENT_VERSION,
          forceFull: options.forceFull ?? false,
          allowDowngrade: options.allowDowngrade ?? false,
          logger: context.logger,
          ...(dispatcher ? { dispatcher } : {}),
        });
        const chosen = decision.strategy === 'none' ? null : decision.package;
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
        };
        const human = [
          `installed:  ${current ?? '(none)'}`,
          `offered:    ${fetched.manifest.version}${fetched.manifest.release_date ? ` (${fetched.manifest.release_date})` : ''}`,
          `strategy:   ${decision.strategy} — ${decision.reason}`,
        ];
        if (rollout) human.push(`rollout:    ${rollout.percent} % (this box: ${rollout.bucket.toFixed(2)})`);
        if (chosen)
          human.push(`package:    ${chosen.url}${chosen.size !== null ? ` (${formatBytes(chosen.size)})` : ''}`);
        // A patch with thin images is a fraction of the full package: say how much is saved.
        const full = (fetched.manifest.platforms?.[process.arch === 'arm64' ? 'aarch64' : 'x86_64'] ??
          fetched.manifest.packages?.full) as { size?: number | null } | null | undefined;
        if (decision.strategy === 'patch' && chosen?.size != null && full?.size)
          human.push(`download:   patch ${formatBytes(chosen.size)} instead of ${formatBytes(full.size)}`);
        human.push(`signature:  ${fetched.signed ? 'verified' : 'not checked (no public key configured)'}`);
        if (fetched.manifest.release_notes) human.push('', fetched.manifest.release_notes);
        context.print(human, json);
      }),
    );
}
