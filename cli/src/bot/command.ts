/**
 * `nommu-ci bot patchwork`: the long-running patchwork bot (patchwork-bot.ts) with its options.
 * It stops cleanly on SIGINT/SIGTERM; its state is in Redis, so a restart goes on from there.
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { redisUrl } from '@nommu-ci/shared';
import { Client } from '../client.js';
import { Mailer } from './mail.js';
import { PatchworkApi } from './patchwork-api.js';
import { PatchworkBot } from './patchwork-bot.js';
import { BotState } from './state.js';
import { commandArgs } from '../args.js';

export const BOT_USAGE = `usage:
  nommu-ci bot patchwork --url URL --project NAME --token-file FILE [--server URL] [--token T]
      [--public-url URL] [--redis URL] [--context nommu-ci] [--per-patch-max 8]
      [--kunitconfig FILE] [--kernel NAME] [--timeout SECONDS] [--since ISO-DATE] [--interval SECONDS]
      [--flaky SUITE.CASE-GLOB ...] [--smtp smtp://HOST:PORT [--email-from ADDR] [--email-to ADDR ...]]
  --url, --project      the patchwork instance and the project's link name
  --token-file          file holding the patchwork API token (a maintainer of the project)
  --server, --token     the nommu-ci API and a token with role submit (default $NOMMU_CI_URL, $NOMMU_CI_TOKEN)
  --public-url          base of the links posted in checks (default --server)
  --redis               where the bot keeps its state (default $REDIS_URL or redis://127.0.0.1:6390)
  --since               oldest series date to test, set on the first start (default: one day before it)
  --smtp                also email each report in reply to the cover letter (off by default)`;

export async function botCommand(argv: string[], err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  const args = commandArgs(
    argv,
    {
      url: { type: 'string' },
      project: { type: 'string' },
      'token-file': { type: 'string' },
      server: { type: 'string' },
      token: { type: 'string' },
      'public-url': { type: 'string' },
      redis: { type: 'string' },
      context: { type: 'string', default: 'nommu-ci' },
      'per-patch-max': { type: 'string', default: '8' },
      kunitconfig: { type: 'string' },
      kernel: { type: 'string' },
      timeout: { type: 'string' },
      since: { type: 'string' },
      interval: { type: 'string', default: '300' },
      flaky: { type: 'string', multiple: true },
      smtp: { type: 'string' },
      'email-from': { type: 'string' },
      'email-to': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    { command: 'bot', text: BOT_USAGE, err: err },
  );
  if (!args) return 64;
  const { values, positionals } = args;
  if (values.help) {
    err(BOT_USAGE + '\n');
    return 0;
  }
  const missing = (['url', 'project', 'token-file'] as const).filter((k) => !values[k]);
  if (positionals[0] !== 'patchwork' || missing.length > 0) {
    err(`nommu-ci bot: ${positionals[0] !== 'patchwork' ? 'the only bot is "patchwork"' : `missing --${missing.join(', --')}`}\n${BOT_USAGE}\n`);
    return 64;
  }
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(values.context)) {
    err(`nommu-ci bot: --context must be a slug (lower case, digits, - and _), not "${values.context}"\n`);
    return 64;
  }
  const since = values.since ?? new Date(Date.now() - 24 * 3600_000).toISOString();
  if (Number.isNaN(Date.parse(since))) {
    err(`nommu-ci bot: --since: not an ISO 8601 date: "${since}"\n`);
    return 64;
  }
  const log = (m: string) => err(`${new Date().toISOString()} nommu-ci bot: ${m}\n`);
  const server = (values.server ?? process.env.NOMMU_CI_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  const redis = new Redis(values.redis ?? redisUrl(), { maxRetriesPerRequest: null });
  redis.on('error', (e: Error) => log(`redis: ${e.message}`));
  const pwUrl = values.url!.replace(/\/$/, '');
  const mailer = values.smtp ? new Mailer({ smtpUrl: values.smtp, from: values['email-from'], to: values['email-to'] }) : undefined;
  const bot = new PatchworkBot({
    pw: new PatchworkApi(pwUrl, readFileSync(values['token-file']!, 'utf8').trim(), { attempts: 6, baseMs: 2000, maxMs: 120_000, log }),
    project: values.project!,
    api: new Client(server, values.token ?? (process.env.NOMMU_CI_TOKEN || undefined)),
    state: new BotState(redis, pwUrl, values.project!),
    publicUrl: values['public-url'] ?? server,
    context: values.context,
    perPatchMax: Number(values['per-patch-max']),
    since,
    ...(values.kunitconfig ? { kunitconfig: readFileSync(values.kunitconfig, 'utf8') } : {}),
    ...(values.kernel ? { kernel: values.kernel } : {}),
    ...(values.timeout ? { timeoutS: Number(values.timeout) } : {}),
    flaky: values.flaky ?? [],
    ...(mailer ? { mailer } : {}),
    log,
  });
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
  log(`watching ${pwUrl} project ${values.project}, testing on ${server}${mailer ? `, emailing reports via ${values.smtp}` : ''}`);
  await bot.run(stop.signal, Number(values.interval) * 1000);
  mailer?.close();
  await redis.quit().catch(() => redis.disconnect());
  log('stopped');
  return 0;
}
