/**
 * `npm start`: a private redis-server (unless REDIS_URL names one), the API on
 * 127.0.0.1:$PORT, and one worker process, restarted when it dies; all stopped together on
 * Ctrl-C, SIGTERM or SIGHUP.
 */
import path from 'node:path';
import { CACHE_DIR, REPO_DIR } from '@nommu-ci/shared';
import { startRedisServer, type RedisServer } from '@nommu-ci/shared/redis-server';
import { startApi } from '@nommu-ci/api';
import { supervise } from './supervise.js';

// Listening from the first moment: a signal during start-up stops everything once it is up, instead
// of killing this process and orphaning the redis-server it has started.
let early: NodeJS.Signals | undefined;
let onSignal = (sig: NodeJS.Signals): void => void (early ??= sig);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => onSignal(sig));

let redis: RedisServer | null = null;
if (!process.env.REDIS_URL) {
  redis = await startRedisServer({
    dir: path.join(CACHE_DIR, 'redis'),
    port: Number(process.env.NOMMU_CI_REDIS_PORT ?? 6390),
    configFile: path.join(REPO_DIR, 'infra/redis.conf'),
    ownGroup: true,
  });
  process.env.REDIS_URL = redis.url;
  console.error(`nommu-ci: private redis-server on ${redis.url} (data in ${path.join(CACHE_DIR, 'redis')})`);
}

const port = Number(process.env.PORT ?? 8080);
const api = await startApi({ port, host: process.env.HOST ?? '127.0.0.1', redis: process.env.REDIS_URL! });
// The worker runs untrusted builds; its own process keeps a crash there away from the API, and a
// worker that dies is started again (its jobs are retried by BullMQ's stalled-job check).
const graceMs = (Number(process.env.NOMMU_CI_SHUTDOWN_GRACE_S ?? 10) + 5) * 1000;
const worker = supervise({
  name: 'worker',
  argv: [process.execPath, '--import', 'tsx', path.join(REPO_DIR, 'worker/src/index.ts')],
  log: (line) => console.error(`nommu-ci: ${line}`),
  graceMs,
  onStart: (pid) => console.error(`nommu-ci: worker pid ${pid}`),
});

// Ctrl-C/SIGTERM stop everything whatever state the worker is in (running, dying, waiting to be
// restarted); a second signal does not wait for the worker's jobs.
let stopping = false;
async function stop(): Promise<never> {
  stopping = true;
  let code = 0;
  for (const [what, step] of [
    ['worker', () => worker.stop()],
    // Open /tap and /events followers would hold close() up: they get a few seconds.
    ['API', () => Promise.race([api.close(), new Promise((r) => setTimeout(r, 5000).unref())])],
    ['redis-server', async () => redis?.stop()],
  ] as const) {
    await step().catch((e: unknown) => {
      code = 1;
      console.error(`nommu-ci: stopping the ${what}: ${(e as Error).message}`);
    });
  }
  process.exit(code);
}
onSignal = (sig) => {
  if (!stopping) return void stop();
  console.error(`nommu-ci: ${sig} again; killing the worker`);
  if (worker.pid) process.kill(-worker.pid, 'SIGKILL');
};
if (early) void stop();
else console.error(`nommu-ci: API on http://127.0.0.1:${port} (docs at /docs); ${await api.app.auth.describe()}`);
