import { rm } from 'node:fs/promises';
import { ErrorCodes, NuwaxError } from '../../errors/index.js';
import { sha256File } from '../../fsutil/index.js';
import { prepareState, type UpgradeStep } from '../context.js';

/** The downloader hashed while writing; a reused or staged file is hashed again before use. */
export const verifying: UpgradeStep = {
  name: 'verifying',
  phase: 'prepare',
  downtime: false,
  noReturn: false,
  summary: 'hash a reused package again against the manifest',
  async run(context, signal) {
    const prepare = prepareState(context);
    const download = prepare.download!;
    const sha256 = prepare.decision.package.sha256;
    if (sha256 && download.reused && (await sha256File(download.path, signal)).sha256 !== sha256) {
      await rm(download.path, { force: true });
      throw new NuwaxError(
        ErrorCodes.E_HASH_MISMATCH,
        `The staged package ${download.path} no longer matches its hash; it was deleted`,
        { details: { expected: sha256 } },
      );
    }
    context.plan.packagePath = download.path;
    return undefined;
  },
};
