import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';

export const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness: the API answers and reaches Redis',
        response: {
          200: Type.Object({ status: Type.Literal('ok'), redis: Type.Literal('ok'), workers: Type.Integer() }),
          503: Type.Object({ status: Type.Literal('unavailable'), message: Type.String() }),
        },
      },
    },
    async (_req, reply) => {
      try {
        await app.deps.redis.ping();
        const workers = await app.deps.queue.getWorkersCount();
        return { status: 'ok' as const, redis: 'ok' as const, workers };
      } catch (err) {
        return reply.code(503).send({ status: 'unavailable' as const, message: `redis: ${(err as Error).message}` });
      }
    },
  );
};
