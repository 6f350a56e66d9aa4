/**
 * KTAP lines → test tree, incrementally.
 *
 * The grammar and its corner cases follow kunit_tool's parser (tools/testing/kunit/kunit_parser.py,
 * `parse_test`): a test with subtests starts with `KTAP version N` and/or `# Subtest: name`, may
 * carry a plan `1..N`, lists its subtests and ends with its own `ok`/`not ok` line; diagnostic and
 * free-form lines belong to the test that follows them (KUnit prints a case's messages before its
 * result line), or to the enclosing test when they come after its last subtest.
 *
 * Where kunit_tool only has names and plans to find the end of a subtest (it ignores indentation),
 * we also use indentation when the producer indents nested tests (KUnit does, 4 columns a level):
 * a result line less indented than a subtest's own lines ends that subtest. Without indentation
 * (flat TAP) kunit_tool's rules apply unchanged: the result named like the `# Subtest:` header,
 * or the first result after the plan is fulfilled, is the subtest's own result.
 *
 * Why not node-tap's tap-parser (it reads KUnit's KTAP structurally once `KTAP version 1` is
 * mapped to `TAP version 14`): tried on the captured example-suite log it (a) marks every
 * passing parameterized test as failed, because KUnit prints no plan for generated parameters and
 * TAP 14 requires one; (b) reports free text inside a subtest (KUnit's `Expected ... but` lines,
 * kernel messages at column 0, KUnit's 4-column diagnostics inside 8-column parameter subtests) as
 * the *parent's* `extra`/`comment` events, emitted out of order with the child's asserts, so
 * diagnostics cannot be attached to the test that printed them; (c) has no notion of a crash or
 * of kunit_tool's end-of-subtest-by-name rule. What is left to reuse is the line syntax, which is
 * a few regular expressions (lines.ts); the tree is ~250 lines here.
 */
import { summarize, type Summary, type TestNode, type TestStatus } from '../result.js';
import { classify, dedent, type KtapLine } from './lines.js';

export interface KtapResult {
  /** The first version line, e.g. "KTAP version 1"; null if none was seen. */
  version: string | null;
  /** Top-level tests (KUnit: suites). */
  tests: TestNode[];
  /** summarize(tests, planned): kunit_tool's counts; tests a plan announced but that never reported count as crashed. */
  summary: Summary;
  /** Parse problems, kunit_tool style: "list-kunit-test: expected 5 tests, got 3". */
  errors: string[];
  /**
   * Every test got its own result line and every plan was fulfilled, the top-level one included
   * (a missing top-level plan makes it false: KUnit always prints one, so without it nothing
   * shows the run was whole).
   */
  complete: boolean;
  /** The top-level plan `1..N`, null if the output had none. (Addition to the agreed API.) */
  planned: number | null;
}

export type ResultCallback = (path: string[], node: TestNode) => void;

interface Frame {
  node: TestNode;
  /** Indentation of the frame's own header lines; in KUnit output also that of its subtests' result lines. */
  indent: number;
  /** Its lines are indented deeper than its parent's, so a less indented result line ends it. */
  indented: boolean;
  /** Before the plan and the first subtest: `# Subtest:` may still name it, diagnostics are its own. */
  inHeader: boolean;
  /** Opened by a `# Subtest:` header (its name is known before its result line). */
  named: boolean;
  /** Diagnostics (raw) since the previous subtest ended: they go to the next subtest, or to this test. */
  pending: string[];
}

const KTAP_VERSIONS = [1];
const TAP_VERSIONS = [13, 14];
const EXECUTOR_ERROR = /^\s*kunit executor: (.*)$/;

/** Empties a frame's pending diagnostics, without the indentation of the test they go to. */
function take(f: Frame, indent: number): string[] {
  const lines = f.pending.map((l) => dedent(l, indent));
  f.pending = [];
  return lines;
}

function statusOf(line: Extract<KtapLine, { kind: 'result' }>): TestStatus {
  // kunit_tool: `# SKIP` makes a test skipped whether it says ok or not ok; `# TODO` changes nothing.
  if (line.directive === 'SKIP') return 'skip';
  return line.ok ? 'pass' : 'fail';
}

function applyResult(node: TestNode, line: Extract<KtapLine, { kind: 'result' }>): void {
  node.status = statusOf(line);
  if (line.directive !== null && line.reason !== '') node.reason = line.reason;
  else delete node.reason;
}

/**
 * Incremental parser for live output. `onResult(path, node)` is called once per test when its
 * status is final: when its result line arrives (cases before the suite that holds them), or,
 * for tests still open, when a less indented line or end() closes them. `path` is the names from
 * the top-level test down to the test itself.
 */
export class KtapStream {
  private readonly onResult: ResultCallback | undefined;
  private readonly root: Frame;
  private readonly stack: Frame[];
  private version: string | null = null;
  private readonly errors: string[] = [];
  /** Set when a test ended without its result line or a plan was not fulfilled. */
  private incomplete = false;
  private final: KtapResult | null = null;

