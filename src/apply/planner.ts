import { readdir } from 'node:fs/promises';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import type { MoveStep } from './undo-journal.js';
import { isWithin, parentOf, type ProtectedPaths } from './protected.js';
import { type EntryKind, KindCache } from './tree.js';
import { METADATA_DIR, type PatchOperations } from './types.js';

type BoxKind = EntryKind | 'none';
/** What a planned step leaves at a path: installed from staging, a created directory, or nothing. */
type Override = 'installed' | 'created' | 'none';

export interface MovePlan {
  steps: MoveStep[];
  replaced: string[];
  deleted: string[];
  skippedProtected: string[];
}

/**
 * Turns a full or patch apply into a list of renames and directory creations, reading the box
 * and the staging folder but changing nothing, so that any refusal happens before the first
 * change (SPEC 5). It keeps a view of the box as the steps so far would leave it.
 */
export class MovePlanner {
  private readonly overrides = new Map<string, Override>();
  private readonly box: KindCache;
  private readonly staged: KindCache;
  private readonly plan: MovePlan = { steps: [], replaced: [], deleted: [], skippedProtected: [] };

  constructor(
    private readonly dockerDir: string,
    stagedRoot: string,
    private readonly protectedPaths: ProtectedPaths,
  ) {
    this.box = new KindCache(dockerDir);
    this.staged = new KindCache(stagedRoot);
  }

  /** SPEC 5 full: every entry of docker/ is replaced by the package's, except protected paths. */
  async full(): Promise<MovePlan> {
    const root = await this.locate('');
    if (root.kind === 'none') this.push({ op: 'mkdir', path: '' }, 'created');
    else if (root.kind !== 'directory')
      throw new NuwaxError(ErrorCodes.E_APPLY, `${this.dockerDir} is not a directory`);
    await this.merge('');
    return this.result();
  }

  /** SPEC 5 patch: delete first, then replace, so a path in both ends replaced. */
  async patch(operations: PatchOperations): Promise<MovePlan> {
    const root = await this.locate('');
    if (root.kind === 'none') this.push({ op: 'mkdir', path: '' }, 'created');
    for (const target of [...operations.delete.directories, ...operations.delete.files])
      await this.remove(target, true);
    // A directory inside another replaced one is installed with it, and so is a file inside one.
    const directories = outermost(operations.replace.directories);
    for (const target of directories) await this.replace(target);
    for (const target of operations.replace.files) {
      if (!directories.some((directory) => isWithin(target, directory))) await this.replace(target);
    }
    return this.result();
  }

  private result(): MovePlan {
    const replaced = new Set(this.plan.replaced);
    return { ...this.plan, deleted: this.plan.deleted.filter((entry) => !replaced.has(entry)) };
  }

  private push(step: MoveStep, override: Override): void {
    this.plan.steps.push(step);
    this.overrides.set(step.path, override);
  }

  private skip(relative: string): void {
    if (!this.plan.skippedProtected.includes(relative)) this.plan.skippedProtected.push(relative);
  }

  private async replace(relative: string): Promise<void> {
    // A protected path is never overwritten; one the box does not have at all is installed
    // (a first install gets the package's defaults, e.g. project_init/).
    const guard = this.protectedPaths.covering(relative);
    if (guard !== undefined && (await this.existedBefore(guard))) return this.skip(relative);
    const staged = await this.stagedKind(relative);
    const box = await this.locate(relative);
    if (box.kind === 'directory' && this.protectedPaths.inside(relative)) {
      // Replacing the directory whole would take the protected path inside it with it.
      if (staged === 'directory') return this.merge(relative);
      return this.skip(relative);
    }
    await this.ensureParents(relative);
    if (box.kind !== 'none') this.push({ op: 'remove', path: relative }, 'none');
    this.push({ op: 'install', path: relative }, 'installed');
    this.plan.replaced.push(relative);
  }

