// A separate process for the kill -9 test: downloads until it is killed.
import { download } from '../../src/downloader/index.js';
import { openStore } from '../../src/state/index.js';

const [url, sha256, size, directory, db] = process.argv.slice(2) as [string, string, string, string, string];
const store = openStore(db);
await download({ urls: [url], sha256, size: Number(size), directory, store });
