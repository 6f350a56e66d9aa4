/**
 * `nommu-ci run`: submit a patch series as a run (base and base + series, on the no-MMU and the
 * MMU kernel), follow its four jobs with a progress line per build/boot stage, optionally stream
 * one cell's KTAP, print the verdict (or a report in any format), and exit by it:
 * 0 no regression, 1 regression, 2 error, 64 usage or request error.
 *
 *   nommu-ci run --patch series.mbox [--follow] [--per-patch] [--coverage] [--kernel NAME] [--kunitconfig FILE]
 *                [--kconfig-add CONFIG_X=y ...] [--filter GLOB] [--callback URL] [--timeout S]
 *                [--ktap base-nommu|base-mmu|series-nommu|series-mmu] [--format FORMAT]
 *   nommu-ci run RUN_ID [--follow] [--format FORMAT]     follow or report an existing run
 */
import { readFileSync } from 'node:fs';
import { cellText, changeText, runCoverageGaps, runCoverageLines, runNotExecutedLines, type RunRecord, type Verdict } from '@nommu-ci/shared';
import { ApiError, Client } from './client.js';
import { commandArgs } from './args.js';

export const RUN_USAGE = `usage:
  nommu-ci run --patch series.mbox [--follow] [--per-patch] [--coverage] [--kernel NAME] [--kunitconfig FILE]
               [--kconfig-add CONFIG_X=y ...] [--filter GLOB] [--callback URL] [--timeout SECONDS]
               [--ktap base-nommu|base-mmu|series-nommu|series-mmu] [--format markdown|email|patchwork|kcidb|json]
  nommu-ci run RUN_ID [--follow] [--format FORMAT]
exit status: 0 no regression, 1 regression, 2 error, 64 usage or request error
options: --server URL (default $NOMMU_CI_URL or http://127.0.0.1:8080), --token TOKEN (default $NOMMU_CI_TOKEN)`;

export const RUN_EXIT = { passed: 0, regression: 1, error: 2, usage: 64 } as const;

type RunView = Omit<RunRecord, 'cells' | 'prefixes'> & {
  cells: (RunRecord['cells'][number] & { state: string; stage: string | null; message: string | null })[];
  prefixes: (RunRecord['prefixes'][number] & { state: string; stage: string | null })[];
};

export interface RunCommandIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Poll interval while following, ms. */
  pollMs?: number;
}

const label = (c: { series: boolean; mmu: boolean }) => `${c.series ? 'series' : 'base'} ${c.mmu ? 'MMU' : 'no-MMU'}`;

/** The verdict as a few plain lines for a terminal. */
export function verdictText(run: Pick<RunRecord, 'id' | 'state' | 'blame' | 'series' | 'coverage'> & { verdict: Verdict | null }): string {
  const v = run.verdict;
  if (!v) return `run ${run.id}: ${run.state}\n`;
  const out = [`nommu-ci: run ${run.id} ${run.state}: ${v.headline}`];
  for (const k of v.kernels) {
    out.push(`  ${k.label.padEnd(7)} base: ${cellText(k.base, false)}; with series: ${cellText(k.series, false)}; ${changeText(k, v.breaksOnlyNoMmu)}`);
    for (const l of k.build?.errors.slice(0, 6) ?? []) out.push(`      ${l}`);
    if (k.boot) out.push(`      ${k.boot.split('\n')[0]}`);
    for (const t of k.tests.filter((x) => x.regression).slice(0, 20)) out.push(`      ${t.kind}: ${t.path} (${t.base ?? '-'} -> ${t.series ?? '-'})`);
  }
  if (v.apply) out.push(`  does not apply: patch ${v.apply.patch ?? '?'}${v.apply.file ? ` at ${v.apply.file}${v.apply.line ? `:${v.apply.line}` : ''}` : ''}${v.apply.hunk ? ` hunk ${v.apply.hunk}` : ''}`);
  for (const b of run.blame ?? []) {
    out.push(`  first bad patch on ${b.mmu ? 'MMU' : 'no-MMU'} (${b.what}): ${b.patch ? `${b.patch}/${run.series.patches.length} ${b.subject}` : 'could not be narrowed'}`);
  }
  if (run.coverage) {
    out.push('  changed lines executed:');
    for (const l of [...runCoverageLines(run.coverage), ...runNotExecutedLines(run.coverage), ...runCoverageGaps(run.coverage).map((g) => `not measured on ${g}`)]) out.push(`    ${l}`);
  }
  return out.join('\n') + '\n';
}

function exitFor(state: string): number {
  if (state === 'passed') return RUN_EXIT.passed;
  if (state === 'failed') return RUN_EXIT.regression;
  return RUN_EXIT.error;
}

