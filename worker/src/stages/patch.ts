/**
 * Stage `patch`: a job's `patch` is an mbox (git format-patch, b4; one or many messages, a cover
 * letter skipped) or a plain unified diff. It is split into patches that keep their Subject and
 * Message-ID, checked for paths we refuse, and applied in order with `git apply` inside the
 * sandbox, the job's view as the working directory (no repository needed, and none of
 * `--directory`/`--unsafe-paths`: git refuses paths outside the working tree by itself, we refuse
 * them first with a better message).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StageError, throwIfAborted } from '../errors.js';
import { assertSandboxStarted, describeExit, runSandboxed } from '../sandbox.js';

export interface Patch {
  /** 1-based position among the job's patches (cover letter excluded). */
  index: number;
  /** Subject as written (`[PATCH 2/3] mm: ...`), or a label for a plain diff. */
  subject: string;
  messageId: string | null;
  author: string | null;
  /** What `git apply` gets: the diff part of the message. */
  diff: string;
}

const MBOX_FROM = /^From \S+( .*)?$/;
const HEADER = /^([A-Za-z0-9-]+):[ \t]?(.*)$/;

/** Decodes RFC 2047 encoded words (=?utf-8?q?...?= / ?b?), as b4 and git send-email write them. */
export function decodeMimeWords(s: string): string {
  return s
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([qQbB])\?([^?]*)\?=/g, (_m, _cs: string, enc: string, text: string) => {
      if (enc.toLowerCase() === 'b') return Buffer.from(text, 'base64').toString('utf8');
      const bytes = text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)));
      return Buffer.from(bytes, 'latin1').toString('utf8');
    });
}

function parseHeaders(lines: string[]): { headers: Map<string, string>; bodyStart: number } {
  const headers = new Map<string, string>();
  let last: string | null = null;
  let i = 0;
  for (; i < lines.length; i++) {
    const l = lines[i]!;
    if (l === '') {
      i++;
      break;
    }
    if (/^[ \t]/.test(l) && last) {
      headers.set(last, `${headers.get(last)!} ${l.trim()}`);
      continue;
    }
    const m = HEADER.exec(l);
    if (!m) break; // not a header block after all
    last = m[1]!.toLowerCase();
    if (!headers.has(last)) headers.set(last, m[2]!.trim());
  }
  return { headers, bodyStart: i };
}

/** The diff part of a message body: from the first `diff --git` or `---`/`+++` pair on. */
function diffPart(body: string[]): string | null {
  for (let i = 0; i < body.length; i++) {
    const l = body[i]!;
    if (l.startsWith('diff --git ') || (l.startsWith('--- ') && body[i + 1]?.startsWith('+++ '))) {
      return body.slice(i).join('\n') + '\n';
    }
  }
  return null;
}

const isCover = (subject: string): boolean => /\[[^\]]*\b0+\/\d+\]/.test(subject);

/** Splits a job's `patch` text into patches. Throws StageError('patch') if there is no diff in it. */
export function splitPatches(text: string): Patch[] {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const messages: string[][] = [];
  const firstReal = lines.findIndex((l) => l.trim() !== '');
  const first = lines[firstReal] ?? '';
  const isMail = MBOX_FROM.test(first) || (/^(From|Subject|Date|Message-I[dD]|Return-Path|Received|To|Cc):/.test(first));
  if (!isMail) {
    const diff = diffPart(lines);
    if (!diff) throw new StageError('patch', 'patch: no diff found (expected an mbox from git format-patch/b4 or a unified diff)');
    return [{ index: 1, subject: 'unified diff', messageId: null, author: null, diff }];
  }
  let cur: string[] | null = null;
  for (let i = firstReal; i < lines.length; i++) {
    const l = lines[i]!;
    // A new message starts at a "From " line followed by a header line.
    if (MBOX_FROM.test(l) && HEADER.test(lines[i + 1] ?? '')) {
      cur = [];
      messages.push(cur);
      continue;
    }
    if (!cur) {
      cur = [];
      messages.push(cur);
    }
    cur.push(l.startsWith('>From ') ? l.slice(1) : l);
  }
  const patches: Patch[] = [];
  const skipped: string[] = [];
  for (const msg of messages) {
    const { headers, bodyStart } = parseHeaders(msg);
    const subject = decodeMimeWords(headers.get('subject') ?? '(no subject)');
    const diff = diffPart(msg.slice(bodyStart));
    if (isCover(subject) || !diff) {
      skipped.push(subject);
      continue;
    }
    patches.push({
      index: patches.length + 1,
      subject,
      messageId: headers.get('message-id')?.replace(/^<|>$/g, '') ?? null,
      author: headers.has('from') ? decodeMimeWords(headers.get('from')!) : null,
      diff,
    });
  }
  if (patches.length === 0) {
    throw new StageError('patch', `patch: no diff found in ${messages.length} message(s)${skipped.length ? ` (${skipped.map((s) => `"${s}"`).join(', ')})` : ''}`);
  }
  return patches;
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
function pathOf(raw: string, strip: boolean): string {
  let p = raw.includes('\t') ? raw.slice(0, raw.indexOf('\t')) : raw;
  p = unquote(p.trim());
  if (strip) {
    const i = p.indexOf('/');
    p = i >= 0 ? p.slice(i + 1) : p;
  }
  return p;
}

/** Why a path in a patch is refused, or null if it is fine. */
export function refusePath(p: string): string | null {
  if (p === '' ) return 'empty path';
  if (p.startsWith('/')) return 'absolute path';
  const parts = p.split('/');
  if (parts.includes('..')) return 'path outside the tree ("..")';
  if (parts.some((c) => c.toLowerCase() === '.git')) return '.git path';
  return null;
}

/** Checks every path and mode a patch touches; throws StageError('patch') naming the patch and path. */
export function checkPatch(patch: Patch): string[] {
  const files = new Set<string>();
  const fail = (what: string, p: string): never => {
    throw new StageError('patch', `patch ${patch.index} "${patch.subject}": refused: ${what}: ${p}`);
  };
  let current = '';
  for (const l of patch.diff.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^diff --git (.*)$/.exec(l))) {
      const [a, b] = splitGitHeader(m[1]!);
      for (const p of [a, b]) {
        const why = refusePath(p);
        if (why) fail(why, p);
      }
      current = b;
      files.add(b);
    } else if ((m = /^(---|\+\+\+) (.*)$/.exec(l))) {
      const raw = m[2]!;
      if (raw.startsWith('/dev/null')) continue;
      const p = pathOf(raw, true);
      const why = refusePath(p) ?? (pathOf(raw, false).startsWith('/') ? 'absolute path' : null);
      if (why) fail(why, pathOf(raw, false));
      current = p;
      files.add(p);
    } else if ((m = /^(rename|copy) (from|to) (.*)$/.exec(l))) {
      const p = pathOf(m[3]!, false);
      const why = refusePath(p);
      if (why) fail(why, p);
      files.add(p);
    } else if ((m = /^(new file mode|deleted file mode|old mode|new mode|index [0-9a-f]+\.\.[0-9a-f]+) ([0-7]{6})$/.exec(l))) {
      const mode = m[2]!;
      if (mode === '120000') fail('symlink (mode 120000)', current);
      if (mode === '160000') fail('submodule (mode 160000)', current);
    }
  }
  return [...files];
}

