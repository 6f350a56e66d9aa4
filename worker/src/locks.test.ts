import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tryLock, withLock } from './locks.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'nci-locks-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Another worker process holding the lock on `target`, as the worker holds it. */
async function holder(target: string) {
  const code = `import { tryLock } from ${JSON.stringify(path.resolve('worker/src/locks.ts'))};
const h = await tryLock(${JSON.stringify(target)});
console.log(h ? 'held' : 'busy');
setInterval(() => undefined, 1000);`;
  const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const said = await new Promise<string>((r) => c.stdout!.once('data', (b: Buffer) => r(b.toString().trim())));
  return { c, said, gone: new Promise<void>((r) => c.once('exit', () => r())) };
}

describe('withLock', () => {
  it('excludes a second holder while the first lives, however long it stalls, and frees the lock when it is SIGKILLed', async () => {
    const target = path.join(root, 'base');
    const h = await holder(target);
    try {
      expect(h.said).toBe('held');
      expect(await tryLock(target)).toBeNull();
      // A stalled holder (stopped: no timer of its own runs) keeps the lock: nothing guesses staleness.
      h.c.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, 1500));
      expect(await tryLock(target)).toBeNull();
      h.c.kill('SIGKILL');
      await h.gone;
      let got = null;
      for (let i = 0; i < 50 && !got; i++) {
        got = await tryLock(target);
        if (!got) await new Promise((r) => setTimeout(r, 100));
      }
      expect(got).not.toBeNull();
      await got!.release();
    } finally {
      h.c.kill('SIGKILL');
    }
  });

  it('runs one holder at a time in this process and waits for the other', async () => {
    const target = path.join(root, 'serial');
    const order: string[] = [];
    let waited = 0;
    const one = (n: string) =>
      withLock(
        target,
        undefined,
        async () => {
          order.push(`${n} in`);
          await new Promise((r) => setTimeout(r, 300));
          order.push(`${n} out`);
        },
        () => waited++,
      );
    await Promise.all([one('a'), one('b')]);
    expect(order).toEqual(order[0] === 'a in' ? ['a in', 'a out', 'b in', 'b out'] : ['b in', 'b out', 'a in', 'a out']);
    expect(waited).toBe(1);
  });

  it('gives up waiting when its signal aborts', async () => {
    const target = path.join(root, 'abort');
    const h = (await tryLock(target))!;
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error('canceled')), 300);
    await expect(withLock(target, ctl.signal, async () => 'ran')).rejects.toThrow();
    await h.release();
    expect(await withLock(target, undefined, async () => 'ran')).toBe('ran');
  });
});