  constructor(onResult?: ResultCallback) {
    this.onResult = onResult;
    this.root = {
      node: { name: '', status: 'pass', diagnostics: [], children: [] },
      indent: 0,
      indented: false,
      inHeader: true,
      named: false,
      pending: [],
    };
    this.stack = [this.root];
  }

  /** One KTAP line (as KtapExtractor releases them). Ignored after end(). */
  push(ktapLine: string): void {
    if (this.final) return;
    const line = classify(ktapLine);
    if (this.version === null) {
      // Nothing counts before the version line (kunit_tool's extract_tap_lines), except the
      // executor's own complaints, which kunit_tool also keeps.
      if (line.kind === 'version') {
        this.version = line.text;
        this.root.indent = line.indent;
        this.checkVersion(line, 'main');
      } else if (line.kind === 'other') {
        const m = EXECUTOR_ERROR.exec(line.text);
        if (m) this.errors.push(`kunit executor: ${m[1] ?? ''}`);
      }
      return;
    }
    switch (line.kind) {
      case 'version':
        this.onVersion(line);
        break;
      case 'subtest':
        this.onSubtest(line);
        break;
      case 'plan':
        this.onPlan(line, ktapLine);
        break;
      case 'result':
        this.onResultLine(line);
        break;
      default:
        this.onOther(line.text);
    }
  }

  /**
   * Ends the stream and returns the final tree (again on later calls). Tests still open become
   * status 'crash' with `reason: crash` if a crash reason is given (the extractor's crash line,
   * or the caller's own, e.g. "timeout"), else 'fail' with an error "missing result line".
   * Subtests a plan announced but that never reported are not invented in the tree; summarize()
   * counts them as crashed, as kunit_tool does. A crash reason changes nothing when no test was open.
   */
  end(crash?: string): KtapResult {
    if (this.final) return this.final;
    while (this.stack.length > 1) this.closeMissing(crash, true);
    const root = this.root.node;
    const got = root.children.length;
    if (this.version === null) {
      this.errors.push('could not find any KTAP output (no "KTAP version" line)');
      this.incomplete = true;
    } else if (root.planned === undefined) {
      this.errors.push('main: missing plan');
      this.incomplete = true;
    } else if (got !== root.planned) {
      this.errors.push(`main: expected ${root.planned} tests, got ${got}`);
      this.incomplete = true;
    }
    if (this.version !== null && got === 0) this.errors.push('main: 0 tests run');
    this.final = {
      version: this.version,
      tests: root.children,
      summary: summarize(root.children, root.planned ?? null),
      errors: this.errors,
      complete: !this.incomplete,
      planned: root.planned ?? null,
    };
    return this.final;
  }

  private get top(): Frame {
    return this.stack[this.stack.length - 1] as Frame;
  }

  private pathOf(depth: number): string[] {
    return this.stack.slice(1, depth + 1).map((f) => f.node.name);
  }

  private nameOf(depth: number): string {
    return depth === 0 ? 'main' : this.pathOf(depth).join('.') || '(unnamed)';
  }

  private error(depth: number, message: string): void {
    this.errors.push(`${this.nameOf(depth)}: ${message}`);
  }

  private checkVersion(line: Extract<KtapLine, { kind: 'version' }>, where: string): void {
    const accepted = line.format === 'KTAP' ? KTAP_VERSIONS : TAP_VERSIONS;
    if (line.version < Math.min(...accepted)) this.errors.push(`${where}: ${line.format} version lower than expected: ${line.version}`);
    else if (line.version > Math.max(...accepted)) this.errors.push(`${where}: ${line.format} version higher than expected: ${line.version}`);
  }

  /**
   * A header line at `indent` cannot belong to an indented test whose own lines are at that
   * indentation or deeper: those tests ended without their result lines.
   */
  private closeForHeader(indent: number): void {
    while (this.stack.length > 1 && this.top.indented && indent <= this.top.indent) this.closeMissing();
  }

  private open(indent: number, name: string, named: boolean): void {
    const parent = this.top;
    parent.inHeader = false;
    const node: TestNode = { name, status: 'crash', diagnostics: take(parent, indent), children: [] };
    parent.node.children.push(node);
    this.stack.push({ node, indent, indented: indent > parent.indent, inHeader: true, named, pending: [] });
  }

  private onVersion(line: Extract<KtapLine, { kind: 'version' }>): void {
    this.closeForHeader(line.indent);
    this.open(line.indent, '', false);
    this.checkVersion(line, this.nameOf(this.stack.length - 2) + ' (subtest)');
  }

  private onSubtest(line: Extract<KtapLine, { kind: 'subtest' }>): void {
    const f = this.top;
    // `KTAP version 1` + `# Subtest: name` is one header (kunit_tool: parse_ktap_header, then parse_test_header).
    if (f !== this.root && f.inHeader && !f.named && f.node.planned === undefined && f.node.children.length === 0) {
      f.node.name = line.name;
      f.named = true;
      return;
    }
    this.closeForHeader(line.indent);
    this.open(line.indent, line.name, true);
  }

