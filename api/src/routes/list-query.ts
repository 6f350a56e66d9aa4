/** The query of the list routes (GET /v1/jobs, /v1/runs): a page of the newest, optionally one token's. */
import { Type } from '@sinclair/typebox';

export function listQuery(things: string) {
  return Type.Object(
    {
      limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1..200, default 50' })),
      offset: Type.Optional(Type.String({ pattern: '^[0-9]{1,7}$' })),
      submitted_by: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', description: `only the ${things} of this token` })),
    },
    { additionalProperties: false },
  );
}

/** The page a list query asks for. */
export function listPage(query: unknown): { limit: number; offset: number; submittedBy: string | undefined } {
  const q = query as { limit?: string; offset?: string; submitted_by?: string };
  return { limit: Math.min(200, Math.max(1, Number(q.limit ?? 50))), offset: Number(q.offset ?? 0), submittedBy: q.submitted_by };
}
