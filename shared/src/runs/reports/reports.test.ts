/** Each report format against a reference example of the real format (shared/fixtures/reports). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parseMbox } from '../../mbox.js';
import { REPO_DIR } from '../../paths.js';
import { listSuite, sampleRun } from '../samples.js';
import { runCoverage } from '../../coverage/measure.js';
import { emailReport, jsonReport, kcidbReport, markdownReport, patchworkCheck, patchsetHash, renderReport, REPORT_FORMATS } from './index.js';

const FIX = path.join(REPO_DIR, 'shared/fixtures');
const mbox = parseMbox(readFileSync(path.join(FIX, 'series/fixture-series.mbox'), 'utf8'));
const o = { baseUrl: 'http://ci.example.org:8080/', reporter: 'nommu-ci <nommu-ci@example.org>', now: new Date('2026-11-29T05:10:00Z') };
const pass = { kind: 'passed' } as const;

const regression = sampleRun(
  mbox,
  { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': { kind: 'build-failed' }, 'series-mmu': { kind: 'test-failed', tests: [listSuite({ list_test_list_empty: 'fail' })] } },
  { kconfig_add: ['CONFIG_KASAN=y'], filter_glob: 'list-kunit-test' },
);
const passing = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': pass, 'series-mmu': pass });
const applyMsg = 'patch 2/3 "[PATCH 2/3] list: test: check list_empty() after list_add_tail()" does not apply:\nerror: patch failed: lib/tests/list-test.c:309\nerror: lib/tests/list-test.c: patch does not apply\nfailing hunk: lib/tests/list-test.c @@ -309,7 +309,7 @@ static void list_test_list_empty(struct kunit *test)';
const noApply = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': { kind: 'patch-failed', message: applyMsg }, 'series-mmu': { kind: 'patch-failed', message: applyMsg } });

describe('email (reference: a kernel test robot reply)', () => {
  const ref = readFileSync(path.join(FIX, 'reports/lkp-build-error.txt'), 'utf8').split('\n').filter((l) => !l.startsWith('# '));
  const mail = emailReport(regression.run, o);
  const body = mail.body.split('\n');

  it('is a reply in the thread of the series', () => {
    expect(mail.headers.Subject).toBe('Re: [PATCH 0/3] nommu-ci fixture series: one harmless patch, one KUnit failure, one no-MMU-only build break');
    expect(mail.headers['In-Reply-To']).toBe('<cover.1795928078.git.fixtures@nommu-ci.invalid>');
    expect(mail.headers.References).toBe('<cover.1795928078.git.fixtures@nommu-ci.invalid>');
    expect(mail.headers.To).toBe('Nommu CI Fixtures <fixtures@nommu-ci.invalid>');
    expect(mail.headers.From).toBe(o.reporter);
    expect(mail.text.startsWith('From: nommu-ci <nommu-ci@example.org>\n')).toBe(true);
    expect(mail.text).toContain('\n\nHi Nommu,\n');
    // RFC 5322: header names then a blank line; no header line starts with whitespace except folds
    const head = mail.text.split('\n\n')[0]!.split('\n');
    for (const l of head) expect(l).toMatch(/^([A-Za-z-]+: |\s+<)/);
  });

  it('has the robot layout: greeting, "noticed the following", bracketed tags, labelled fields, tags block, ">>" errors, signature', () => {
    const shape = (lines: string[]) => ({
      greeting: /^Hi \S+,$/.test(lines[0]!),
      noticed: lines.some((l) => /noticed the following .*:$/.test(l)),
      bracket: lines.some((l) => /^\[auto build test ERROR on .+\]$/.test(l)),
      fields: ['url', 'base', 'patch link', 'patch subject', 'config', 'compiler'].filter((f) => lines.some((l) => l.startsWith(`${f}:`))),
      reproduce: lines.some((l) => /^reproduce\b.*:/.test(l)),
      tagsIntro: lines.includes('the same patch/commit), kindly add following tags'),
      reported: lines.some((l) => /^\| Reported-by: .+ <[^>]+@[^>]+>$/.test(l)),
      closes: lines.some((l) => /^\| Closes: https?:\/\/\S+$/.test(l)),
      errorsIntro: lines.some((l) => /^All errors \(new ones prefixed by >>\)/.test(l)),
      newError: lines.some((l) => /^>> \S+:\d+:/.test(l)),
      signature: lines.includes('-- '),
    });
    expect(shape(body)).toEqual(shape(ref));
    expect(shape(ref).fields).toHaveLength(6);
  });

  it('says what was tested, what broke where, and how to reproduce', () => {
    expect(mail.body).toContain('[auto build test ERROR on debian-7.2 (no-MMU, CONFIG_MMU=n)]');
    expect(mail.body).toContain('[auto KUnit test FAIL on debian-7.2 (MMU, CONFIG_MMU=y)]');
    expect(mail.body).toContain('[the series breaks only the no-MMU build: the MMU kernel builds]');
    // the build error points at the patch that touches the file
    expect(mail.body).toContain('patch subject: [PATCH 3/3] mm/nommu: use vma_span_bytes() in kobjsize()');
    expect(mail.body).toContain(">> mm/nommu.c:95:32: error: implicit declaration of function 'vma_span_bytes'");
    expect(mail.body).toContain("   mm/nommu.c: In function 'kobjsize':");
    expect(mail.body).toContain('>> list-kunit-test.list_test_list_empty: FAIL (new-failure; pass without the series)');
    expect(mail.body).toContain('compiler:      gcc (Debian 14.2.0-19) 14.2.0');
    expect(mail.body).toContain(
      'reproduce:     npx nommu-ci run --server http://ci.example.org:8080 --patch series.mbox --kernel debian-7.2 --kconfig-add CONFIG_KASAN=y --filter list-kunit-test',
    );
    expect(mail.body).toContain('| Closes: http://ci.example.org:8080/runs/11111111-2222-4333-8444-555555555555');
  });

  it('a passing run says so and carries no Reported-by', () => {
    const m = emailReport(passing.run, o);
    expect(m.body).toContain('found no regressions');
    expect(m.body).not.toContain('Reported-by');
    expect(m.body).toContain('[no regression on debian-7.2 (MMU, CONFIG_MMU=y)]');
  });

  it('a series that does not apply names the patch and hunk', () => {
    const m = emailReport(noApply.run, o);
    expect(m.body).toContain('The series does not apply: patch 2/3 "[PATCH 2/3] list: test: check list_empty() after list_add_tail()", lib/tests/list-test.c:309, hunk @@ -309,7 +309,7 @@');
    expect(m.body).toContain('[cannot apply to debian-7.2 (no-MMU, CONFIG_MMU=n)]');
  });
});

describe('patchwork (reference: checks listed by a patchwork instance)', () => {
  const ref = JSON.parse(readFileSync(path.join(FIX, 'reports/patchwork-checks.json'), 'utf8')) as { _states: string[]; checks: Record<string, unknown>[] };
  const createFields = ['state', 'target_url', 'context', 'description'];

  it('has exactly the fields a check is created with, typed as patchwork has them', () => {
    for (const r of [regression, passing, noApply]) {
      const c = patchworkCheck(r.run, o) as unknown as Record<string, unknown>;
      expect(Object.keys(c).sort()).toEqual([...createFields].sort());
      for (const f of createFields) expect(Object.keys(ref.checks[0]!)).toContain(f);
      expect(ref._states).toContain(c.state);
      expect(ref.checks.map((x) => x.state)).toEqual(expect.arrayContaining(['warning', 'fail', 'success']));
      expect(c.context).toMatch(/^[-a-zA-Z0-9_]+$/); // a slug, like "apply_patch" and "apply-robot"
      expect(typeof c.description).toBe('string');
      expect(c.description).not.toContain('\n');
      expect(c.target_url).toMatch(/^https?:\/\//);
    }
  });

  it('maps the verdict to the state', () => {
    expect(patchworkCheck(regression.run, o)).toEqual({
      state: 'fail',
      context: 'nommu-ci',
      description: 'breaks only the no-MMU build; 1 new test failure on MMU',
      target_url: 'http://ci.example.org:8080/runs/11111111-2222-4333-8444-555555555555',
    });
    expect(patchworkCheck(passing.run, o).state).toBe('success');
    expect(patchworkCheck({ ...passing.run, verdict: null, state: 'running' }, o).state).toBe('pending');
    const err = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': { kind: 'error', message: 'x' }, 'series-nommu': pass, 'series-mmu': pass });
    expect(patchworkCheck(err.run, o).state).toBe('warning');
  });
});

describe('kcidb (reference: the KCIDB v5.3 I/O schema)', () => {
  const schema = JSON.parse(readFileSync(path.join(FIX, 'reports/kcidb-v5.3.schema.json'), 'utf8')) as object;
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  (addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
  const validate = ajv.compile(schema);

  it.each([
    ['regression', regression],
    ['passing', passing],
    ['not applying', noApply],
  ])('a %s run validates', (_n, r) => {
    const data = kcidbReport(r.run, r.cells, o);
    const ok = validate(data);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the schema does reject what it should (the validator is live)', () => {
    const data = kcidbReport(regression.run, regression.cells, o);
    expect(validate({ ...data, tests: [{ ...data.tests[0], status: 'BROKEN' }] })).toBe(false);
    expect(validate({ ...data, builds: [{ ...data.builds[0], id: 'no-origin' }] })).toBe(false);
  });

  it('has checkouts, builds and tests with origin nommu_ci and the right statuses', () => {
    const d = kcidbReport(regression.run, regression.cells, o);
    expect(d.version).toEqual({ major: 5, minor: 3 });
    expect(d.checkouts.map((c) => c.id)).toEqual(['nommu_ci:run-11111111-2222-4333-8444-555555555555-base', 'nommu_ci:run-11111111-2222-4333-8444-555555555555-series']);
    expect(d.checkouts[1]).toMatchObject({ patchset_hash: patchsetHash(regression.run), valid: true, message_id: 'cover.1795928078.git.fixtures@nommu-ci.invalid' });
    expect(patchsetHash(regression.run)).toMatch(/^[0-9a-f]{64}$/);
    for (const x of [...d.checkouts, ...d.builds, ...d.tests]) {
      expect(x.origin).toBe('nommu_ci');
      expect(x.id).toMatch(/^nommu_ci:/);
    }
    const builds = Object.fromEntries(d.builds.map((b) => [b.comment as string, b.status]));
    expect(builds).toEqual({ 'base, no-MMU': 'PASS', 'base, MMU': 'PASS', 'with the series, no-MMU': 'FAIL', 'with the series, MMU': 'PASS' });
    const nommuBroken = d.builds.find((b) => b.comment === 'with the series, no-MMU')!;
    expect(nommuBroken.log_excerpt).toContain("mm/nommu.c:95:32: error: implicit declaration of function 'vma_span_bytes'");
    const t = d.tests.find((x) => x.path === 'kunit.list-kunit-test.list_test_list_empty' && x.build_id === 'nommu_ci:00000000-0000-4000-8000-000000000004')!;
    expect(t).toMatchObject({ status: 'FAIL', misc: { change: 'new-failure' } });
    expect(d.tests.filter((x) => x.path === 'boot').map((x) => x.status)).toEqual(['PASS', 'PASS', 'PASS']);
    // no tests for the build that failed
    expect(d.tests.some((x) => x.build_id === nommuBroken.id)).toBe(false);
  });

  it('a series that does not apply: an invalid checkout and no series builds', () => {
    const d = kcidbReport(noApply.run, noApply.cells, o);
    expect(d.checkouts[1]).toMatchObject({ valid: false });
    expect(d.checkouts[1]!.log_excerpt).toContain('error: patch failed: lib/tests/list-test.c:309');
    expect(d.builds).toHaveLength(2);
  });
});

describe('markdown', () => {
  const md = markdownReport(regression.run, o);
  it('starts with the summary table and folds the details', () => {
    const lines = md.split('\n');
    expect(lines[0]).toBe('### nommu-ci ❌ breaks only the no-MMU build; 1 new test failure on MMU');
    const table = lines.findIndex((l) => l.startsWith('| kernel | base | with the series | change |'));
    const firstDetails = lines.indexOf('<details>');
    expect(table).toBeGreaterThan(0);
    expect(table).toBeLessThan(firstDetails);
    expect(lines[table + 1]).toBe('| --- | --- | --- | --- |');
    expect(lines[table + 2]).toMatch(/^\| no-MMU \| \[✅ 4 passed\]\(http:\/\/ci.example.org:8080\/jobs\/.*\) \| \[❌ build failed\]\(.*\) \| breaks only the no-MMU build \(mm\/nommu.c:95\) \|$/);
    expect(lines[table + 3]).toMatch(/^\| MMU \| .* \| \[❌ 3 passed, 1 failed\]\(.*\) \| 1 new failure \|$/);
    // every <details> is closed, and has a <summary>
    expect(md.match(/<details>/g)!.length).toBe(md.match(/<\/details>/g)!.length);
    expect(md.match(/<details>\n<summary>/g)!.length).toBe(md.match(/<details>/g)!.length);
    expect(md).toContain('<summary>no-MMU: the series breaks only the no-MMU build</summary>');
    expect(md).toContain("mm/nommu.c:95:32: error: implicit declaration of function 'vma_span_bytes'");
    expect(md).toContain('| `list-kunit-test.list_test_list_empty` | new-failure | pass | fail |');
    expect(md).toContain('npx nommu-ci run --server http://ci.example.org:8080 --patch series.mbox');
  });
  it('a passing run', () => {
    expect(markdownReport(passing.run, o).split('\n')[0]).toBe('### nommu-ci ✅ no regressions on no-MMU and MMU');
  });
});

describe('json and renderReport', () => {
  it('json carries the full model', () => {
    const j = jsonReport(regression.run, regression.cells, o);
    expect(j.verdict).toEqual(regression.run.verdict);
    expect(Object.keys(j.jobs)).toHaveLength(4);
    expect(JSON.parse(JSON.stringify(j)).series.patches).toHaveLength(3);
  });
  it.each(REPORT_FORMATS)('renders %s', (f) => {
    const r = renderReport(f, regression.run, regression.cells, o);
    expect(r.body.length).toBeGreaterThan(50);
    if (r.type.startsWith('application/json')) JSON.parse(r.body);
  });
});

describe('patchwork, one check per patch', () => {
  it('with the first bad patches known: success before, fail on them, warning after', () => {
    const run = {
      ...regression.run,
      blame: [
        { mmu: false, what: 'build breakage at mm/nommu.c:95', patch: 3, subject: '[PATCH 3/3] x', tried: [] },
        { mmu: true, what: 'list-kunit-test.list_test_list_empty (new-failure)', patch: 2, subject: '[PATCH 2/3] y', tried: [] },
      ],
    };
    expect([1, 2, 3].map((p) => patchworkCheck(run, o, p).state)).toEqual(['success', 'fail', 'fail']);
    expect(patchworkCheck(run, o, 2).description).toBe('introduces: list-kunit-test.list_test_list_empty (new-failure) on MMU');
    expect(patchworkCheck(run, o).description).toBe('breaks only the no-MMU build; 1 new test failure on MMU (first bad: patch 3/3 on no-MMU, patch 2/3 on MMU)');
    const apply = [1, 2, 3].map((p) => patchworkCheck(noApply.run, o, p).state);
    expect(apply).toEqual(['success', 'fail', 'warning']);
    expect([1, 2, 3].map((p) => patchworkCheck(passing.run, o, p).state)).toEqual(['success', 'success', 'success']);
  });
});

describe('changed-line coverage (a run with coverage: real tracefiles of both kernels, patches to mm/nommu.c of their tree)', () => {
  const fixture = (f: string) => readFileSync(path.join(FIX, 'coverage', f), 'utf8');
  const reserves = fixture('nommu-reserves.mbox');
  const covered = sampleRun(parseMbox(reserves), { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': pass, 'series-mmu': pass }, { coverage: true });
  const seriesJob = (mmu: boolean) => covered.run.cells.find((c) => c.series && c.mmu === mmu)!.job;
  covered.run.coverage = runCoverage(reserves, [
    { mmu: false, job: seriesJob(false), tracefile: fixture('nommu.info') },
    { mmu: true, job: seriesJob(true), tracefile: fixture('mmu.info') },
  ]);
  const perFile = 'mm/nommu.c: 2 of 3 changed lines executed on no-MMU; not built on MMU';
  const missed = 'mm/nommu.c:702 not executed by any test on no-MMU';

  it('markdown: each changed file per kernel, and the lines no test executed called out', () => {
    const md = markdownReport(covered.run, o);
    expect(md).toContain('- `mm/nommu.c`: 2 of 3 changed lines executed on no-MMU; not built on MMU');
    expect(md).toContain(`> - ${missed}`);
    expect(md).toContain('--coverage');
    expect(markdownReport(passing.run, o)).not.toContain('Changed lines executed');
  });

  it('email: the same lines in the body', () => {
    const body = emailReport(covered.run, o).body;
    expect(body).toContain(`Changed lines executed (gcov, each kernel with the series):\n\n   ${perFile}\n`);
    expect(body).toContain(`Changed lines no test executed:\n\n   ${missed}\n`);
    expect(body).toContain('found no regressions');
  });

  it('patchwork: the counts in the one-line description, not a bare success', () => {
    expect(patchworkCheck(covered.run, o)).toMatchObject({ state: 'success', description: 'no regressions on no-MMU and MMU; changed lines executed: 2 of 3 on no-MMU, not built on MMU' });
  });

  it('kcidb: tests carrying a number, valid against the schema', () => {
    const schema = JSON.parse(readFileSync(path.join(FIX, 'reports/kcidb-v5.3.schema.json'), 'utf8')) as object;
    const validate = new Ajv2020({ allErrors: true, strict: false });
    (addFormatsModule as unknown as (a: Ajv2020) => void)(validate);
    const d = kcidbReport(covered.run, covered.cells, o);
    const check = validate.compile(schema);
    expect(check(d), JSON.stringify(check.errors)).toBe(true);
    const test = (job: string, p: string) => d.tests.find((t) => t.build_id === `nommu_ci:${job}` && t.path === p);
    expect(test(seriesJob(false), 'coverage.changed_lines.mm_nommu_c')).toMatchObject({
      status: 'DONE',
      number: { value: 66.7, unit: '%' },
      comment: 'mm/nommu.c: 2 of 3 changed lines executed; lines 702 not executed by any test',
      misc: { executed_lines: 2, instrumented_lines: 3, changed_lines: 4, not_executed: [[702, 702]] },
    });
    expect(test(seriesJob(true), 'coverage.changed_lines.mm_nommu_c')).toMatchObject({ status: 'SKIP', comment: 'mm/nommu.c: not built' });
    expect(test(seriesJob(true), 'coverage.changed_lines.mm_nommu_c')).not.toHaveProperty('number');
    expect(test(seriesJob(false), 'coverage.lines')).toMatchObject({ status: 'DONE', number: { value: 20.4, unit: '%' }, comment: '187 of 915 instrumented lines executed in 4 files' });
    // the base builds carry no coverage tests: the changed lines are the series'
    expect(d.tests.filter((t) => String(t.path).startsWith('coverage.')).map((t) => t.build_id)).not.toContain(`nommu_ci:${covered.run.cells[0]!.job}`);
  });

  it('json: the coverage as stored with the run', () => {
    expect(jsonReport(covered.run, covered.cells, o).coverage).toEqual(covered.run.coverage);
  });
});
