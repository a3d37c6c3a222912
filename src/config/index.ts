export { isInsideWindow, parseDuration, parseWindow, type TimeWindow } from './duration.js';
export {
  commitVersionToConfig,
  type LoadedConfig,
  loadConfig,
  parseConfig,
  resolveHome,
  setVersionInToml,
} from './load.js';
export { type Config, type ConfigInput, configSchema } from './schema.js';
export { type HomePaths, homePaths } from './paths.js';
