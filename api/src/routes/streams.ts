/**
 * Live output. Both endpoints replay everything stored so far and then follow the Redis
 * streams, so a client that connects late misses nothing; each client holds its own Redis
 * connection for the blocking reads, released when it disconnects.
 */
import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { FINAL_STATES, JobStore } from '@nommu-ci/shared';
import { HttpError } from '../errors.js';

const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$' }) });
const BLOCK_MS = 2000;

/**
 * Entries of one stream until its `eof` entry. A job that ends without writing one (canceled
 * while queued by an older API, or its records expired) ends the stream when its state is final.
 */
async function* follow(app: FastifyInstance, id: string, key: string, after: string, closed: () => boolean) {
  // A follower waits through a Redis restart rather than failing: it resumes where it was.
  const conn = app.deps.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
  conn.on('error', () => undefined); // the API's own connection logs the outage once per reconnect
  try {
    let last = after;
    let idleChecks = 0;
    while (!closed()) {
      const entries = await JobStore.readStream(conn, key, last, BLOCK_MS);
      for (const e of entries) {
        last = e.id;
        yield e;
        if (e.fields.eof !== undefined) return;
      }
      if (entries.length === 0) {
        const rec = await app.deps.store.get(id);
        // Give a worker that just finished a moment to write its last entries.
        if (!rec || (FINAL_STATES.has(rec.state) && ++idleChecks >= 2)) return;
      }
    }
  } finally {
    conn.disconnect();
  }
}

async function mustExist(app: FastifyInstance, id: string): Promise<void> {
  if (!(await app.deps.store.get(id))) throw new HttpError(404, `no job ${id}`);
}

export const streamRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/v1/jobs/:id/tap',
    { schema: { summary: 'KTAP as the kernel prints it, live; closed when the job ends', params: IdParams, produces: ['text/plain'] } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      await mustExist(app, id);
      let closed = false;
      req.raw.on('close', () => (closed = true));
      async function* lines() {
        // Attempts follow each other when a worker died mid-job and BullMQ retried it.
        for (let attempt = 1; ; attempt++) {
          let retried = false;
          for await (const e of follow(app, id, app.deps.store.tapKey(id, attempt), '0', () => closed)) {
            if (e.fields.l !== undefined) yield e.fields.l + '\n';
            else if (e.fields.eof === 'retry') {
              retried = true;
              const where = e.fields.lost_in ? ` during ${e.fields.lost_in}` : '';
              yield `# nommu-ci: attempt ${attempt} was lost${where} (worker stopped); attempt ${attempt + 1} starts over from source\n`;
            }
          }
          if (!retried) return;
        }
      }
      // The headers go out at once, not with the first line: a cold build prints nothing for
      // minutes, and clients give up on a response whose headers do not come (undici: 300 s).
      reply.raw.once('pipe', () => reply.raw.flushHeaders());
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').header('x-accel-buffering', 'no').send(Readable.from(lines()));
    },
  );

  app.get(
    '/v1/jobs/:id/events',
    {
      sse: 'only',
      schema: {
        summary: 'Server-sent events: `state` changes and each `test` result; resumable with Last-Event-ID',
        params: IdParams,
        produces: ['text/event-stream'],
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      await mustExist(app, id);
      const after = reply.sse.lastEventId && /^\d+-\d+$/.test(reply.sse.lastEventId) ? reply.sse.lastEventId : '0';
      async function* events() {
        for await (const e of follow(app, id, app.deps.store.eventsKey(id), after, () => !reply.sse.isConnected)) {
          if (e.fields.e !== undefined) {
            const ev = JSON.parse(e.fields.e) as { type: string };
            yield { id: e.id, event: ev.type, data: ev };
          } else yield { id: e.id, event: 'end', data: { id } };
        }
      }
      await reply.sse.send(events());
    },
  );
};
