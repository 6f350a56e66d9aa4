import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { availability } from '@nommu-ci/shared';
import { HttpError } from '../errors.js';

const Selftest = Type.Object({
  name: Type.String(),
  symbol: Type.String({ description: 'the Kconfig symbol that builds it in' }),
  kconfig: Type.Array(Type.String()),
  source: Type.String(),
  offered: Type.Boolean({ description: 'the kernel tree has this test' }),
  nommu: Type.Boolean({ description: 'builds without an MMU (no `depends on MMU`)' }),
});

export const bootSelftestRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/v1/boot-selftests',
    {
      schema: {
        summary: 'Boot-time library selftests a boot-selftest job can run, for one kernel tree',
        querystring: Type.Object({ kernel: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' })) }, { additionalProperties: false }),
        response: { 200: Type.Array(Selftest) },
      },
    },
    async (req) => {
      const { kernel } = req.query as { kernel?: string };
      const catalog = app.deps.catalog();
      const source = kernel === undefined ? catalog[0] : catalog.find((k) => k.name === kernel);
      if (!source) throw new HttpError(400, `querystring.kernel: unknown kernel "${kernel}"`);
      return app.deps.bootSelftests().map((t) => ({ name: t.name, kconfig: t.kconfig, source: t.source, ...availability(t, source.path) }));
    },
  );
};
