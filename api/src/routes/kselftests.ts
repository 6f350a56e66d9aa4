import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { KselftestTargetInfo, KSELFTEST_TARGET_PATTERN, readTarget, readTargets, type KselftestTarget } from '@nommu-ci/shared';
import { HttpError } from '../errors.js';

/** Listings per (tree path, version): reading ~140 Makefiles and the tests' sources takes a moment. */
const cache = new Map<string, KselftestTarget[]>();
const CACHE_MAX = 8;

export function listing(tree: string, version: string): KselftestTarget[] {
  const key = `${tree}\0${version}`;
  let v = cache.get(key);
  if (!v) {
    v = readTargets(tree);
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(key, v);
  }
  return v;
}

const shape = (t: KselftestTarget) => ({
  name: t.name,
  timeout_s: t.timeout_s,
  tests: t.tests.map((x) => ({ name: x.name, kind: x.kind, default: x.default, nommu: x.nommu_blocker === null, nommu_blocker: x.nommu_blocker })),
});

export const kselftestRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/v1/kselftests',
    {
      schema: {
        summary: 'kselftest targets and tests a kselftest job can run, for one kernel tree, and which can run without an MMU',
        querystring: Type.Object(
          {
            kernel: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' })),
            target: Type.Optional(Type.String({ pattern: KSELFTEST_TARGET_PATTERN, description: 'only this target' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(KselftestTargetInfo) },
      },
    },
    async (req) => {
      const { kernel, target } = req.query as { kernel?: string; target?: string };
      const catalog = app.deps.catalog();
      const source = kernel === undefined ? catalog[0] : catalog.find((k) => k.name === kernel);
      if (!source) throw new HttpError(400, `querystring.kernel: unknown kernel "${kernel}"`);
      if (!source.available) throw new HttpError(503, `kernel "${source.name}" is not present on this host`);
      if (target !== undefined) {
        const t = readTarget(source.path, target);
        if (!t) throw new HttpError(404, `querystring.target: no kselftest target "${target}" in ${source.name}`);
        return [shape(t)];
      }
      return listing(source.path, source.version).map(shape);
    },
  );
};
