/**
 * Benchmark (run by hand): one-patch runs per hour on one worker. Each run (POST /v1/runs) is a
 * one-line patch to lib/tests/list-test.c, a different one each time, tested against its base on
 * both kernels (four jobs). The runs are queued at once and the clock stops when the last ends.
 *
 *   npx tsx bench/kunit-throughput.ts [--runs 6] [--small] [--before]
 *
 * `--before` measures the service as it was: base jobs run in full (`fresh_base`) and every job in
 * one kernel (NOMMU_CI_KUNIT_SHARDS=1). Without it: base results reused, suites sharded over the
 * machine's cores (NOMMU_CI_KUNIT_SHARDS=nproc). Uses the
 * machine's cache (NOMMU_CI_CACHE): warm the bases first (one run) so the figure is the steady
 * state; a private redis-server, API and one worker, as `npm start` runs them.
 */
import { startService } from './service.js';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CACHE_DIR } from '@nommu-ci/shared';

const { values } = parseArgs({ options: { runs: { type: 'string' }, small: { type: 'boolean' }, before: { type: 'boolean' } } });
const RUNS = Number(values.runs ?? 6);
const TEST_FILE = 'lib/tests/list-test.c';
const SOURCE = path.join(CACHE_DIR, 'src/linux-source-7.2');
const KUNITCONFIG = values.small ? 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\nCONFIG_RATELIMIT_KUNIT_TEST=y\n' : undefined;
const LINE = 'KUNIT_EXPECT_TRUE(test, list_empty(&list));';

/** The n-th one-line patch: the same line, a message of its own. */
function patch(n: number): string {
  const text = readFileSync(path.join(SOURCE, TEST_FILE), 'utf8').split('\n');
  const i = text.findIndex((l) => l.includes(LINE));
  const ctx = (a: number, b: number) => text.slice(a, b).map((l) => ` ${l}`);
  return [
    `From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001`,
    'From: Bench <bench@example.org>',
    `Subject: [PATCH] list-test: message ${n}`,
    '',
    '---',
    `--- a/${TEST_FILE}`,
    `+++ b/${TEST_FILE}`,
    `@@ -${i - 2},7 +${i - 2},7 @@`,
    ...ctx(i - 3, i),
    `-${text[i]}`,
    `+${text[i]!.replace(LINE, `KUNIT_EXPECT_TRUE_MSG(test, list_empty(&list), "bench ${n}");`)}`,
    ...ctx(i + 1, i + 4),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  console.log(`uptime before: ${execFileSync('uptime').toString().trim()}`);
  const svc = await startService({
    cache: CACHE_DIR,
    env: { NOMMU_CI_QUEUE: `bench-${process.pid}`, NOMMU_CI_KUNIT_SHARDS: values.before ? '1' : execFileSync('nproc').toString().trim() },
  });
  const base = svc.base;
  try {
    const body = (n: number) => ({ patch: patch(n), ...(KUNITCONFIG ? { kunitconfig: KUNITCONFIG } : {}), ...(values.before ? { fresh_base: true } : {}), timeout_s: 3600 });
    const post = async (n: number) => {
      const res = await fetch(`${base}/v1/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body(n)) });
      if (res.status !== 202) throw new Error(`POST /v1/runs: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    };
    const wait = async (id: string) => {
      for (;;) {
        const r = (await (await fetch(`${base}/v1/runs/${id}`)).json()) as { state: string; verdict?: { outcome: string; headline: string } };
        if (['passed', 'failed', 'error'].includes(r.state)) return r;
        await new Promise((res) => setTimeout(res, 1000));
      }
    };
    // Warm-up: the bases built and (after) a base result stored; not counted.
    const w0 = Date.now();
    const warm = await wait(await post(0));
    console.log(`warm-up run: ${warm.state} (${warm.verdict?.headline ?? ''}) in ${((Date.now() - w0) / 1000).toFixed(1)} s`);
    const t0 = Date.now();
    const ids = [];
    for (let n = 1; n <= RUNS; n++) ids.push(await post(n));
    const ends = [];
    for (const id of ids) ends.push(await wait(id));
    const s = (Date.now() - t0) / 1000;
    console.log(`config: ${values.small ? 'list and ratelimit tests' : "the tree's default KUnit config"}; ${values.before ? 'before: base run in full, one kernel per job' : 'after: base reused, sharded'}`);
    console.log(`runs: ${RUNS} in ${s.toFixed(1)} s = ${((RUNS * 3600) / s).toFixed(1)} runs/hour; outcomes: ${ends.map((e) => e.state).join(', ')}`);
    console.log(`uptime after: ${execFileSync('uptime').toString().trim()}`);
  } finally {
    await svc.stop();
  }
}

await main();
