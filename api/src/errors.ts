/**
 * Every bad input gets a 4xx that names what is wrong. Ajv's own messages leave out the
 * offending property for unknown fields ("must NOT have additional properties"); this
 * formatter puts the field path first in each message.
 */
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import { JOB_KINDS } from '@nommu-ci/shared';

// The only discriminated union in the API is the job kind.
const JOB_KIND_LIST = JOB_KINDS.map((k) => `"${k}"`).join(', ');

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const parts = errors.map((e) => {
    const params = e.params as Record<string, unknown>;
    const where = `${dataVar}${e.instancePath.replace(/\//g, '.')}`;
    if (typeof params.additionalProperty === 'string') return `${where}.${params.additionalProperty}: unknown field`;
    if (typeof params.tag === 'string') return `${where}.${params.tag}: must be one of ${JOB_KIND_LIST}`;
    if (typeof params.missingProperty === 'string') return `${where}.${params.missingProperty}: is required`;
    if (typeof params.allowedValue !== 'undefined') return `${where}: must be ${JSON.stringify(params.allowedValue)}`;
    if (typeof params.pattern === 'string') return `${where}: is not well-formed (${(e as { parentSchema?: { description?: string } }).parentSchema?.description ?? `must match ${params.pattern}`})`;
    return `${where}: ${e.message ?? 'is invalid'}`;
  });
  return new HttpError(400, [...new Set(parts)].join('; '));
}
