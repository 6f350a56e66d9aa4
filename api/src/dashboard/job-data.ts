/**
 * What the job page shows beyond the record: per-suite durations from the arrival times of the
 * KTAP lines (Redis stream ids are milliseconds), the config lines the job asked for against the
 * final .config, the console around a crash, and the CLI command that submits the same job.
 */
import type { Redis } from 'ioredis';
import { parseKconfig, parseKconfigLine, type BootSelftest, type JobRequest, type JobStore, type TestNode } from '@nommu-ci/shared';

const TOP_RESULT = /^(?:not )?ok \d+(?: -)? ?([^#\s]+)/;
const TOP_START = /^(?:K?TAP version \d+|1\.\.\d+)/;

/**
 * Milliseconds each top-level test (suite) took: from the first line after the previous
 * top-level line to its own result line. KTAP carries no times; the stream ids do.
 */
export async function suiteDurations(redis: Redis, store: JobStore, id: string, attempt: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const key = store.tapKey(id, Math.max(1, attempt));
  let start: number | null = null;
  // XRANGE, never a blocking read: this runs on the API's shared connection.
  for (let from = '-'; ; ) {
    const entries = await redis.xrange(key, from, '+', 'COUNT', 1000);
    for (const [eid, kv] of entries) {
      const i = kv.indexOf('l');
      if (i < 0 || i % 2 !== 0) continue;
      const line = kv[i + 1]!;
      const t = Number(eid.split('-')[0]);
      if (TOP_START.test(line)) {
        start = null;
        continue;
      }
      const m = TOP_RESULT.exec(line);
      if (m) {
        if (start !== null) out.set(m[1]!, t - start);
        start = null;
      } else if (start === null) start = t;
    }
    if (entries.length < 1000) break;
    from = `(${entries[entries.length - 1]![0]}`;
  }
  return out;
}

export interface ConfigLine {
  option: string;
  asked: string;
  got: string | null;
  ok: boolean;
}

/** The options the job asked for (kunitconfig, kconfig_add, a selftest's own) and what the final .config has. */
export function configAskedVsGot(req: JobRequest, finalConfig: string | null, selftests: readonly BootSelftest[]): ConfigLine[] | null {
  const asked = new Map<string, string>();
  if (req.kind === 'kunit' && req.kunitconfig) for (const [k, v] of parseKconfig(req.kunitconfig).options) asked.set(k, v);
  if (req.kind === 'boot-selftest') {
    for (const t of selftests.filter((s) => req.selftests.includes(s.name))) for (const [k, v] of parseKconfig(t.kconfig.join('\n')).options) asked.set(k, v);
  }
  for (const line of req.kconfig_add ?? []) {
    const kv = parseKconfigLine(line);
    if (kv) asked.set(kv[0], kv[1]);
  }
  if (asked.size === 0 || finalConfig === null) return null;
  const got = new Map<string, string>();
  for (const line of finalConfig.split('\n')) {
    const kv = parseKconfigLine(line.trim());
    if (kv) got.set(kv[0], kv[1]);
  }
  return [...asked].map(([option, v]) => {
    const g = got.get(option) ?? null;
    return { option, asked: v, got: g, ok: g === v || (v === 'n' && g === null) };
  });
}

/** Console lines around the line that reported a crash (or the end of the console when the line is not found). */
export function crashExcerpt(consoleLog: string, reason: string | undefined, before = 20, after = 25): { text: string; from: number } {
  const lines = consoleLog.split('\n');
  const needle = reason?.trim();
  let at = needle ? lines.findIndex((l) => l.includes(needle)) : -1;
  if (at < 0) at = Math.max(0, lines.length - after);
  const from = Math.max(0, at - before);
  return { text: lines.slice(from, at + after).join('\n'), from: from + 1 };
}

/** Leaves that failed or crashed, with their dotted paths, in tree order. */
export function problems(tests: readonly TestNode[]): { path: string; node: TestNode }[] {
  const out: { path: string; node: TestNode }[] = [];
  const visit = (t: TestNode, prefix: string) => {
    const p = prefix ? `${prefix}.${t.name}` : t.name;
    const bad = t.status === 'fail' || t.status === 'crash';
    const badChild = t.children.some((c) => c.status === 'fail' || c.status === 'crash');
    if (bad && !badChild) out.push({ path: p, node: t });
    t.children.forEach((c) => visit(c, p));
  };
  tests.forEach((t) => visit(t, ''));
  return out;
}

/** Single-quotes a shell word when it needs it. */
const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Text as a printf format that prints it back, newlines as \\n: the command stays one line. */
const printfFormat = (text: string) => text.replace(/\\/g, '\\\\').replace(/%/g, '%%').replace(/\n/g, '\\n');

/**
 * One shell line that submits the same job with the CLI. Small files (kunitconfig) go inline
 * with printf; the patch is fetched from this job's page.
 */
export function reproducer(req: JobRequest, baseUrl: string, id: string): string {
  const args = ['npx', 'nommu-ci', 'submit', '--follow', '--server', q(baseUrl)];
  if (req.kernel) args.push('--kernel', q(req.kernel));
  if (req.mmu !== undefined) args.push(req.mmu ? '--mmu' : '--no-mmu');
  if (req.kind === 'kunit') {
    if (req.kunitconfig !== undefined) args.push('--kunitconfig', `<(printf ${q(printfFormat(req.kunitconfig))})`);
    if (req.filter_glob) args.push('--filter', q(req.filter_glob));
  } else if (req.kind === 'boot-selftest') {
    for (const s of req.selftests) args.push('--selftest', q(s));
  } else {
    for (const t of req.targets) args.push('--kselftest', q(t));
    for (const t of req.tests ?? []) args.push('--ktest', q(t));
  }
  for (const k of req.kconfig_add ?? []) args.push('--kconfig-add', q(k));
  if (req.timeout_s) args.push('--timeout', String(req.timeout_s));
  if (req.patch) args.push('--patch', `<(curl -fsS ${q(`${baseUrl.replace(/\/+$/, '')}/jobs/${id}/patch`)})`);
  return args.join(' ');
}
