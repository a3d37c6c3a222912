import { prepareState, type UpgradeStep } from '../context.js';

/** Resumable, verified while written; a package in the download cache is reused. */
export const downloading: UpgradeStep = {
  name: 'downloading',
  phase: 'prepare',
  downtime: false,
  noReturn: false,
  summary: 'download the package (resumed, mirrors in turn, hashed while written)',
  async run(context, signal) {
    const prepare = prepareState(context);
    const { decision } = prepare;
    const download = await context.collaborators.downloader.download({
      urls: [decision.package.url, ...decision.package.mirrors],
      sha256: decision.package.sha256,
      size: decision.package.size,
      signal,
      onProgress: context.emit,
    });
    prepare.download = download;
    return undefined;
  },
};
