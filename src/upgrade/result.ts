import type { NuwaxError } from '../errors/index.js';
import type { UpgradeResult } from '../events/index.js';

export type { Diagnosis, StepTiming, UpgradeResult } from '../events/index.js';

/** SPEC 8 exit codes. */
export function exitCodeFor(result: UpgradeResult): number {
  switch (result.status) {
    case 'success':
    case 'up_to_date':
    case 'staged':
      return 0;
    case 'partial_success':
      return 3;
    case 'failed':
      if ('changed' in result) return 1;
      return result.recovered ? 4 : 5;
  }
}

export function errorJson(error: NuwaxError): { code: string; message: string } {
  return { code: error.code, message: error.message };
}
