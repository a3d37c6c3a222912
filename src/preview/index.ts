export { type DowntimeHistory, describeDowntime, downtimeHistory } from './downtime.js';
export { planRestore, type RestorePlan, type RestorePlanOptions, renderRestorePlan } from './restore.js';
export { previewUpgrade, renderUpgradePreview, type UpgradePreview, type UpgradePreviewOptions } from './upgrade.js';