export async function runCommand(argv: string[], io: RunCommandIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  const args = commandArgs(
    argv,
    {
      server: { type: 'string' },
      patch: { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
      'per-patch': { type: 'boolean' },
      coverage: { type: 'boolean' },
      kernel: { type: 'string' },
      kunitconfig: { type: 'string' },
      'kconfig-add': { type: 'string', multiple: true },
      filter: { type: 'string' },
      callback: { type: 'string' },
      timeout: { type: 'string' },
      ktap: { type: 'string' },
      format: { type: 'string' },
      token: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    { command: 'run', text: RUN_USAGE, err: io.err },
  );
  if (!args) return RUN_EXIT.usage;
  const { values, positionals } = args;
  if (values.help) {
    io.err(RUN_USAGE + '\n');
    return 0;
  }
  const base = (values.server ?? process.env.NOMMU_CI_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  const api = new Client(base, values.token ?? (process.env.NOMMU_CI_TOKEN || undefined));
  const existing = positionals[0];
  if (!values.patch && !existing) {
    io.err(`nommu-ci run: --patch FILE or a run id is needed\n${RUN_USAGE}\n`);
    return RUN_EXIT.usage;
  }
  try {
    let id: string;
    if (values.patch) {
      const body = {
        patch: readFileSync(values.patch, 'utf8'),
        ...(values.kernel ? { kernel: values.kernel } : {}),
        ...(values.kunitconfig ? { kunitconfig: readFileSync(values.kunitconfig, 'utf8') } : {}),
        ...(values['kconfig-add'] ? { kconfig_add: values['kconfig-add'] } : {}),
        ...(values.filter ? { filter_glob: values.filter } : {}),
        ...(values['per-patch'] ? { per_patch: true } : {}),
        ...(values.coverage ? { coverage: true } : {}),
        ...(values.callback ? { callback_url: values.callback } : {}),
        ...(values.timeout ? { timeout_s: Number(values.timeout) } : {}),
      };
      ({ id } = await api.call<{ id: string }>('POST', '/v1/runs', body));
      if (!values.follow) {
        io.out(id + '\n');
        return 0;
      }
      io.err(`nommu-ci: run ${id} queued (${base}/v1/runs/${id})\n`);
    } else id = existing!;

    let run = await api.call<RunView>('GET', `/v1/runs/${id}`);
    if (values.follow) run = await follow(api, id, run, values.ktap, io);
    if (values.format) io.out(await api.call<string>('GET', `/v1/runs/${id}/report?format=${encodeURIComponent(values.format)}`, undefined, true));
    else io.out(verdictText(run));
    return run.verdict || ['passed', 'failed', 'error'].includes(run.state) ? exitFor(run.state) : 0;
  } catch (e) {
    io.err(`nommu-ci run: ${(e as Error).message}\n`);
    return e instanceof ApiError && e.status >= 400 ? RUN_EXIT.usage : RUN_EXIT.error;
  }
}

/** Polls the run until it ends, printing a line whenever a cell changes state or stage. */
async function follow(api: Client, id: string, first: RunView, ktap: string | undefined, io: RunCommandIo): Promise<RunView> {
  const started = Date.now();
  const elapsed = () => `${Math.round((Date.now() - started) / 1000)}s`;
  const seen = new Map<string, string>();
  let tap: Promise<void> | null = null;
  if (ktap) {
    const cell = first.cells.find((c) => c.key === ktap);
    if (!cell) throw new ApiError(400, `--ktap: no cell "${ktap}" (cells: ${first.cells.map((c) => c.key).join(', ')})`);
    tap = (async () => {
      for await (const chunk of api.tap(cell.job)) io.out(chunk);
    })().catch((e: unknown) => io.err(`nommu-ci: KTAP stream: ${(e as Error).message}\n`));
  }
  let run = first;
  for (;;) {
    const all = [...run.cells.map((c) => ({ name: label(c), ...c })), ...run.prefixes.map((p) => ({ name: `first ${p.patches} patch${p.patches > 1 ? 'es' : ''} ${p.mmu ? 'MMU' : 'no-MMU'}`, ...p }))];
    for (const c of all) {
      const now = `${c.state}${c.stage ? ` (${c.stage})` : ''}`;
      if (seen.get(c.job) !== now) {
        seen.set(c.job, now);
        io.err(`nommu-ci: [${c.name}] ${now} after ${elapsed()}\n`);
      }
    }
    if (['passed', 'failed', 'error'].includes(run.state)) break;
    await new Promise((r) => setTimeout(r, io.pollMs ?? 2000));
    run = await api.call<RunView>('GET', `/v1/runs/${id}`);
  }
  if (tap) await Promise.race([tap, new Promise((r) => setTimeout(r, 2000))]);
  return run;
}
