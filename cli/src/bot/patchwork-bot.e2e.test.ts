/**
 * The patchwork bot end to end, every part real: Patchwork 3.1.3 (infra/testdeps/patchwork) with
 * the fixture series loaded by `manage.py parsearchive` (shared/fixtures/series/
 * nommu-break-series.mbox: 1/3 a comment, 2/3 breaks only the no-MMU build, 3/3 a comment), the
 * API with tokens on, the job worker building and booting User-Mode Linux, the run worker, an
 * SMTP server (smtp-server), and the bot as its own process (`nommu-ci bot patchwork`).
 *
 * Checked: the checks read back through patchwork's API (success on 1/3, fail on 2/3 and 3/3,
 * each with a target_url within 200 characters that opens the run); the email report in reply to
 * the cover letter; a series that does not apply gets a check saying so; and a restarted bot,
 * even one whose record of what it posted was lost, posts nothing twice.
 *
 * The kernels use the small kunitconfig of the run and pipeline tests, so the base builds are the
 * ones those tests cache.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { SMTPServer } from 'smtp-server';
import type { FastifyInstance } from 'fastify';
import { JobStore, loadBootSelftests, loadCatalog, loadSeries, REPO_DIR, runQueueNames, type QueueJobData } from '@nommu-ci/shared';
import { freePort, startRedisServer, type RedisServer } from '@nommu-ci/shared/redis-server';
import { buildApp } from '@nommu-ci/api';
import { startWorker, type RunningWorker } from '@nommu-ci/worker';
import { startRunWorker, type RunningRunWorker } from '@nommu-ci/worker/runs';
import { patchworkAvailable, startPatchwork, type Patchwork } from '../../../infra/testdeps/patchwork.js';
import type { PwCheck, PwSeries } from './patchwork-api.js';

const SMALL = 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n';
const SERIES = readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/nommu-break-series.mbox'), 'utf8');
const COVER_ID = 'cover.1796327607.git.fixtures@nommu-ci.invalid';
// One patch whose context is not in mm/nommu.c: it cannot apply.
const NOT_APPLYING = `From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
Message-Id: <stale.1796327607.git.fixtures@nommu-ci.invalid>
From: Nommu CI Fixtures <fixtures@nommu-ci.invalid>
Date: Mon, 30 Nov 2026 07:00:00 +0000
Subject: [PATCH] mm/nommu: a patch against a tree this kernel is not

Signed-off-by: Nommu CI Fixtures <fixtures@nommu-ci.invalid>
---
 mm/nommu.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/mm/nommu.c b/mm/nommu.c
--- a/mm/nommu.c
+++ b/mm/nommu.c
@@ -93,3 +93,3 @@ unsigned int kobjsize(const void *objp)
 	this line is not in mm/nommu.c
-	nor is this one
+	and this one replaces it
 	nor this one
-- 
2.39.5
`;
const ADMIN = 'bot-test-admin-token';
const kernel = loadCatalog()[0]!;
const series = loadSeries();
const TIMEOUT_MS = 80 * 60_000;

const canRun = kernel.available && series !== null && (await patchworkAvailable());

describe.skipIf(!canRun)('the patchwork bot against a real patchwork', () => {
  let redisServer: RedisServer;
  let redis: Redis;
  let queue: Queue<QueueJobData>;
  let app: FastifyInstance;
  let apiUrl: string;
  let worker: RunningWorker;
  let runWorker: RunningRunWorker;
  let pw: Patchwork;
  let smtp: SMTPServer;
  let smtpPort: number;
  const mails: { to: string[]; text: string }[] = [];
  let dir: string;
  let botToken: string;
  let bot: { proc: ChildProcess; log: string } | null = null;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'nci-bot-test-'));
    redisServer = await startRedisServer({ dir: path.join(dir, 'redis') });
    redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    queue = new Queue<QueueJobData>(`nci-bot-${process.pid}`, { connection: redis.duplicate() });
    app = await buildApp({
      redis, store: new JobStore(redis), queue, catalog: () => loadCatalog(), series: () => loadSeries(), bootSelftests: () => loadBootSelftests(),
      auth: { adminToken: ADMIN, anonymousReads: true, maxConcurrent: 40, maxPerHour: 400, requestsPerMinute: 600 },
    });
    apiUrl = await app.listen({ port: 0, host: '127.0.0.1' });
    worker = await startWorker({ redisUrl: redisServer.url, queueName: queue.name, concurrency: 1, log: () => undefined });
    runWorker = await startRunWorker({ redisUrl: redisServer.url, jobsQueueName: queue.name, log: () => undefined });
    const made = await app.inject({ method: 'POST', url: '/v1/admin/tokens', headers: { authorization: `Bearer ${ADMIN}` }, payload: { name: 'patchwork-bot', role: 'submit' } });
    botToken = made.json().token;

    smtpPort = await freePort();
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address), text: Buffer.concat(chunks).toString('utf8') });
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(smtpPort, '127.0.0.1', r));

    pw = await startPatchwork();
    await pw.parseArchive(SERIES);
    await pw.parseArchive(NOT_APPLYING);
    writeFileSync(path.join(dir, 'pw-token'), pw.token + '\n');
    writeFileSync(path.join(dir, 'small.kunitconfig'), SMALL);
  }, 10 * 60_000);

  afterAll(async () => {
    await stopBot();
    await pw?.stop();
    await new Promise((r) => (smtp ? smtp.close(() => r(null)) : r(null)));
    await runWorker?.close();
    await worker?.close(0);
    await app?.close();
    for (const n of queue ? [queue.name, runQueueNames(queue.name).runs, runQueueNames(queue.name).webhooks] : []) {
      const q = new Queue(n, { connection: redis.duplicate() });
      await q.obliterate({ force: true });
      await q.close();
    }
    await queue?.close();
    redis?.disconnect();
    await redisServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function startBot(): void {
    const proc = spawn(
      process.execPath,
      [
        path.join(REPO_DIR, 'cli/bin/nommu-ci.js'), 'bot', 'patchwork',
        '--url', pw.url, '--project', pw.project.linkname, '--token-file', path.join(dir, 'pw-token'),
        '--server', apiUrl, '--token', botToken, '--redis', redisServer.url,
        '--since', '2000-01-01T00:00:00', '--interval', '2', '--timeout', '3600', '--kunitconfig', path.join(dir, 'small.kunitconfig'),
        '--smtp', `smtp://127.0.0.1:${smtpPort}`, '--email-to', 'maintainer@example.org',
      ],
      { cwd: REPO_DIR, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const b = { proc, log: '' };
    proc.stderr!.on('data', (d: Buffer) => (b.log += d.toString()));
    bot = b;
  }

  async function stopBot(): Promise<string> {
    if (!bot) return '';
    const { proc } = bot;
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    const log = bot.log;
    bot = null;
    return log;
  }

  const pwGet = async <T>(p: string): Promise<T> => (await (await fetch(`${pw.url}${p}`)).json()) as T;
  const checksOf = (patch: number) => pwGet<PwCheck[]>(`/api/patches/${patch}/checks/`);

  async function waitFor(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; bot log:\n${bot?.log ?? ''}`);
      await new Promise((r) => setTimeout(r, 3000));
    }
  }

  it(
    'posts success on 1/3 and fail on 2/3 and 3/3 with links to the run, mails the report, and posts nothing twice after restarts',
    async () => {
      const [fixture, stale] = (await pwGet<PwSeries[]>('/api/series/?order=id')) as [PwSeries, PwSeries];
      expect(fixture.received_all).toBe(true);
      const patches = fixture.patches.map((p) => p.id);
      startBot();
      await waitFor('checks on every patch', async () => (await Promise.all([...patches, stale.patches[0]!.id].map(checksOf))).every((c) => c.length > 0), TIMEOUT_MS);

      const [c1, c2, c3] = (await Promise.all(patches.map(checksOf))).map((c) => c[0]!);
      const detail = JSON.stringify([c1, c2, c3], null, 2);
      expect([c1!.state, c2!.state, c3!.state], detail).toEqual(['success', 'fail', 'fail']);
      for (const c of [c1!, c2!, c3!]) expect(c.context).toBe('nommu-ci');
      expect(c2!.description, detail).toMatch(/^breaks only the no-MMU build: mm\/nommu\.c:\d+ .*vma_span_bytes/);
      expect(c3!.description, detail).toMatch(/^still broken: tested on top of 2\/3: breaks only the no-MMU build: mm\/nommu\.c:\d+/);
      expect(c1!.description, detail).toBe('no regression up to this patch (the series regresses at 2/3)');
      // one run, linked from every check, within patchwork's 200 characters, and it opens
      expect(new Set([c1!.target_url, c2!.target_url, c3!.target_url]).size).toBe(1);
      const link = c1!.target_url!;
      expect(link.length).toBeLessThanOrEqual(200);
      const run = (await (await fetch(link)).json()) as { id: string; submitted_by: string; verdict: { breaksOnlyNoMmu: boolean }; blame: { patch: number }[] };
      expect(link.endsWith(run.id)).toBe(true);
      expect(run.submitted_by).toBe('patchwork-bot');
      expect(run.verdict.breaksOnlyNoMmu).toBe(true);
      expect(run.blame.map((b) => b.patch)).toEqual([2]);

      // the series that does not apply: a check that says so
      const [s] = await checksOf(stale.patches[0]!.id);
      expect(s).toMatchObject({ state: 'warning', context: 'nommu-ci' });
      expect(s!.description).toMatch(/^not tested: patch 1\/1 does not apply to debian-7\.2/);

      // the email report, in reply to the cover letter, to the address the operator set
      await waitFor('two emails', async () => mails.length >= 2, 60_000);
      const mail = mails.find((m) => m.text.includes(`In-Reply-To: <${COVER_ID}>`));
      expect(mail, mails.map((m) => m.text.slice(0, 400)).join('\n---\n')).toBeDefined();
      expect(mail!.to).toEqual(['maintainer@example.org']);
      expect(mail!.text).toContain(`Subject: Re: [PATCH 0/3] nommu-ci bot fixture`);

      // a restart posts nothing more; nor does one that lost its record of the posts (killed
      // between posting and recording): the bot finds its checks in patchwork
      const firstLog = await stopBot();
      expect(firstLog).toContain(`series ${fixture.id} "${fixture.name}": success fail fail`);
      startBot();
      await waitFor('the restarted bot to pass twice', async () => (bot!.log.match(/pass: /g) ?? []).length >= 2, 60_000);
      const second = await stopBot();
      expect(second).not.toMatch(/series \d+ .*: (success|fail|warning)/);
      const keys = await redis.keys('nci:bot:pw:*:series:*');
      for (const k of keys) {
        const fields = Object.keys(await redis.hgetall(k)).filter((f) => f.startsWith('posted:') || f === 'done');
        await redis.hdel(k, ...fields);
      }
      startBot();
      await waitFor('the bot to go over the series again', async () => (bot!.log.match(/: success fail fail/g) ?? []).length >= 1, 60_000);
      await stopBot();
      for (const p of [...patches, stale.patches[0]!.id]) expect((await checksOf(p)).length, `checks of patch ${p}`).toBe(1);
      expect(mails.length).toBe(2);
    },
    TIMEOUT_MS + 5 * 60_000,
  );
});
