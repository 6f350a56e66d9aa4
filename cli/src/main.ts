/**
 * nommu-ci command-line client. Exit status: 0 passed, 1 tests failed or the kernel did not
 * build or boot, 2 error or canceled, 64 usage or request error: scripts and CI can branch on it.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { jobCoverageText, type JobCoverage, type JobRecord, type JobRequest } from '@nommu-ci/shared';
import { ApiError, Client } from './client.js';
import { runCommand } from './run.js';
import { tokenCommand } from './token.js';
import { botCommand } from './bot/command.js';

const USAGE = `usage:
  nommu-ci submit [--follow] [--no-mmu|--mmu] [--kernel NAME] [--patch FILE]
                  [--kunitconfig FILE] [--kconfig-add CONFIG_X=y ...] [--filter GLOB]
                  [--selftest NAME ...] [--kselftest TARGET ... [--ktest TARGET:NAME ...]]
                  [--timeout SECONDS] [--shards N] [--run-isolated suite|test]
                  [--attr-filter EXPR [--filter-action skip]] [--list-tests]
                  [--results tree|kunit-json|junit|coverage]   (with --follow: print them at the end)
  nommu-ci follow ID      stream KTAP and progress until the job ends
  nommu-ci status ID      print the job as JSON
  nommu-ci results ID [--results tree|kunit-json|junit|coverage]
                          (kunit.py --json document, JUnit XML; coverage: a coverage job's lines executed,
                           and the changed lines of its patch that no test executed)
  nommu-ci cancel ID
  nommu-ci kernels
  nommu-ci run ...         a series against its base on both kernels (nommu-ci run --help)
  nommu-ci token ...       create, list, revoke tokens (admin; nommu-ci token --help)
  nommu-ci bot patchwork   test patchwork series and post checks (nommu-ci bot --help)
options: --server URL (default $NOMMU_CI_URL or http://127.0.0.1:8080)
         --token TOKEN (default $NOMMU_CI_TOKEN), when the server needs one`;

export const EXIT = { passed: 0, failed: 1, error: 2, usage: 64 } as const;

function exitCodeFor(rec: JobRecord): number {
  if (rec.state === 'passed') return EXIT.passed;
  if (rec.state === 'failed') return EXIT.failed;
  return EXIT.error;
}

function buildRequest(v: Record<string, string | boolean | string[] | undefined>): JobRequest {
  const common = {
    ...(v.kernel ? { kernel: v.kernel as string } : {}),
    ...(v['no-mmu'] ? { mmu: false } : v.mmu ? { mmu: true } : {}),
    ...(v.patch ? { patch: readFileSync(v.patch as string, 'utf8') } : {}),
    ...(v['kconfig-add'] ? { kconfig_add: v['kconfig-add'] as string[] } : {}),
    ...(v.timeout ? { timeout_s: Number(v.timeout) } : {}),
  };
  if (v.selftest) return { kind: 'boot-selftest', selftests: v.selftest as string[], ...common };
  if (v.kselftest) return { kind: 'kselftest', targets: v.kselftest as string[], ...(v.ktest ? { tests: v.ktest as string[] } : {}), ...common };
  return {
    kind: 'kunit',
    ...common,
    ...(v.kunitconfig ? { kunitconfig: readFileSync(v.kunitconfig as string, 'utf8') } : {}),
    ...(v.filter ? { filter_glob: v.filter as string } : {}),
    ...(v['attr-filter'] ? { filter: v['attr-filter'] as string } : {}),
    ...(v['filter-action'] ? { filter_action: v['filter-action'] as 'skip' } : {}),
    ...(v['run-isolated'] ? { isolate: v['run-isolated'] as 'suite' | 'test' } : {}),
    ...(v['list-tests'] ? { list_only: true } : {}),
    ...(v.shards ? { shards: Number(v.shards) } : {}),
  };
}

type ResultsFormat = 'tree' | 'kunit-json' | 'junit' | 'coverage';

function resultsFormat(f: string): ResultsFormat {
  if (f === 'tree' || f === 'kunit-json' || f === 'junit' || f === 'coverage') return f;
  throw new ApiError(400, `--results: "${f}" is not one of tree, kunit-json, junit, coverage`);
}

/** The results as printed: coverage in words, the other formats as the API sends them. */
async function resultsText(client: Client, id: string, format: ResultsFormat): Promise<string> {
  const body = await client.results(id, format);
  return format === 'coverage' ? jobCoverageText(JSON.parse(body) as JobCoverage) : body.replace(/\n?$/, '\n');
}

