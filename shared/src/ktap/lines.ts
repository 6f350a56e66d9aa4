/**
 * Classification of single KTAP lines. The patterns follow kunit_tool
 * (tools/testing/kunit/kunit_parser.py): leading whitespace is allowed on every kind of line,
 * a result line's name may be preceded by `- `, and `# SKIP` is the only directive that changes
 * a status. Where kunit_tool is stricter than it needs to be (a `#` inside a name makes its
 * TEST_RESULT regex fail and the line become a diagnostic) we are lenient and document it.
 */

export type KtapLine =
  | { kind: 'version'; indent: number; text: string; format: 'KTAP' | 'TAP'; version: number }
  | { kind: 'subtest'; indent: number; name: string }
  | { kind: 'plan'; indent: number; count: number }
  | {
      kind: 'result';
      indent: number;
      ok: boolean;
      num: number;
      name: string;
      directive: 'SKIP' | 'TODO' | null;
      /** Text after the directive keyword (the skip/todo reason), '' when none. */
      reason: string;
    }
  | { kind: 'other'; indent: number; text: string };

// kunit_tool: KTAP_START / TAP_START use `\s*KTAP version ([0-9]+)$`.
const VERSION = /^\s*(KTAP|TAP) version ([0-9]+)\s*$/;
// kunit_tool: TEST_HEADER = `^\s*# Subtest: (.*)$`.
const SUBTEST = /^\s*# Subtest: (.*?)\s*$/;
// kunit_tool: TEST_PLAN = `^\s*1\.\.([0-9]+)` (anything may follow, e.g. `1..0 # SKIP`).
const PLAN = /^\s*1\.\.([0-9]+)/;
// kunit_tool: TEST_RESULT = `^\s*(ok|not ok) ([0-9]+) ?(:?- )?([^#]*)( # .*)?$`.
const RESULT = /^\s*(ok|not ok) ([0-9]+)(?:$|\s+(?:- ?)?(.*)$)/;
// The directive starts at the first ` # ` (TAP: "a `#` preceded by whitespace").
const DIRECTIVE = /(?:^|\s)#\s*(.*)$/;
// kunit_tool: TEST_RESULT_SKIP = `... # SKIP ?(.*)$`. TODO is not special to kunit_tool.
const DIRECTIVE_KIND = /^(SKIP|TODO)\b\s*(.*)$/i;

/** Width of the leading whitespace, tabs to 8-column stops (old KUnit indented with tabs). */
export function indentOf(line: string): number {
  let col = 0;
  for (const ch of line) {
    if (ch === ' ') col++;
    else if (ch === '\t') col = col - (col % 8) + 8;
    else break;
  }
  return col;
}

/** Drops up to `cols` columns of leading whitespace, keeping deeper indentation. */
export function dedent(line: string, cols: number): string {
  let col = 0;
  let i = 0;
  while (i < line.length && col < cols) {
    const ch = line[i];
    if (ch === ' ') col++;
    else if (ch === '\t') col = col - (col % 8) + 8;
    else break;
    i++;
  }
  return line.slice(i);
}

export function classify(raw: string): KtapLine {
  const line = raw.replace(/\s+$/, '');
  const indent = indentOf(line);
  let m = VERSION.exec(line);
  if (m) return { kind: 'version', indent, text: line.trim(), format: m[1] as 'KTAP' | 'TAP', version: Number(m[2]) };
  m = SUBTEST.exec(line);
  if (m) return { kind: 'subtest', indent, name: m[1] ?? '' };
  m = PLAN.exec(line);
  if (m) return { kind: 'plan', indent, count: Number(m[1]) };
  m = RESULT.exec(line);
  if (m) {
    let rest = m[3] ?? '';
    let directive: 'SKIP' | 'TODO' | null = null;
    let reason = '';
    const d = DIRECTIVE.exec(rest);
    if (d) {
      rest = rest.slice(0, d.index);
      const k = DIRECTIVE_KIND.exec(d[1] ?? '');
      if (k) {
        directive = (k[1] ?? '').toUpperCase() as 'SKIP' | 'TODO';
        reason = k[2] ?? '';
      }
    }
    return { kind: 'result', indent, ok: m[1] === 'ok', num: Number(m[2]), name: rest.trim(), directive, reason };
  }
  return { kind: 'other', indent, text: line };
}
