/** The benchmark tree of backup.ts and restore.ts: files of 1-64 KiB, half text, half random, and big files. */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const WORDS = (
  'the quick brown fox jumps over a lazy dog while nuwax keeps every edge box up to date ' +
  'and never leaves it broken'
).split(' ');

export function textOf(size: number): Buffer {
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const words = Array.from({ length: 12 }, () => WORDS[Math.floor(Math.random() * WORDS.length)]);
    const line = `${words.join(' ')} ${length}\n`;
    parts.push(line);
    length += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

export function buildTree(root: string, files: number, big: number, bigMiB: number): number {
  let bytes = 0;
  for (let index = 0; index < files; index += 1) {
    const folder = path.join(root, 'data', `d${index % 50}`, `e${index % 7}`);
    if (index < 350) mkdirSync(folder, { recursive: true });
    const size = 1024 + Math.floor(Math.random() * 63 * 1024);
    writeFileSync(
      path.join(folder, `f${index}.${index % 2 ? 'bin' : 'txt'}`),
      index % 2 ? randomBytes(size) : textOf(size),
    );
    bytes += size;
  }
  mkdirSync(path.join(root, 'images'), { recursive: true });
  for (let index = 0; index < big; index += 1) {
    const file = path.join(root, 'images', `image${index}.tar`);
    for (let mib = 0; mib < bigMiB; mib += 1)
      writeFileSync(file, mib % 2 ? randomBytes(1 << 20) : textOf(1 << 20), { flag: 'a' });
    bytes += bigMiB << 20;
  }
  return bytes;
}
