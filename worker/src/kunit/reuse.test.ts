/** Base results kept for reuse, against a real redis-server: what is taken, what is run again. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestNode } from '@nommu-ci/shared';
import { startTestRedis, type TestRedis } from '../../test/helpers.js';
import { baseKey, reusableSuites, storeBase } from './reuse.js';

let t: TestRedis;
beforeAll(async () => {
  t = await startTestRedis('reuse');
});
afterAll(async () => {
  await t?.stop();
});

const suite = (name: string, status: TestNode['status']): TestNode => ({
  name,
  status,
  diagnostics: [],
  planned: 1,
  children: [{ name: `${name}_case`, status, diagnostics: [], children: [] }],
});
const blocks = (names: string[]) => new Map(names.map((n) => [n, [`    # Subtest: ${n}`, `ok 1 ${n}`]]));

describe('base results', () => {
  it('are keyed by everything that can change them', () => {
    const k = { kernel: 'debian-7.2-mmu-7.2.12-1', config: 'ab', filter_glob: undefined, compiler: 'gcc 12' };
    expect(baseKey(k)).toBe(baseKey({ compiler: 'gcc 12', config: 'ab', kernel: 'debian-7.2-mmu-7.2.12-1', filter_glob: undefined }));
    expect(baseKey(k)).not.toBe(baseKey({ ...k, config: 'ac' }));
    expect(baseKey(k)).not.toBe(baseKey({ ...k, filter_glob: 'list*' }));
    expect(baseKey(k)).not.toBe(baseKey({ ...k, compiler: 'gcc 13' }));
  });

  it('give the suites that passed; a suite that failed once is run again even after it passed', async () => {
    const key = baseKey({ test: 'flaky' });
    expect(await reusableSuites(t.redis, key)).toBeNull();
    await storeBase(t.redis, key, 'job-1', [suite('a', 'pass'), suite('b', 'fail'), suite('c', 'skip')], blocks(['a', 'b', 'c']));
    let r = await reusableSuites(t.redis, key);
    expect(r!.from).toBe('job-1');
    expect([...r!.suites.keys()]).toEqual(['a', 'c']);
    expect(r!.suites.get('a')!.lines).toEqual(['    # Subtest: a', 'ok 1 a']);
    // b passes the next time: still not trusted.
    await storeBase(t.redis, key, 'job-2', [suite('a', 'pass'), suite('b', 'pass'), suite('c', 'skip')], blocks(['a', 'b', 'c']));
    r = await reusableSuites(t.redis, key);
    expect(r!.from).toBe('job-2');
    expect([...r!.suites.keys()]).toEqual(['a', 'c']);
  });

  it('are not used past their maximum age', async () => {
    const key = baseKey({ test: 'age' });
    await storeBase(t.redis, key, 'job-1', [suite('a', 'pass')], blocks(['a']));
    expect(await reusableSuites(t.redis, key, 3600)).not.toBeNull();
    await new Promise((r) => setTimeout(r, 1100));
    expect(await reusableSuites(t.redis, key, 1)).toBeNull();
  });
});