/** `a/x b/y` of a `diff --git` line (paths may be quoted or contain spaces). */
function splitGitHeader(rest: string): [string, string] {
  if (rest.startsWith('"')) {
    const end = rest.indexOf('"', 1);
    let e = end;
    while (e > 0 && rest[e - 1] === '\\') e = rest.indexOf('"', e + 1);
    const a = rest.slice(0, e + 1);
    return [pathOf(a, true), pathOf(rest.slice(e + 2), true)];
  }
  // Unquoted: "a/P b/P" with the same P in the common case.
  const half = (rest.length - 1) / 2;
  if (Number.isInteger(half) && rest[half] === ' ' && rest.slice(2, half) === rest.slice(half + 3)) {
    return [pathOf(rest.slice(0, half), true), pathOf(rest.slice(half + 1), true)];
  }
  const i = rest.indexOf(' b/');
  return i >= 0 ? [pathOf(rest.slice(0, i), true), pathOf(rest.slice(i + 1), true)] : [pathOf(rest, true), pathOf(rest, true)];
}

/** For a failure at `file:line`, the hunk header of the patch that starts there, if we find it. */
function hunkAt(patch: Patch, file: string, line: number): string | null {
  let inFile = false;
  for (const l of patch.diff.split('\n')) {
    if (l.startsWith('+++ ')) inFile = pathOf(l.slice(4), true) === file;
    if (inFile && l.startsWith('@@ ')) {
      const m = /^@@ -(\d+)/.exec(l);
      if (m && Number(m[1]) === line) return l;
    }
  }
  return null;
}

export interface ApplyOptions {
  viewDir: string;
  tmpDir: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Appends to patch.log. */
  log: (text: string) => void;
  name: string;
}

/** Applies patches in order inside the sandbox; throws StageError('patch') naming the patch, file and hunk. */
export async function applyPatches(patches: Patch[], opts: ApplyOptions): Promise<void> {
  for (const p of patches) checkPatch(p);
  const dir = path.join(opts.tmpDir, 'patches');
  mkdirSync(dir, { recursive: true });
  for (const p of patches) {
    throwIfAborted(opts.signal);
    const file = `${String(p.index).padStart(4, '0')}.patch`;
    writeFileSync(path.join(dir, file), p.diff);
    opts.log(`=== patch ${p.index}/${patches.length}: ${p.subject}${p.messageId ? ` <${p.messageId}>` : ''}\n`);
    let out = '';
    const r = await runSandboxed({
      name: `${opts.name}-patch${p.index}`,
      argv: ['git', 'apply', '--verbose', `/tmp/patches/${file}`],
      mounts: [{ host: opts.viewDir, path: '/src', rw: true }],
      tmpDir: opts.tmpDir,
      cwd: '/src',
      env: { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', HOME: '/tmp' },
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      onOutput: (b) => {
        out += b.toString('utf8');
      },
    });
    opts.log(out);
    throwIfAborted(opts.signal);
    assertSandboxStarted(r);
    if (r.code !== 0 || r.killed) {
      const errs = out.split('\n').filter((l) => /^(error|fatal):/.test(l) && !/^error: while searching for:/.test(l));
      const failed = errs.map((l) => /^error: patch failed: (.*):(\d+)$/.exec(l)).find((m) => m);
      const hunk = failed ? hunkAt(p, failed[1]!, Number(failed[2])) : null;
      const detail = errs.length ? errs.join('\n') : `git apply: ${describeExit(r)}\n${out.trim().split('\n').slice(-5).join('\n')}`;
      throw new StageError('patch', `patch ${p.index}/${patches.length} "${p.subject}" does not apply:\n${detail}${hunk ? `\nfailing hunk: ${failed![1]} ${hunk}` : ''}`);
    }
  }
}
