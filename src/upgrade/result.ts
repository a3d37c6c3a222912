import type { NuwaxError } from '../errors/index.js';
import type { Diagnosis } from './diagnosis.js';

/** SPEC 8 results, as printed with --json and stored in SQLite. */
export type UpgradeResult =
  | {
      status: 'success';
      from: string | null;
      version: string;
      strategy: string;
      executed_scripts: string[];
      backup_id: number | null;
      downtime_ms: number;
      steps: StepTiming[];
      fallback_reason?: string;
      upgrade_id: number;
    }
  | { status: 'up_to_date'; version: string | null; offered: string; reason: string }
  | { status: 'staged'; version: string; strategy: string; package: string; upgrade_id: number; steps: StepTiming[] }
  | {
      status: 'partial_success';
      from: string | null;
      version: string;
      strategy: string;
      healthy_services: string[];
      unhealthy_services: string[];
      severity: 'non-critical';
      recommendation: string;
      backup_id: number | null;
      downtime_ms: number;
      steps: StepTiming[];
      upgrade_id: number;
    }
  | { status: 'failed'; error: { code: string; message: string }; step: string; changed: false; upgrade_id?: number }
  | {
      status: 'failed';
      error: { code: string; message: string };
      step: string;
      recovered: boolean;
      previous_version: string | null;
      backup_id: number | null;
      diagnosis: Diagnosis;
      bundle?: string;
      manual_steps?: string[];
      upgrade_id: number;
    };

export interface StepTiming {
  step: string;
  ms: number;
}

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
