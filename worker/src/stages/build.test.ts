import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tryLock } from '../locks.js';
import { collectBases } from './build.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'nci-bases-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function base(name: string, ageH: number, complete = true): void {
  const d = path.join(root, name);
  mkdirSync(d);
  const t = new Date(Date.now() - ageH * 3600_000);
  if (complete) {
    writeFileSync(path.join(d, '.nommu-ci-complete'), '');
    utimesSync(path.join(d, '.nommu-ci-complete'), t, t);
  }
  utimesSync(d, t, t);
}

describe('collectBases', () => {
  it('keeps the most recently used bases, anything used within the hour, and locked ones', async () => {
    base('a', 10);
    base('b', 5);
    base('c', 3);
    base('d', 0.1);
    base('e', 0.2);
    base('locked', 20);
    const held = (await tryLock(path.join(root, 'locked')))!;
    base('crashed', 30, false);
    base('building', 1, false);
    const removed = await collectBases({ dir: root, max: 2 }).finally(() => held.release());
    expect(removed.map((r) => path.basename(r)).sort()).toEqual(['a', 'b', 'c', 'crashed']);
    // Lock files stay (removing one another process has open would split the lock).
    expect(readdirSync(root).filter((n) => !n.endsWith('.flock')).sort()).toEqual(['building', 'd', 'e', 'locked']);
  });
});
