import { open } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { encodeHeader, END_OF_ARCHIVE, paddingFor } from '../../src/archive/tar-header.js';

const MiB = 1024 * 1024;

/**
 * A real tar.gz of zeros (docker/ prefix, as a package): `entries` files of `entrySize` bytes. It is
 * built from gzip members (one per MiB of zeros, the same bytes each time), so a 1 GiB bomb of about
 * 1 MiB is written in milliseconds; gzip, tar and nuwax all read concatenated members.
 */
export async function writeZeroBomb(file: string, options: { entries: number; entrySize: number }): Promise<number> {
  const zeros = gzipSync(Buffer.alloc(MiB), { level: 9 });
  const handle = await open(file, 'w');
  try {
    await handle.write(gzipSync(encodeHeader(dir('docker/'))));
    for (let index = 0; index < options.entries; index += 1) {
      const header = { name: `docker/zeros-${index}.bin`, type: 'file' as const, size: options.entrySize };
      await handle.write(gzipSync(encodeHeader({ ...header, mode: 0o644, mtime: new Date(0) })));
      let left = options.entrySize;
      for (; left >= MiB; left -= MiB) await handle.write(zeros);
      if (left + paddingFor(options.entrySize) > 0)
        await handle.write(gzipSync(Buffer.alloc(left + paddingFor(options.entrySize))));
    }
    await handle.write(gzipSync(END_OF_ARCHIVE));
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

function dir(name: string) {
  return { name, type: 'directory' as const, size: 0, mode: 0o755, mtime: new Date(0) };
}
