export { type CreateOptions, type CreateResult, createTarGz, listArchive } from './create.js';
export { type ArchiveFormat, detectArchiveFormat, type ExtractOptions, type ExtractResult, extractArchive } from './extract.js';
