import path from 'node:path';
import type { PatchOperations } from '../../src/apply/index.js';
import { type TreeSpec, writeTree } from './trees.js';

/** The box before an upgrade: app files, a symlink, an empty folder and protected data. */
export const BOX: TreeSpec = {
  'docker-compose.yml': 'services: {app: {image: app:1}}\n',
  '.env': 'A=1\n',
  'app/app.jar': 'jar v1',
  'app/lib/a.so': 'a v1',
  'app/lib/b.so': 'b v1',
  'app/run.sh': { content: '#!/bin/sh\necho v1\n', mode: 0o755 },
  'front/index.html': 'front v1',
  'front/assets/x.js': 'x v1',
  'old.txt': 'old',
  'link-to-app': { link: 'app' },
  empty: { dir: true },
  'data/db.sqlite': 'precious rows',
  'data/sub/file': 'precious too',
  'upload/u.png': 'image bytes',
};

/** A full package of the next version; it carries a data/ (protected: must not land) and a project_init/ the box lacks. */
export const FULL_PACKAGE: TreeSpec = {
  'docker-compose.yml': 'services: {app: {image: app:2}}\n',
  '.env': 'A=2\n',
  'app/app.jar': 'jar v2',
  'app/run.sh': { content: '#!/bin/sh\necho v2\n', mode: 0o755 },
  'front/index.html': 'front v2',
  'new.txt': 'new',
  'data/db.sqlite': 'must never land',
  'project_init/init.sql': 'create table t;',
  '.nuwax/meta.json': '{}',
};

/** What docker/ holds after the full apply. */
export const AFTER_FULL: TreeSpec = {
  'docker-compose.yml': 'services: {app: {image: app:2}}\n',
  '.env': 'A=2\n',
  'app/app.jar': 'jar v2',
  'app/run.sh': { content: '#!/bin/sh\necho v2\n', mode: 0o755 },
  'front/index.html': 'front v2',
  'new.txt': 'new',
  'data/db.sqlite': 'precious rows',
  'data/sub/file': 'precious too',
  'upload/u.png': 'image bytes',
  'project_init/init.sql': 'create table t;',
};

export const PATCH_OPERATIONS: PatchOperations = {
  replace: { files: ['app/app.jar', 'front/index.html', 'conf/new/deep.conf'], directories: ['front/assets'] },
  delete: { files: ['old.txt', 'front/index.html'], directories: ['empty', 'app/lib'] },
};

export const PATCH_PACKAGE: TreeSpec = {
  'app/app.jar': 'jar v2',
  'front/index.html': 'front v2',
  'conf/new/deep.conf': 'deep',
  'front/assets/y.js': 'y v2',
  '.nuwax/patch.json': '{}',
};

export const AFTER_PATCH: TreeSpec = {
  'docker-compose.yml': 'services: {app: {image: app:1}}\n',
  '.env': 'A=1\n',
  'app/app.jar': 'jar v2',
  'app/run.sh': { content: '#!/bin/sh\necho v1\n', mode: 0o755 },
  'front/index.html': 'front v2',
  'front/assets/y.js': 'y v2',
  'link-to-app': { link: 'app' },
  'conf/new/deep.conf': 'deep',
  'data/db.sqlite': 'precious rows',
  'data/sub/file': 'precious too',
  'upload/u.png': 'image bytes',
};

/** docker/, staging/ and undo/ side by side in one folder (one filesystem, as under a nuwax home). */
export function layout(
  root: string,
  box: TreeSpec | null,
  staged: TreeSpec,
): { dockerDir: string; stagedRoot: string; undoDir: string; expected: string } {
  const dockerDir = path.join(root, 'docker');
  const stagedRoot = path.join(root, 'cache', 'staging');
  if (box) writeTree(dockerDir, box);
  writeTree(stagedRoot, staged);
  return {
    dockerDir,
    stagedRoot,
    undoDir: path.join(root, 'cache', 'undo', '1'),
    expected: path.join(root, 'expected'),
  };
}
