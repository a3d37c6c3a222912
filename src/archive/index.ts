export { type CreateOptions, type CreateResult, createTarGz } from './create.js';
export { type ArchiveFormat, detectArchiveFormat, extractArchive } from './extract.js';
export { type ArchiveEntry, checkArchive, listArchive } from './list.js';
export type { ExtractOptions, ExtractResult } from './safe-writer.js';
export { type InflateOptions, readPlain } from './gzip-members.js';
export { parseTar, type TarEntry, type TarEntryHeader } from './tar-reader.js';
export {
  type BoundOptions,
  DEFAULT_MAX_RATIO,
  DEFAULT_RESERVE_BYTES,
  type ExtractionBound,
  extractionBound,
} from './bound.js';
