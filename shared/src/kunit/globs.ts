/**
 * Boot arguments that select a set of KUnit suites. A kernel takes one `kunit.filter_glob`, and
 * its glob (lib/glob.c: `*`, `?`, `[...]` classes, no alternation) cannot list names; but the
 * names a kernel has are known (kunit.action=list), so a set of suites is expressed as a few
 * globs that match exactly those suites among the kernel's: prefixes where a whole subtree of the
 * name trie is wanted (`kunit-*`), classes where several sibling subtrees are (`ma[pt]*`), the
 * exact name otherwise. Each glob is one boot.
 */

/** lib/glob.c's glob_match(), for checking a cover against the listed names. */
export function globMatch(pat: string, str: string): boolean {
  let p = 0;
  let s = 0;
  let backP = -1;
  let backS = -1;
  for (;;) {
    const c = str[s++];
    const d = pat[p++];
    let ok = true;
    switch (d) {
      case '?':
        if (c === undefined) return false;
        break;
      case '*':
        if (p >= pat.length) return true;
        backP = p;
        backS = --s;
        break;
      case '[': {
        if (c === undefined) return false;
        const inverted = pat[p] === '!';
        let i = inverted ? p + 1 : p;
        let a = pat[i++];
        let match = false;
        let malformed = false;
        do {
          let b = a;
          if (a === undefined) {
            malformed = true;
            break;
          }
          if (pat[i] === '-' && pat[i + 1] !== ']' && pat[i + 1] !== undefined) {
            b = pat[i + 1];
            i += 2;
          }
          if (a! <= c && c <= b!) match = true;
          a = pat[i++];
        } while (a !== ']');
        if (malformed) {
          ok = c === '[';
        } else {
          if (match === inverted) ok = false;
          else p = i;
        }
        break;
      }
      default:
        ok = c === d;
        if (ok && c === undefined) return true;
    }
    if (!ok) {
      if (c === undefined || backP < 0) return false;
      p = backP;
      s = ++backS;
    }
  }
}

interface Node {
  children: Map<string, Node>;
  /** A listed name ends here. */
  end: boolean;
  total: number;
  wanted: number;
}

const SPECIAL = /[*?[\]!\\\s]/;

/**
 * Globs whose union matches exactly `wanted` among `all` (each glob matches only wanted names).
 * Names with glob metacharacters (none of the kernel's have any) get an exact glob each, which
 * matches them literally only when they have none; such a name is then left out and must be run
 * on its own by the caller (see coverMisses).
 *
 * The kernel cuts `kunit.filter_glob` at its first dot (suite glob, then test glob), yet suite
 * names may hold dots (`util_macros.h`): a dot is written `?`, and a glob that `?` lets match a
 * name not wanted is dropped (its names become coverMisses).
 */
export function globsFor(all: readonly string[], wanted: ReadonlySet<string>): string[] {
  const root: Node = { children: new Map(), end: false, total: 0, wanted: 0 };
  for (const name of new Set(all)) {
    if (SPECIAL.test(name) || name === '') continue;
    const w = wanted.has(name) ? 1 : 0;
    let n = root;
    n.total++;
    n.wanted += w;
    for (const ch of name) {
      let next = n.children.get(ch);
      if (!next) {
        next = { children: new Map(), end: false, total: 0, wanted: 0 };
        n.children.set(ch, next);
      }
      n = next;
      n.total++;
      n.wanted += w;
    }
    n.end = true;
  }
  const out: string[] = [];
  const walk = (n: Node, prefix: string): void => {
    if (n.wanted === 0) return;
    if (n.wanted === n.total) {
      out.push(`${prefix}*`);
      return;
    }
    if (n.end && wanted.has(prefix)) out.push(prefix);
    const whole: string[] = [];
    for (const [ch, child] of [...n.children].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (child.wanted === 0) continue;
      // A dot cannot stand in a class: its subtree gets globs of its own.
      if (child.wanted === child.total && ch !== '.') whole.push(ch);
      else walk(child, prefix + ch);
    }
    if (whole.length === 1) out.push(`${prefix}${whole[0]}*`);
    else if (whole.length > 1) out.push(`${prefix}${charClass(whole)}*`);
  };
  walk(root, '');
  const names = [...new Set(all)];
  return out.map((g) => g.replaceAll('.', '?')).filter((g) => !names.some((name) => !wanted.has(name) && globMatch(g, name)));
}

/** The glob that selects one suite among `all`: its name, a dot written `?` (see globsFor). */
export function suiteGlob(all: readonly string[], name: string): string {
  return globsFor(all, new Set([name]))[0] ?? name;
}

/** `[...]` of single characters; `-` first, where lib/glob.c reads it literally. */
function charClass(chars: string[]): string {
  const sorted = [...chars].sort((a, b) => (a === '-' ? -1 : b === '-' ? 1 : a < b ? -1 : 1));
  return `[${sorted.join('')}]`;
}

/** Wanted names no glob of `globs` matches (names with metacharacters): the caller runs them some other way. */
export function coverMisses(globs: readonly string[], wanted: Iterable<string>): string[] {
  return [...wanted].filter((n) => !globs.some((g) => globMatch(g, n)));
}
