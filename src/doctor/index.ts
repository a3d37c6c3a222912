import { gatherFacts, type DoctorOptions } from './gather.js';
import { judgeFacts } from './judge.js';
import type { DoctorReport } from './types.js';

export {
  type ComposePorts,
  parseShortPort,
  portsFromComposeJson,
  portsFromComposeYaml,
  portsInDockerPs,
  type PublishedPort,
} from './compose-ports.js';
export { doctorDocker } from './docker.js';
export { type DoctorDocker, type DoctorOptions, gatherFacts } from './gather.js';
export { CLOCK_SKEW_LIMIT_MS, DISK_MARGIN, exitCodeOf, judgeFacts, verdictOf, withRepair } from './judge.js';
export { probePort } from './probe.js';
export type * from './types.js';

/** `nuwax doctor` (SPEC 11): gather the facts, then judge them; one line per check and a verdict. */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  return judgeFacts(await gatherFacts(options));
}
