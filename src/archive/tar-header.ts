/**
 * POSIX ustar headers, with a pax extended header ('x') when a name, a link target or a size does
 * not fit the fixed fields. GNU tar, bsdtar and tar-stream read this format. Written by hand so that
 * the packer can hand whole buffers to the gzip members without a stream per entry.
 */
export const BLOCK = 512;

export type TarEntryType = 'file' | 'directory' | 'symlink';

export interface TarHeader {
  name: string;
  type: TarEntryType;
  size: number;
  mode: number;
  /** A Date, or milliseconds since the epoch (Stats.mtimeMs). */
  mtime: Date | number;
  linkname?: string;
}

const TYPE_FLAGS: Record<TarEntryType | 'pax', string> = { file: '0', directory: '5', symlink: '2', pax: 'x' };
/** 11 octal digits: sizes from 8 GiB on go in a pax record instead. */
const MAX_OCTAL_SIZE = 0o77777777777;

function writeOctal(block: Buffer, value: number, offset: number, width: number): void {
  // width - 1 digits and a NUL, as GNU tar writes them.
  block.write(value.toString(8).padStart(width - 1, '0'), offset, width - 1, 'ascii');
  block[offset + width - 1] = 0;
}

function encodeBlock(
  fields: {
    name: string;
    prefix: string;
    linkname: string;
    size: number;
    mode: number;
    mtime: number;
    flag: string;
  },
  block: Buffer = Buffer.alloc(BLOCK),
): Buffer {
  block.fill(0, 0, BLOCK);
  block.write(fields.name, 0, 100, 'utf8');
  writeOctal(block, fields.mode & 0o7777, 100, 8);
  writeOctal(block, 0, 108, 8);
  writeOctal(block, 0, 116, 8);
  writeOctal(block, fields.size, 124, 12);
  writeOctal(block, fields.mtime, 136, 12);
  block.write(fields.flag, 156, 1, 'ascii');
  block.write(fields.linkname, 157, 100, 'utf8');
  block.write('ustar\u000000', 257, 8, 'latin1');
  block.write(fields.prefix, 345, 155, 'utf8');
  // Checksum: the sum of every byte with the checksum field read as spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let index = 0; index < BLOCK; index += 1) sum += block[index]!;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return block;
}

/** Splits a long name into ustar's prefix (≤155 bytes) and name (≤100 bytes) at a slash, if it can. */
function splitName(name: string): { prefix: string; name: string } | null {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let slash = name.indexOf('/'); slash !== -1; slash = name.indexOf('/', slash + 1)) {
    const prefix = name.slice(0, slash);
    const rest = name.slice(slash + 1);
    if (Buffer.byteLength(prefix) > 155) return null;
    if (rest.length > 0 && Buffer.byteLength(rest) <= 100) return { prefix, name: rest };
  }
  return null;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  // The length counts its own digits: grow until it is stable.
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length)
    length = String(length).length + Buffer.byteLength(body);
  return `${length}${body}`;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/**
 * The header block(s) for one entry; the caller writes the data and `paddingFor(size)` zero bytes.
 * With `into` (a 512-byte block the caller reuses), a header without pax records is written there:
 * no allocation per entry when a million are archived.
 */
export function encodeHeader(header: TarHeader, into?: Buffer): Buffer {
  const name = header.type === 'directory' && !header.name.endsWith('/') ? `${header.name}/` : header.name;
  const linkname = header.linkname ?? '';
  const split = splitName(name);
  const records: string[] = [];
  if (!split) records.push(paxRecord('path', name));
  if (Buffer.byteLength(linkname) > 100) records.push(paxRecord('linkpath', linkname));
  if (header.size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(header.size)));
  const mtimeMs = typeof header.mtime === 'number' ? header.mtime : header.mtime.getTime();
  const mtime = Math.max(0, Math.floor(mtimeMs / 1000));
  const main = encodeBlock(
    {
      name: split ? split.name : name.slice(0, 99),
      prefix: split ? split.prefix : '',
      linkname: Buffer.byteLength(linkname) > 100 ? '' : linkname,
      size: header.size > MAX_OCTAL_SIZE ? 0 : header.size,
      mode: header.mode,
      mtime,
      flag: TYPE_FLAGS[header.type],
    },
    records.length === 0 ? into : undefined,
  );
  if (records.length === 0) return main;
  const pax = Buffer.from(records.join(''));
  const paxHeader = encodeBlock({
    name: 'PaxHeader',
    prefix: '',
    linkname: '',
    size: pax.length,
    mode: 0o644,
    mtime,
    flag: TYPE_FLAGS.pax,
  });
  return Buffer.concat([paxHeader, pax, Buffer.alloc(padding(pax.length)), main]);
}

export function paddingFor(size: number): number {
  return padding(size);
}

/** Two zero blocks end a tar archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);
