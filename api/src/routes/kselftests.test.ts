import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog } from '@nommu-ci/shared';
import type { AppDeps } from '../app.js';
import { kselftestRoutes } from './kselftests.js';

const tree = loadCatalog()[0]!;
let app: FastifyInstance;

beforeAll(async () => {
  app = Fastify();
  app.decorate('deps', { catalog: () => loadCatalog() } as unknown as AppDeps);
  await app.register(kselftestRoutes);
});
afterAll(() => app.close());

describe.skipIf(!tree.available)('GET /v1/kselftests', () => {
  it('lists the targets of the default tree with their tests and no-MMU verdicts', async () => {
    const r = await app.inject({ method: 'GET', url: '/v1/kselftests' });
    expect(r.statusCode).toBe(200);
    const body = r.json() as { name: string; timeout_s: number; tests: { name: string; kind: string; default: boolean; nommu: boolean; nommu_blocker: string | null }[] }[];
    expect(body.length).toBeGreaterThan(50);
    const timers = body.find((t) => t.name === 'timers')!;
    expect(timers.tests.find((t) => t.name === 'posix_timers')).toEqual({ name: 'posix_timers', kind: 'prog', default: true, nommu: true, nommu_blocker: null });
    const mm = body.find((t) => t.name === 'mm')!;
    expect(mm.timeout_s).toBe(900);
    // Verdicts as measured on the no-MMU kernel (see MMU_FEATURES): uffd-unit-tests forks yet
    // passes there; mdwe_test is a kselftest_harness.h program, which all failed.
    expect(mm.tests.find((t) => t.name === 'uffd-unit-tests')).toMatchObject({ kind: 'file', default: false, nommu: true, nommu_blocker: null });
    expect(mm.tests.find((t) => t.name === 'mdwe_test')).toMatchObject({ nommu: false, nommu_blocker: expect.stringMatching(/kselftest_harness/) });
    expect(mm.tests.find((t) => t.kind === 'script')!.nommu_blocker).toMatch(/shell/);
  });

  it('offers our own nommu-ci/mm on every available kernel, runnable without an MMU', async () => {
    for (const k of loadCatalog().filter((x) => x.available)) {
      const r = await app.inject({ method: 'GET', url: `/v1/kselftests?kernel=${k.name}&target=nommu-ci/mm` });
      expect(r.statusCode, k.name).toBe(200);
      expect(r.json(), k.name).toEqual([
        {
          name: 'nommu-ci/mm',
          timeout_s: 45,
          tests: ['mappings', 'sysmem'].map((name) => ({ name, kind: 'prog', default: true, nommu: true, nommu_blocker: null })),
        },
      ]);
    }
  });

  it('one target; unknown target and kernel are 4xx naming the field', async () => {
    const one = await app.inject({ method: 'GET', url: '/v1/kselftests?target=timers' });
    expect(one.statusCode).toBe(200);
    expect((one.json() as unknown[]).length).toBe(1);
    const none = await app.inject({ method: 'GET', url: '/v1/kselftests?target=no-such-target' });
    expect(none.statusCode).toBe(404);
    expect(none.json().message).toMatch(/querystring.target/);
    const bad = await app.inject({ method: 'GET', url: '/v1/kselftests?target=../etc' });
    expect(bad.statusCode).toBe(400);
    const k = await app.inject({ method: 'GET', url: '/v1/kselftests?kernel=nope' });
    expect(k.statusCode).toBe(400);
  });
});
