import { z } from 'zod';
import { checkRelativePath } from '../fsutil/index.js';
import { isValidVersion } from '../versions/index.js';

/** SPEC 4: `sha256:<hex>` or bare hex; nuwax's "external" (or empty) means unknown. */
export type PackageHash = { algorithm: 'sha256'; hex: string } | { algorithm: 'external' };

const hash = z
  .string()
  .optional()
  .transform((value, context): PackageHash => {
    const text = (value ?? '').trim();
    if (text === '' || text.toLowerCase() === 'external') return { algorithm: 'external' };
    const match = /^(?:sha256:)?([0-9a-fA-F]{64})$/.exec(text);
    if (!match) {
      context.addIssue({ code: 'custom', message: 'expected "sha256:<64 hex digits>", 64 hex digits or "external"' });
      return z.NEVER;
    }
    return { algorithm: 'sha256', hex: match[1]!.toLowerCase() };
  });

const version = z.string().refine(isValidVersion, { message: 'expected a version like 1.4.0, 1.4.0.2 or 1.5.0-rc.1' });

const relativePath = z.string().transform((value, context) => {
  try {
    return checkRelativePath(value, 'operation path');
  } catch (error) {
    context.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const pathGroup = z
  .looseObject({ files: z.array(relativePath).default([]), directories: z.array(relativePath).default([]) })
  .default({ files: [], directories: [] });

export const operationsSchema = z.looseObject({ replace: pathGroup, delete: pathGroup }).default({
  replace: { files: [], directories: [] },
  delete: { files: [], directories: [] },
});

const packageRef = z.looseObject({
  url: z.string().min(1),
  hash,
  signature: z.string().optional(),
  size: z.number().int().nonnegative().optional(),
  mirrors: z.array(z.string().min(1)).default([]),
});

const patchRef = packageRef.extend({
  from: z.array(version).optional(),
  operations: operationsSchema,
});

const arches = <T extends z.ZodType>(item: T) => z.looseObject({ x86_64: item.optional(), aarch64: item.optional() });

export const manifestSchema = z.looseObject({
  version,
  release_date: z.string().optional(),
  release_notes: z.string().optional(),
  packages: z.looseObject({ full: packageRef.optional(), patch: packageRef.optional() }).optional(),
  platforms: arches(packageRef).optional(),
  patch: arches(patchRef).optional(),
  mirrors: z.array(z.string().min(1)).default([]),
  expires: z.iso.datetime({ offset: true }).optional(),
  min_client: version.optional(),
  rollout: z.looseObject({ percent: z.number().min(0).max(100), salt: z.string().optional() }).optional(),
});

export type Manifest = z.output<typeof manifestSchema>;
export type PackageRef = z.output<typeof packageRef>;
export type PatchRef = z.output<typeof patchRef>;
export type PatchOperations = z.output<typeof operationsSchema>;
export type ManifestArch = 'x86_64' | 'aarch64';