  private async remove(relative: string, explicit: boolean): Promise<void> {
    if (this.protectedPaths.covers(relative)) {
      if (explicit) this.skip(relative);
      return;
    }
    const box = await this.locate(relative);
    if (box.kind === 'none') return;
    if (box.kind === 'directory' && this.protectedPaths.inside(relative)) {
      for (const child of await this.boxChildren(relative)) await this.remove(child, false);
      return;
    }
    this.push({ op: 'remove', path: relative }, 'none');
    this.plan.deleted.push(relative);
  }

  /** Both sides are directories: replace child by child (a protected path lies inside). */
  private async merge(relative: string): Promise<void> {
    const staged = new Set((await readdir(this.staged.absolute(relative))).map((name) => join(relative, name)));
    if (relative === '') staged.delete(METADATA_DIR);
    const box = await this.boxChildren(relative);
    for (const child of [...new Set([...staged, ...box])].sort()) {
      if (staged.has(child)) await this.replace(child);
      else if (!(relative === '' && child === METADATA_DIR)) await this.remove(child, false);
    }
  }

  /** Every parent of a path to install must be a real directory: a file or a symlink there is replaced by one. */
  private async ensureParents(relative: string): Promise<void> {
    const parts = relative.split('/');
    for (let depth = 1; depth < parts.length; depth += 1) {
      const ancestor = parts.slice(0, depth).join('/');
      const box = await this.locate(ancestor);
      if (box.kind === 'directory') continue;
      if (box.kind !== 'none') {
        this.push({ op: 'remove', path: ancestor }, 'none');
        this.plan.deleted.push(ancestor);
      }
      this.push({ op: 'mkdir', path: ancestor }, 'created');
    }
  }

  /**
   * What the box would hold at a path after the steps planned so far, and where it comes from.
   * The chain of parents is checked first, so no lookup ever goes through a symlink.
   */
  private async locate(relative: string): Promise<{ kind: BoxKind; where: 'disk' | 'staged' | 'created' }> {
    const override = this.overrides.get(relative);
    if (override === 'installed') return { kind: await this.stagedKind(relative), where: 'staged' };
    if (override === 'created') return { kind: 'directory', where: 'created' };
    if (override === 'none') return { kind: 'none', where: 'disk' };
    if (relative !== '') {
      const parent = await this.locate(parentOf(relative));
      if (parent.kind !== 'directory' || parent.where === 'created') return { kind: 'none', where: 'disk' };
      if (parent.where === 'staged') return { kind: await this.stagedKind(relative), where: 'staged' };
    }
    return { kind: await this.diskKind(relative), where: 'disk' };
  }

  /** The path was on the box before the apply (its parents real directories). */
  private async existedBefore(relative: string): Promise<boolean> {
    const parts = relative.split('/');
    for (let depth = 0; depth < parts.length; depth += 1) {
      if ((await this.diskKind(parts.slice(0, depth).join('/'))) !== 'directory') return false;
    }
    return (await this.diskKind(relative)) !== 'none';
  }

  private diskKind(relative: string): Promise<BoxKind> {
    return this.box.kind(relative);
  }

  private stagedKind(relative: string): Promise<BoxKind> {
    return this.staged.kind(relative);
  }

  private async boxChildren(relative: string): Promise<string[]> {
    const where = await this.locate(relative);
    const names = new Set<string>();
    if (where.where === 'disk')
      for (const name of await readdir(this.box.absolute(relative))) names.add(join(relative, name));
    if (where.where === 'staged')
      for (const name of await readdir(this.staged.absolute(relative))) names.add(join(relative, name));
    for (const key of this.overrides.keys()) if (key !== '' && parentOf(key) === relative) names.add(key);
    const present: string[] = [];
    for (const name of [...names].sort()) if ((await this.locate(name)).kind !== 'none') present.push(name);
    return present;
  }
}

function join(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

/** Drops paths that lie inside another path of the list. */
function outermost(paths: string[]): string[] {
  return [...new Set(paths)].filter(
    (candidate) => !paths.some((other) => other !== candidate && isWithin(candidate, other)),
  );
}
