/**
 * Kconfig fragments as users send them (a kunitconfig, kconfig_add entries). Parsing and
 * validation live here because the API rejects bad lines up front and the worker merges them.
 */

export type KconfigValue = string; // y, n, m, a number, or a quoted string, exactly as written

const ASSIGN = /^(CONFIG_[A-Za-z0-9_]+)=(y|n|m|-?[0-9]+|0x[0-9a-fA-F]+|"(?:[^"\\\n]|\\.)*")$/;
const UNSET = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;

export interface KconfigLineError {
  line: number;
  text: string;
  message: string;
}

/** Parses one `CONFIG_X=v` or `# CONFIG_X is not set` line; `null` if it is neither. */
export function parseKconfigLine(text: string): [string, KconfigValue] | null {
  const a = ASSIGN.exec(text);
  if (a) return [a[1]!, a[2]!];
  const u = UNSET.exec(text);
  if (u) return [u[1]!, 'n'];
  return null;
}

/**
 * Parses a fragment into an ordered map; later lines win, as in kunit.py's merge. Blank lines
 * and other comments are allowed. Throws nothing: errors are returned so the API can name them.
 */
export function parseKconfig(text: string): { options: Map<string, KconfigValue>; errors: KconfigLineError[] } {
  const options = new Map<string, KconfigValue>();
  const errors: KconfigLineError[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '') return;
    const kv = parseKconfigLine(line);
    if (kv) {
      options.set(kv[0], kv[1]);
      return;
    }
    if (line.startsWith('#')) return;
    errors.push({ line: i + 1, text: raw.slice(0, 120), message: 'expected CONFIG_NAME=value or "# CONFIG_NAME is not set"' });
  });
  return { options, errors };
}

export function formatKconfig(options: ReadonlyMap<string, KconfigValue>): string {
  return [...options].map(([k, v]) => (v === 'n' ? `# ${k} is not set` : `${k}=${v}`)).join('\n') + '\n';
}
