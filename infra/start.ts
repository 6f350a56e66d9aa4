/**
 * `npm start`: a private redis-server (unless REDIS_URL names one), the API on
 * 127.0.0.1:$PORT, and one worker process; all stopped together on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { CACHE_DIR, REPO_DIR } from '@nommu-ci/shared';
import { startRedisServer, type RedisServer } from '@nommu-ci/shared/redis-server';
import { startApi } from '@nommu-ci/api';

let redis: RedisServer | null = null;
if (!process.env.REDIS_URL) {
  redis = await startRedisServer({
    dir: path.join(CACHE_DIR, 'redis'),
    port: Number(process.env.NOMMU_CI_REDIS_PORT ?? 6390),
    configFile: path.join(REPO_DIR, 'infra/redis.conf'),
  });
  process.env.REDIS_URL = redis.url;
  console.error(`nommu-ci: private redis-server on ${redis.url} (data in ${path.join(CACHE_DIR, 'redis')})`);
}

const port = Number(process.env.PORT ?? 8080);
const api = await startApi({ port, host: process.env.HOST ?? '127.0.0.1', redis: process.env.REDIS_URL! });
// The worker runs untrusted builds; its own process keeps a crash there away from the API.
const worker = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_DIR, 'worker/src/index.ts')], {
  stdio: 'inherit',
  env: process.env,
});
console.error(`nommu-ci: API on http://127.0.0.1:${port} (docs at /docs), worker pid ${worker.pid}; ${await api.app.auth.describe()}`);

let stopping = false;
async function stop(code: number): Promise<never> {
  stopping = true;
  worker.kill('SIGTERM');
  await api.close();
  await new Promise((r) => (worker.exitCode !== null ? r(null) : worker.once('exit', r)));
  await redis?.stop();
  process.exit(code);
}
worker.on('exit', (code) => {
  if (!stopping) {
    console.error(`nommu-ci: worker exited (${code}); stopping`);
    void stop(1);
  }
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stop(0));