  private onPlan(line: Extract<KtapLine, { kind: 'plan' }>, raw: string): void {
    const f = this.top;
    if (f.node.planned === undefined) {
      // In the header as KTAP wants it, or late (TAP allows a trailing plan; kunit_tool errors on
      // the numbering then, and so do we when the count does not match).
      f.node.planned = line.count;
      f.inHeader = false;
      return;
    }
    this.error(this.stack.length - 1, `unexpected second plan 1..${line.count}`);
    this.onOther(raw);
  }

  private onOther(text: string): void {
    const f = this.top;
    const line = text.replace(/\s+$/, '');
    if (f !== this.root && f.inHeader) f.node.diagnostics.push(dedent(line, f.indent));
    else f.pending.push(line);
  }

  private onResultLine(line: Extract<KtapLine, { kind: 'result' }>): void {
    // 1. Indentation: a result less indented than an indented test's lines is that test's own
    //    result, or an outer one's, in which case the inner tests lost their result lines.
    while (this.stack.length > 1 && this.top.indented && line.indent < this.top.indent) {
      const below = this.stack[this.stack.length - 2] as Frame;
      if (below === this.root || !below.indented || line.indent >= below.indent) {
        const f = this.top;
        const number = below.node.children.indexOf(f.node) + 1;
        // Named otherwise and numbered otherwise: the next test's result; this one lost its own.
        const foreign = f.named && line.name !== '' && line.name !== f.node.name && line.num !== number;
        if (!foreign) {
          this.finish(line);
          return;
        }
      }
      this.closeMissing();
    }
    const f = this.top;
    // 2. kunit_tool's rules: the result named like the `# Subtest:` header, or (flat output only)
    //    the first result after the plan is fulfilled. With indentation a same-named result is a
    //    case of the test only while the plan still expects one.
    if (f !== this.root) {
      const planned = f.node.planned;
      const fulfilled = planned !== undefined && f.node.children.length >= planned;
      const byName = f.named && line.name !== '' && line.name === f.node.name && (!f.indented || planned === undefined || fulfilled);
      if (byName || (fulfilled && !f.indented)) {
        this.finish(line);
        return;
      }
    }
    // 3. A test case of the current test.
    const depth = this.stack.length - 1;
    f.inHeader = false;
    const node: TestNode = { name: line.name, status: 'pass', diagnostics: take(f, line.indent), children: [] };
    applyResult(node, line);
    f.node.children.push(node);
    const expected = f.node.children.length;
    if (line.num !== expected) this.error(depth, `expected test number ${expected} but found ${line.num}`);
    this.onResult?.([...this.pathOf(depth), node.name], node);
  }

  /** The top test's own result line arrived. */
  private finish(line: Extract<KtapLine, { kind: 'result' }>): void {
    const depth = this.stack.length - 1;
    const f = this.top;
    const node = f.node;
    node.diagnostics.push(...take(f, f.indent));
    if (!f.named && line.name !== '') node.name = line.name;
    else if (line.name !== '' && line.name !== node.name) {
      this.error(depth, `result line names "${line.name}", expected "${node.name}"`);
    }
    applyResult(node, line);
    const parent = this.stack[depth - 1] as Frame;
    const expected = parent.node.children.indexOf(node) + 1;
    if (line.num !== expected) this.error(depth - 1, `expected test number ${expected} but found ${line.num}`);
    const got = node.children.length;
    if (node.planned !== undefined && got !== node.planned) {
      this.error(depth, `expected ${node.planned} tests, got ${got}`);
      this.incomplete = true;
      // A test cannot have passed with subtests missing (kunit_tool counts them as crashed).
      if (got < node.planned && node.status === 'pass') node.status = 'fail';
    } else if (got === 0 && node.status === 'pass' && (f.named || node.planned !== undefined)) {
      this.error(depth, '0 tests run');
    }
    const path = this.pathOf(depth);
    this.stack.pop();
    this.onResult?.(path, node);
  }

  /** Closes the top test, which will never get its result line. */
  private closeMissing(crash?: string, atEnd = false): void {
    const depth = this.stack.length - 1;
    const f = this.top;
    const node = f.node;
    node.diagnostics.push(...take(f, f.indent));
    this.incomplete = true;
    if (crash !== undefined) {
      node.status = 'crash';
      node.reason = crash;
    } else {
      node.status = 'fail';
      this.error(depth, atEnd ? 'missing result line (output ended)' : 'missing result line');
    }
    if (node.planned !== undefined && node.children.length < node.planned) {
      this.error(depth, `expected ${node.planned} tests, got ${node.children.length}`);
    }
    const path = this.pathOf(depth);
    this.stack.pop();
    this.onResult?.(path, node);
  }
}

/** Pure function: KTAP lines → test tree. Same as a KtapStream fed `lines`, then `end(crash)`. */
export function parseKtap(lines: Iterable<string>, crash?: string): KtapResult {
  const s = new KtapStream();
  for (const l of lines) s.push(l);
  return s.end(crash);
}
