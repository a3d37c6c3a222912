import path from 'node:path';
import type { Config } from './schema.js';

/** SPEC 1: everything lives under the home directory; config may move the nuwax-cli folders. */
export interface HomePaths {
  home: string;
  configFile: string;
  dockerDir: string;
  composeFile: string;
  dataDir: string;
  dbFile: string;
  backupsDir: string;
  cacheDir: string;
  downloadsDir: string;
  stagingDir: string;
  logsDir: string;
  failuresDir: string;
  lockFile: string;
}

export function homePaths(home: string, config: Config, configFile?: string): HomePaths {
  const composeFile = path.resolve(home, config.docker.compose_file);
  const cacheDir = path.join(home, 'cache');
  return {
    home,
    configFile: configFile ?? path.join(home, 'config.toml'),
    dockerDir: path.dirname(composeFile),
    composeFile,
    dataDir: path.join(home, 'data'),
    dbFile: path.join(home, 'data', 'nuwax.db'),
    backupsDir: path.resolve(home, config.backup.storage_dir),
    cacheDir,
    downloadsDir: path.resolve(home, config.cache.download_dir),
    stagingDir: path.join(cacheDir, 'staging'),
    logsDir: path.join(home, 'logs'),
    failuresDir: path.join(home, 'logs', 'failures'),
    lockFile: path.join(home, 'data', 'nuwax.lock'),
  };
}
