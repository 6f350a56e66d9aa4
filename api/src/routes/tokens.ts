/**
 * Token management, for admins only (`nommu-ci token create|list|revoke`):
 *
 *   POST   /v1/admin/tokens         {name, role, max_concurrent?, max_per_hour?} → 201 with the secret, shown once
 *   GET    /v1/admin/tokens         the tokens, without secrets
 *   DELETE /v1/admin/tokens/:name   revoke: the token's next request gets 401
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { ANONYMOUS } from '@nommu-ci/shared';
import { HttpError } from '../errors.js';
import { ADMIN_PRINCIPAL_NAME, ROLES, type Role } from '../tokens.js';

const Name = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', description: 'token name, e.g. mm-bot (lower case, digits, . _ -)' });
const Limit = Type.Union([Type.Integer({ minimum: 0, maximum: 100000 }), Type.Null()]);
const TokenInfo = Type.Object({
  name: Type.String(),
  role: Type.String(),
  created_at: Type.String(),
  max_concurrent: Limit,
  max_per_hour: Limit,
});
const ErrorBody = Type.Object({ statusCode: Type.Integer(), error: Type.String(), message: Type.String() });

export const tokenRoutes: FastifyPluginAsync = async (app) => {
  const admin = { role: 'admin' as const };

  app.post(
    '/v1/admin/tokens',
    {
      config: admin,
      schema: {
        summary: 'Create a token (admin); the answer holds the secret, which is not stored',
        body: Type.Object(
          {
            name: Name,
            role: Type.Union(ROLES.map((r) => Type.Literal(r))),
            max_concurrent: Type.Optional(Limit),
            max_per_hour: Type.Optional(Limit),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Composite([TokenInfo, Type.Object({ token: Type.String() })]), 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => {
      const body = req.body as { name: string; role: Role; max_concurrent?: number | null; max_per_hour?: number | null };
      if (body.name === ADMIN_PRINCIPAL_NAME) throw new HttpError(409, `body.name: "${ADMIN_PRINCIPAL_NAME}" is the name of NOMMU_CI_ADMIN_TOKEN`);
      if (body.name === ANONYMOUS) throw new HttpError(409, `body.name: "${ANONYMOUS}" names the jobs of requests without a token`);
      const made = await app.auth.tokens.create(body.name, body.role, { max_concurrent: body.max_concurrent ?? null, max_per_hour: body.max_per_hour ?? null });
      if (!made) throw new HttpError(409, `body.name: a token named "${body.name}" exists; revoke it first`);
      req.log.info({ token: body.name, role: body.role, by: req.principal?.name }, 'token created');
      return reply.code(201).send({ ...made.info, token: made.token });
    },
  );

  app.get(
    '/v1/admin/tokens',
    { config: admin, schema: { summary: 'The tokens (admin), without their secrets', response: { 200: Type.Array(TokenInfo) } } },
    async () => app.auth.tokens.list(),
  );

  app.delete(
    '/v1/admin/tokens/:name',
    { config: admin, schema: { summary: 'Revoke a token (admin)', params: Type.Object({ name: Name }), response: { 200: Type.Object({ name: Type.String(), revoked: Type.Boolean() }), 404: ErrorBody } } },
    async (req) => {
      const { name } = req.params as { name: string };
      if (!(await app.auth.tokens.revoke(name))) throw new HttpError(404, `no token named "${name}"`);
      req.log.info({ token: name, by: req.principal?.name }, 'token revoked');
      return { name, revoked: true };
    },
  );
};
