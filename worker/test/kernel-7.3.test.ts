/**
 * The second catalogue kernel, Debian's linux-source-7.3, through the real worker (real
 * redis-server, real UML build in the sandbox): a no-MMU KUnit job with a small kunitconfig
 * builds 7.3 with its own port of the series (kernel-images/nommu-7.3), boots it and passes.
 * Small config to keep CI time down: a cold build of it is a few minutes; the default-config
 * figures for 7.2 and 7.3 are measured by hand (kernel-images/nommu-7.3/README.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog, loadSeries } from '@nommu-ci/shared';
import { runJobOn, startTestRedis, tapLines, type TestRedis } from './helpers.js';

const kernel = loadCatalog().find((k) => k.name === 'debian-7.3')!;

let t: TestRedis;
beforeAll(async () => {
  t = await startTestRedis('worker-7.3');
});
afterAll(async () => {
  await t?.stop();
});

describe('debian-7.3', () => {
  it(
    'runs a no-MMU KUnit job (small config) with the 7.3 series and passes',
    async () => {
      expect(kernel.available).toBe(true);
      const series = loadSeries(kernel.seriesDir)!;
      const run = await runJobOn(t, { kind: 'kunit', kernel: 'debian-7.3', mmu: false, kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n' }, { timeoutMs: 1_700_000 });
      const r = run.record;
      console.log(`debian-7.3 no-MMU job: ${r.state} ${run.ms} ms, stages ${JSON.stringify(r.timings.stages)}: ${r.message}`);
      expect(r.kernel).toEqual({ name: 'debian-7.3', version: kernel.version, series: `nommu-7.3@${series.hash}` });
      expect(kernel.version).toMatch(/^7\.3/);
      expect(r.config?.mmu).toBe(false);
      expect((await t.store.artifact(run.id, 'config'))!.toString()).toContain('# CONFIG_MMU is not set');
      const consoleLog = (await t.store.artifact(run.id, 'console.log'))!.toString();
      expect(consoleLog).toMatch(/Linux version 7\.3\.0-rc7/);
      expect(r.state).toBe('passed');
      expect(r.summary.failed + r.summary.crashed).toBe(0);
      expect(r.summary.passed).toBeGreaterThan(0);
      expect((await tapLines(t, run.id)).some((l) => /^\s*ok \d+ list_test_list_init/.test(l))).toBe(true);
    },
    1_800_000,
  );
});
