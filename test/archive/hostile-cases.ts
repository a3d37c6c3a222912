import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tarStream from 'tar-stream';

export type HostileEntry = {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'fifo';
  linkname?: string;
  content?: string;
};

/** A tar.gz with exactly these entries, as an attacker would write it (tar-stream does not sanitise). */
export async function hostileTar(file: string, entries: HostileEntry[]): Promise<void> {
  const pack = tarStream.pack();
  const writing = pipeline(pack, createGzip(), createWriteStream(file));
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    if (type === 'file') pack.entry({ name: entry.name, type }, entry.content ?? 'evil');
    else
      pack.entry({
        name: entry.name,
        type,
        linkname: entry.linkname ?? '',
        ...(type === 'character-device' ? { devmajor: 1, devminor: 3 } : {}),
      });
  }
  pack.finalize();
  await writing;
}

/** Each case: the entries, and the entry name the error must mention. */
export const HOSTILE_CASES: Array<[string, HostileEntry[], string]> = [
  ['../x escapes', [{ name: '../x' }], '../x'],
  ['a/../../x escapes', [{ name: 'a/../../x' }], 'a/../../x'],
  ['/etc/x is absolute', [{ name: '/etc/x' }], '/etc/x'],
  ['C:/x has a drive letter', [{ name: 'C:/x' }], 'C:/x'],
  [
    'a symlink to / then a file through it',
    [{ name: 'root', type: 'symlink', linkname: '/' }, { name: 'root/tmp/evil' }],
    'root',
  ],
  [
    'a relative symlink out then a file through it',
    [{ name: 'up', type: 'symlink', linkname: '../..' }, { name: 'up/evil' }],
    'up',
  ],
  [
    'a symlink inside, then a file written through it',
    [{ name: 'real', type: 'directory' }, { name: 'alias', type: 'symlink', linkname: 'real' }, { name: 'alias/evil' }],
    'alias/evil',
  ],
  [
    'a file entry that replaces an earlier symlink entry of the same name',
    [{ name: 'f', type: 'symlink', linkname: 'g' }, { name: 'f' }],
    '"f"',
  ],
  [
    'a chain of links that each look inside but lead out',
    [
      { name: 'a', type: 'symlink', linkname: '.' },
      { name: 'b', type: 'symlink', linkname: 'a/..' },
    ],
    '"b"',
  ],
  ['a hard link out', [{ name: 'passwd', type: 'link', linkname: '../../etc/passwd' }], 'passwd'],
  [
    'a hard link to a file outside reached through a symlink',
    [
      { name: 'a', type: 'symlink', linkname: '.' },
      { name: 'b', type: 'symlink', linkname: 'a/..' },
      { name: 'h', type: 'link', linkname: 'b/outside.txt' },
    ],
    '"h"',
  ],
  ['a hard link with .. in its target', [{ name: 'h', type: 'link', linkname: 'x/../../outside.txt' }], '"h"'],
  [
    'a hard link to something not extracted before',
    [{ name: 'h', type: 'link', linkname: 'later' }, { name: 'later' }],
    '"h"',
  ],
  ['a device node', [{ name: 'null', type: 'character-device' }], 'null'],
  ['a fifo', [{ name: 'pipe', type: 'fifo' }], 'pipe'],
];
