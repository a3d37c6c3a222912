import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { openStore } from '../../src/state/index.js';
import { withTempDir } from '../helpers/cli.js';

describe('the upgrades table', () => {
  test('a repair is in history but never the last version change that status and metrics show', () =>
    withTempDir('upgrades', async (dir) => {
      const store = openStore(path.join(dir, 'nuwax.db'));
      try {
        const begin = (trigger: string, to: string) =>
          store.upgrades.begin({
            fromVersion: '1.0.0',
            toVersion: to,
            strategy: 'patch',
            trigger,
            startedBy: 'test',
            reason: null,
          });
        const upgrade = begin('manual', '1.0.1');
        const repair = begin('repair', '1.0.1');
        assert.deepEqual(
          store.upgrades.list(2).map((row) => row.id),
          [repair, upgrade],
        );
        assert.deepEqual(
          store.upgrades.listVersionChanges(2).map((row) => row.id),
          [upgrade],
        );
      } finally {
        store.close();
      }
    }));
});
