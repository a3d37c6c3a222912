import { z } from 'zod';
import { parseDuration, parseWindow } from './duration.js';

/**
 * The single source of truth for config.toml (SPEC 2). nuwax-cli's own keys are read as they are and
 * every section is loose, so a nuwax-cli file with keys we do not know loads unchanged.
 */
const duration = (fallback: number | string) =>
  z
    .union([z.number(), z.string()])
    .default(fallback)
    .transform((value, context) => {
      try {
        return parseDuration(value);
      } catch (error) {
        context.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    });

const window = z
  .string()
  .optional()
  .transform((value, context) => {
    if (value === undefined || value.trim() === '') return undefined;
    try {
      return parseWindow(value);
    } catch (error) {
      context.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });

const DEFAULT_PROTECTED = [
  'data',
  'upload',
  'project_workspace',
  'project_zips',
  'project_nginx',
  'project_init',
  'uv_cache',
];

/** nuwax-cli's release server (`DEFAULT_BASE_URL` in its client-core constants), used as it does. */
export const NUWAX_CLI_DEFAULT_BASE_URL = 'https://api-version.nuwax.com';

/** The default server, unless `$NUWAX_DEFAULT_BASE_URL` names another (a private mirror of it; tests). */
export function defaultBaseUrl(): string {
  return process.env.NUWAX_DEFAULT_BASE_URL || NUWAX_CLI_DEFAULT_BASE_URL;
}

/**
 * A config.toml written by nuwax-cli: it has the `[updates]` section nuwax-cli requires (and nuwax
 * never writes). With no `[server]` at all, nuwax-cli talks to its default server, and so do we.
 */
export function isNuwaxCliConfigWithoutServer(raw: unknown): boolean {
  if (!raw || typeof raw !== 'object') return false;
  const table = raw as Record<string, unknown>;
  return table.updates !== undefined && typeof table.updates === 'object' && table.server === undefined;
}

export const configSchema = z.looseObject({
  versions: z.looseObject({ docker_service: z.string().optional() }).default({}),
  docker: z
    .looseObject({
      compose_file: z.string().default('docker/docker-compose.yml'),
      project_name: z.string().optional(),
      stop_timeout: duration(10),
    })
    .default({ compose_file: 'docker/docker-compose.yml', stop_timeout: 10 }),
  server: z
    .looseObject({
      manifest_url: z.url().optional(),
      // nuwax's own releases (Tauri's latest.json); default {base_url}/api/v1/cli/versions/latest.json
      client_manifest_url: z.url().optional(),
      base_url: z.url().optional(),
      mirrors: z.array(z.url()).default([]),
      timeout: duration(30),
      ca_file: z.string().optional(),
    })
    .default({ mirrors: [], timeout: 30 }),
  security: z
    .looseObject({
      public_keys: z.array(z.string().min(1)).default([]),
      // minisign public keys that sign nuwax's own release archives (self-update)
      client_public_keys: z.array(z.string().min(1)).default([]),
      allow_unverified: z.boolean().default(false),
    })
    .default({ public_keys: [], client_public_keys: [], allow_unverified: false }),
  schedule: z
    .looseObject({
      check: z.string().default('*/30 * * * *'),
      window,
      jitter: duration('10m'),
      auto_apply: z.boolean().default(true),
      updates_lock: z.string().default('docker/data/updates.lock'),
      rate_limit_outside_window: z.number().int().min(0).optional(),
    })
    .default({
      check: '*/30 * * * *',
      window: undefined,
      jitter: 600,
      auto_apply: true,
      updates_lock: 'docker/data/updates.lock',
    }),
  download: z
    .looseObject({
      retries: z.number().int().min(0).max(100).default(5),
      stall_timeout: duration(30),
      rate_limit: z.number().int().min(0).default(0),
      min_rate: z.number().int().min(0).default(1024),
      min_rate_window: duration(60),
    })
    .default({ retries: 5, stall_timeout: 30, rate_limit: 0, min_rate: 1024, min_rate_window: 60 }),
  archive: z
    .looseObject({
      max_ratio: z.number().min(1).default(20),
      max_size: z.number().int().min(0).default(0),
    })
    .default({ max_ratio: 20, max_size: 0 }),
  backup: z
    .looseObject({
      storage_dir: z.string().default('backups'),
      include: z.array(z.string()).default(['data']),
      retention: z
        .looseObject({ count: z.number().int().min(1).optional(), days: z.number().min(0).optional() })
        .default({ count: 5 }),
      compression: z.number().int().min(0).max(9).default(6),
    })
    .default({ storage_dir: 'backups', include: ['data'], retention: { count: 5 }, compression: 6 }),
  cache: z
    .looseObject({ download_dir: z.string().default('cache/downloads') })
    .default({ download_dir: 'cache/downloads' }),
  upgrade: z
    .looseObject({
      protected: z.array(z.string()).default(DEFAULT_PROTECTED),
      phase_timeout: duration('10m'),
      migration_timeout: duration('10m'),
      rollback_on: z.enum(['critical', 'any']).default('critical'),
    })
    .default({ protected: DEFAULT_PROTECTED, phase_timeout: 600, migration_timeout: 600, rollback_on: 'critical' }),
  health: z
    .looseObject({
      timeout: duration(180),
      settle: duration(10),
      critical: z.array(z.string()).optional(),
      http: z.array(z.object({ url: z.url(), status: z.number().int().default(200) })).default([]),
      // The daemon's look at the live application between upgrades; 0 = never.
      watch: duration(0),
      auto_repair: z.boolean().default(false),
      auto_repair_max_per_hour: z.number().int().min(1).default(3),
    })
    .default({ timeout: 180, settle: 10, http: [], watch: 0, auto_repair: false, auto_repair_max_per_hour: 3 }),
  notify: z.looseObject({ webhooks: z.array(z.url()).default([]) }).default({ webhooks: [] }),
  // node_exporter's textfile collector, e.g. /var/lib/node_exporter/textfile_collector/nuwax.prom.
  metrics: z.looseObject({ textfile: z.string().min(1).optional() }).default({}),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
