import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { defaultMmu } from '@nommu-ci/shared';

const Kernel = Type.Object({
  name: Type.String(),
  version: Type.String(),
  available: Type.Boolean({ description: 'the source tree is present on this API host' }),
  series: Type.Union([Type.String(), Type.Null()], { description: 'no-MMU series used for mmu:false jobs, as <name>@<hash>' }),
  series_patches: Type.Array(Type.String()),
  default_mmu: Type.Boolean({ description: 'mmu of kunit and boot-selftest jobs that do not say; kselftest jobs default to true until the no-MMU kernel runs userspace' }),
});

export const kernelRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/v1/kernels',
    { schema: { summary: 'Kernel sources jobs may name', response: { 200: Type.Array(Kernel) } } },
    async () => {
      return app.deps.catalog().map((k) => {
        const series = app.deps.series(k);
        return {
          name: k.name,
          version: k.version,
          available: k.available,
          series: series ? `${series.name}@${series.hash}` : null,
          series_patches: series?.patches ?? [],
          default_mmu: defaultMmu(series),
        };
      });
    },
  );
};
