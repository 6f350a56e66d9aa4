/**
 * What a patch may touch. `git apply` refuses paths outside its working tree by itself, but only
 * when the worker gets to it; checked here, while the mbox is parsed, the API refuses the same
 * patch at submission with a message naming the patch and the path, and the worker learns every
 * path a patch touches (rename and copy sources too) before it opens those directories of the
 * tree to the sandbox.
 */

/** Why a path in a patch is refused, or null if it is fine. */
export function refusePath(p: string): string | null {
  if (p === '') return 'empty path';
  if (p.startsWith('/')) return 'absolute path';
  const parts = p.split('/');
  if (parts.includes('..')) return 'path outside the tree ("..")';
  if (parts.some((c) => c.toLowerCase() === '.git')) return '.git path';
  return null;
}

/** Unquotes a git C-quoted path ("a/f\303\266o"). */
function unquote(p: string): string {
  if (!p.startsWith('"')) return p;
  const inner = p.slice(1, p.lastIndexOf('"'));
  const bytes: number[] = [];
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i]!;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const n = inner[++i] ?? '';
    if (/[0-7]/.test(n)) {
      bytes.push(parseInt(inner.slice(i, i + 3), 8));
      i += 2;
    } else bytes.push(({ n: 10, t: 9, r: 13, '"': 34, '\\': 92, a: 7, b: 8, f: 12, v: 11 } as Record<string, number>)[n] ?? n.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The path of a ---/+++/rename/copy line, with the first component (a/, b/) stripped as -p1 does. */
export function diffPath(raw: string, strip: boolean): string {
  let p = raw.includes('\t') ? raw.slice(0, raw.indexOf('\t')) : raw;
  p = unquote(p.trim());
  if (strip) {
    const i = p.indexOf('/');
    p = i >= 0 ? p.slice(i + 1) : p;
  }
  return p;
}

/** `a/x b/y` of a `diff --git` line (paths may be quoted or contain spaces). */
function splitGitHeader(rest: string): [string, string] {
  if (rest.startsWith('"')) {
    let e = rest.indexOf('"', 1);
    while (e > 0 && rest[e - 1] === '\\') e = rest.indexOf('"', e + 1);
    return [diffPath(rest.slice(0, e + 1), true), diffPath(rest.slice(e + 2), true)];
  }
  // Unquoted: "a/P b/P" with the same P in the common case.
  const half = (rest.length - 1) / 2;
  if (Number.isInteger(half) && rest[half] === ' ' && rest.slice(2, half) === rest.slice(half + 3)) {
    return [diffPath(rest.slice(0, half), true), diffPath(rest.slice(half + 1), true)];
  }
  const i = rest.indexOf(' b/');
  return i >= 0 ? [diffPath(rest.slice(0, i), true), diffPath(rest.slice(i + 1), true)] : [diffPath(rest, true), diffPath(rest, true)];
}

/**
 * Every path a diff touches, in order of first mention. Throws an Error naming the first refused
 * path: outside the tree, absolute, inside .git, or a symlink or submodule (a symlink planted in
 * the tree could point the build at host files).
 */
export function touchedPaths(diff: string): string[] {
  const files = new Set<string>();
  const refuse = (what: string, p: string): never => {
    throw new Error(`refused: ${what}: ${p}`);
  };
  const take = (p: string, shown = p): void => {
    const why = refusePath(p);
    if (why) refuse(why, shown);
    files.add(p);
  };
  let current = '';
  for (const l of diff.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^diff --git (.*)$/.exec(l))) {
      const [a, b] = splitGitHeader(m[1]!);
      take(a);
      take(b);
      current = b;
    } else if ((m = /^(---|\+\+\+) (.*)$/.exec(l))) {
      const raw = m[2]!;
      if (raw.startsWith('/dev/null')) continue;
      const unstripped = diffPath(raw, false);
      if (unstripped.startsWith('/')) refuse('absolute path', unstripped);
      current = diffPath(raw, true);
      take(current, unstripped);
    } else if ((m = /^(rename|copy) (from|to) (.*)$/.exec(l))) {
      take(diffPath(m[3]!, false));
    } else if ((m = /^(new file mode|deleted file mode|old mode|new mode|index [0-9a-f]+\.\.[0-9a-f]+) ([0-7]{6})$/.exec(l))) {
      if (m[2] === '120000') refuse('symlink (mode 120000)', current);
      if (m[2] === '160000') refuse('submodule (mode 160000)', current);
    }
  }
  return [...files];
}
