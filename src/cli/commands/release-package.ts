import path from 'node:path';
import type { Command } from 'commander';
import { formatBytes } from '../../fsutil/index.js';
import { packRelease, patchRelease, type ThinImageReport } from '../../release/index.js';
import { action } from '../context.js';
import { parseArch } from './release.js';

function countOperations(operations: {
  replace: { files: string[]; directories: string[] };
  delete: { files: string[]; directories: string[] };
}): string {
  const { replace, delete: remove } = operations;
  return (
    `replace ${replace.files.length} files, ${replace.directories.length} directories; ` +
    `delete ${remove.files.length} files, ${remove.directories.length} directories`
  );
}

/** `release pack` and `release patch` (SPEC 11), added to the `release` command made by registerRelease. */
export function registerReleasePackage(release: Command): void {
  release
    .command('pack')
    .description('make a full package (tar.gz) of a deployment folder, with its <file>.release.json sidecar')
    .argument('<dir>', 'the deployment folder (what goes into docker/ on the box)')
    .requiredOption('--version <version>', 'the release version')
    .option('--arch <arch>', 'x86_64 or aarch64', 'x86_64')
    .requiredOption('-o, --output <file>', 'package file, e.g. app-1.4.0.tar.gz')
    .action(
      action(async (context, dir: string, options: { version: string; arch: string; output: string }) => {
        const output = path.resolve(options.output);
        const sidecar = await packRelease({
          dir: path.resolve(dir),
          version: options.version,
          arch: parseArch(options.arch),
          output,
        });
        context.print(
          `wrote ${output} (${formatBytes(sidecar.size)}, sha256 ${sidecar.sha256}) and ${output}.release.json`,
          { file: output, ...sidecar },
        );
      }),
    );

  release
    .command('patch')
    .description('make a patch package with only what changed between two deployment folders, with its sidecar')
    .argument('<old_dir>', 'the deployment folder of the version the patch applies to')
    .argument('<new_dir>', 'the deployment folder of the new version')
    .requiredOption('--from <version>', 'the version of OLD_DIR')
    .requiredOption('--to <version>', 'the version of NEW_DIR')
    .option('--arch <arch>', 'x86_64 or aarch64', 'x86_64')
    .requiredOption('-o, --output <file>', 'package file, e.g. app-1.4.0.2-patch.tar.gz')
    .action(
      action(
        async (
          context,
          oldDir: string,
          newDir: string,
          options: { from: string; to: string; arch: string; output: string },
        ) => {
          const output = path.resolve(options.output);
          const images: ThinImageReport[] = [];
          const sidecar = await patchRelease({
            oldDir: path.resolve(oldDir),
            newDir: path.resolve(newDir),
            from: options.from,
            to: options.to,
            arch: parseArch(options.arch),
            output,
            onImage: (report) => images.push(report),
          });
          context.print(
            [
              `wrote ${output} (${formatBytes(sidecar.size)}, sha256 ${sidecar.sha256}) and ${output}.release.json`,
              `${options.from} → ${options.to}: ${countOperations(sidecar.operations!)}`,
              ...images.map(
                (image) =>
                  `${image.file}: ${image.thin ? 'thin' : 'whole'}, ` +
                  `${formatBytes(image.shippedSize)} of ${formatBytes(image.fullSize)}`,
              ),
            ],
            { file: output, ...sidecar },
          );
        },
      ),
    );
}
