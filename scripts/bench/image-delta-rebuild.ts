/**
 * The box's half of the image-delta benchmark, alone in its process so that its peak RSS is the
 * rebuild's: rebuilds the thin archives of argv[2] from the deployment folder argv[3].
 */
import { rebuildThinImages } from '../../src/images/index.js';

const started = process.hrtime.bigint();
await rebuildThinImages(process.argv[2]!, process.argv[3]!);
const ms = Number(process.hrtime.bigint() - started) / 1e6;
console.log(JSON.stringify({ ms, maxRssKiB: process.resourceUsage().maxRSS }));
