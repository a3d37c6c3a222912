import { readdir, readFile, readlink } from 'node:fs/promises';

/**
 * Who holds a port, from /proc: the socket's inode in /proc/net/{tcp,udp}{,6}, then the process
 * whose fd points at it. Another user's processes cannot be read without root: the holder is
 * then unnamed, never guessed.
 */
export interface ProcessName {
  pid: number;
  command: string;
}

/** Inodes of sockets bound to `port` (TCP: listening; UDP: bound). */
async function socketInodes(port: number, protocol: string): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const file of [`/proc/net/${protocol}`, `/proc/net/${protocol}6`]) {
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (!local) continue;
      const listening = protocol === 'udp' || fields[3] === '0A';
      if (listening && Number.parseInt(local.split(':').at(-1) ?? '', 16) === port) inodes.add(fields[9]!);
    }
  }
  return inodes;
}

async function ownerOf(inodes: Set<string>): Promise<ProcessName | null> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    // A process that ended meanwhile, or another user's: its fds cannot be read; go on.
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) {
        const command = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim();
        return { pid: Number(pid), command };
      }
    }
  }
  return null;
}

/** The process holding `port`, or null when /proc cannot say. */
export async function portHolder(port: number, protocol: string): Promise<ProcessName | null> {
  if (process.platform !== 'linux') return null;
  const inodes = await socketInodes(port, protocol === 'udp' ? 'udp' : 'tcp');
  return inodes.size ? ownerOf(inodes) : null;
}
