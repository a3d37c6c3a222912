export { isInsideWindow, parseDuration, parseWindow, type TimeWindow } from './duration.js';
export {
  assertConfigWritable,
  commitVersionToConfig,
  type LoadedConfig,
  loadConfig,
  parseConfig,
  resolveHome,
  type ServerChoice,
  serverChoice,
  setVersionInToml,
} from './load.js';
export {
  type Config,
  type ConfigInput,
  configSchema,
  defaultBaseUrl,
  NUWAX_CLI_DEFAULT_BASE_URL,
} from './schema.js';
export { type HomePaths, homePaths } from './paths.js';