/** KTAP to stdout as it arrives (unless the results are printed instead); state changes, progress and a running count to stderr. */
async function follow(client: Client, id: string, quiet = false): Promise<number> {
  const started = Date.now();
  const elapsed = () => `${Math.round((Date.now() - started) / 1000)}s`;
  const counts = { pass: 0, fail: 0, skip: 0, crash: 0 };
  const tty = process.stderr.isTTY;
  const tap = (async () => {
    for await (const chunk of client.tap(id)) if (!quiet) process.stdout.write(chunk);
  })();
  for await (const e of client.events(id)) {
    const data = JSON.parse(e.data) as {
      type?: string;
      state?: string;
      stage?: string | null;
      message?: string | null;
      status?: keyof typeof counts;
      done?: number;
      total?: number | null;
      unit?: string;
    };
    if (e.event === 'progress') {
      const line = progressLine(data as { stage: string; done: number; total: number | null; unit: string });
      if (tty) process.stderr.write(`\r\x1b[K[${elapsed()}] ${line}`);
      else if (data.total !== null && data.done === data.total) process.stderr.write(`nommu-ci: ${line}\n`);
    } else if (e.event === 'state') {
      process.stderr.write(`${tty ? '\r\x1b[K' : ''}nommu-ci: ${data.state}${data.stage ? ` (${data.stage})` : ''} after ${elapsed()}${data.message ? `: ${data.message}` : ''}\n`);
    } else if (e.event === 'test' && data.status) {
      counts[data.status]++;
      if (tty) process.stderr.write(`\r\x1b[K[${elapsed()}] ${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped, ${counts.crash} crashed`);
    }
  }
  await tap;
  const rec = await client.job(id);
  const s = rec.summary;
  process.stderr.write(
    `${tty ? '\r\x1b[K' : ''}nommu-ci: job ${id} ${rec.state}${rec.stage && rec.state !== 'passed' ? ` at stage ${rec.stage}` : ''}: ` +
      `${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped, ${s.crashed} crashed` +
      `${rec.config ? `; CONFIG_MMU=${rec.config.mmu ? 'y' : 'n'}` : ''}${rec.kernel ? `; ${rec.kernel.name} ${rec.kernel.version}` : ''}\n` +
      (rec.message && rec.state !== 'passed' ? `nommu-ci: ${rec.message}\n` : ''),
  );
  return exitCodeFor(rec);
}

/** "build: 1234/5678 objects (21%)", "test: 12/78 suites (15%)". */
export function progressLine(p: { stage: string; done: number; total: number | null; unit: string }): string {
  if (p.total === null || p.total === 0) return `${p.stage}: ${p.done} ${p.unit}`;
  const pct = Math.min(100, Math.floor((100 * p.done) / p.total));
  const width = 20;
  const bar = '#'.repeat(Math.round((width * pct) / 100)).padEnd(width, '.');
  return `${p.stage}: [${bar}] ${p.done}/${p.total} ${p.unit} (${pct}%)`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'run') return runCommand(argv.slice(1));
  if (argv[0] === 'token') return tokenCommand(argv.slice(1));
  if (argv[0] === 'bot') return botCommand(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      server: { type: 'string' },
      token: { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
      mmu: { type: 'boolean' },
      'no-mmu': { type: 'boolean' },
      kernel: { type: 'string' },
      patch: { type: 'string' },
      kunitconfig: { type: 'string' },
      'kconfig-add': { type: 'string', multiple: true },
      filter: { type: 'string' },
      selftest: { type: 'string', multiple: true },
      kselftest: { type: 'string', multiple: true },
      ktest: { type: 'string', multiple: true },
      timeout: { type: 'string' },
      shards: { type: 'string' },
      'run-isolated': { type: 'string' },
      'attr-filter': { type: 'string' },
      'filter-action': { type: 'string' },
      'list-tests': { type: 'boolean' },
      results: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, arg] = positionals;
  if (values.help || !cmd) {
    process.stderr.write(USAGE + '\n');
    return values.help ? 0 : EXIT.usage;
  }
  const client = new Client((values.server ?? process.env.NOMMU_CI_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, ''), values.token ?? (process.env.NOMMU_CI_TOKEN || undefined));
  const needId = (): string => {
    if (!arg) throw new ApiError(400, `${cmd} needs a job id`);
    return arg;
  };
  switch (cmd) {
    case 'submit': {
      const { id } = await client.submit(buildRequest(values));
      process.stdout.write(values.follow ? '' : id + '\n');
      if (values.follow) {
        process.stderr.write(`nommu-ci: job ${id} queued\n`);
        const code = await follow(client, id, !!values.results);
        if (values.results) process.stdout.write(await resultsText(client, id, resultsFormat(values.results)));
        return code;
      }
      return 0;
    }
    case 'results':
      process.stdout.write(await resultsText(client, needId(), resultsFormat(values.results ?? 'tree')));
      return 0;
    case 'follow':
      return follow(client, needId());
    case 'status':
      process.stdout.write(JSON.stringify(await client.job(needId()), null, 2) + '\n');
      return 0;
    case 'cancel':
      process.stdout.write(JSON.stringify(await client.cancel(needId())) + '\n');
      return 0;
    case 'kernels':
      process.stdout.write(JSON.stringify(await client.kernels(), null, 2) + '\n');
      return 0;
    default:
      process.stderr.write(`unknown command "${cmd}"\n${USAGE}\n`);
      return EXIT.usage;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`nommu-ci: ${(err as Error).message}\n`);
    process.exit(err instanceof ApiError && err.status >= 400 ? EXIT.usage : EXIT.error);
  },
);
