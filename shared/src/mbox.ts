/**
 * Parses what developers send: an mbox from `git format-patch` (one file or many concatenated),
 * `b4 am` / `b4 mbox` (mboxrd, replies mixed in), a single mail, or a plain unified diff.
 *
 * The result keeps what reports need (subjects, Message-IDs for In-Reply-To/References, authors)
 * and what the patch stage applies (the diff of each patch, in series order). The cover letter
 * (`[PATCH 0/N]`, or a leading message without a diff) and replies (`Re: ...`) are kept aside.
 *
 * Every diff is checked the way `git apply` reads it: file headers, and hunks whose line counts
 * must match their `@@ -a,b +c,d @@` header; and every path it touches must stay inside the tree
 * (patch-paths.ts). A series with a broken or refused patch is refused whole, with an error naming
 * the patch, the file and the hunk, so nothing is queued for a series that cannot apply for
 * reasons visible before any build.
 *
 * This is the only mail parser: the API validates with it and the worker applies the `diff` it
 * returns, so what is accepted is exactly what is applied. Encoded words, header charsets and
 * quoted-printable/base64 bodies are decoded by libmime, libqp and iconv-lite (nodemailer's).
 */
import iconv from 'iconv-lite';
import libmime from 'libmime';
import { decode as decodeQuotedPrintable } from 'libqp';
import { diffPath, touchedPaths } from './patch-paths.js';

export interface MboxCover {
  subject: string;
  rawSubject: string;
  messageId: string | null;
  from: string | null;
  date: string | null;
  /** The cover letter's text (the blurb), without headers. */
  body: string;
}

export interface MboxPatch {
  /** 1-based position in the series as applied (cover letter excluded). */
  index: number;
  /** How many patches the series applies (the mbox's patches; `[PATCH n/N]` may say more when only part of a series was sent). */
  total: number;
  /** Subject without the `[PATCH v2 n/N]` prefix. */
  subject: string;
  /** Subject as written. */
  rawSubject: string;
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  from: string | null;
  date: string | null;
  /** The diff part of the message: what `git apply` gets. */
  diff: string;
  /** Files the diff touches (post-image paths, a/ b/ stripped). */
  files: string[];
  /** Every path the diff names (rename and copy sources, deleted files too): what the worker opens. */
  touched: string[];
  /** Each file's paths and hunks: where the patch changes which lines (coverage of changed lines). */
  fileDiffs: FileDiff[];
}

/** One file of a diff: its paths and its hunks, as git apply reads them. */
export interface FileDiff {
  /** Post-image path (for a deleted file, the path it had). */
  path: string;
  /** Pre-image path: null for a new file; differs from `path` for a rename or a copy. */
  from: string | null;
  status: 'added' | 'deleted' | 'modified' | 'renamed' | 'copied';
  hunks: Hunk[];
}

export interface Hunk {
  oldStart: number;
  newStart: number;
  /** One character per hunk line: ' ' context, '-' removed, '+' added. */
  ops: string;
}

export interface ParsedMbox {
  cover: MboxCover | null;
  patches: MboxPatch[];
  /** Messages neither cover nor patch (replies, notes), by subject. */
  skipped: { subject: string; reason: string }[];
  /** `v2` of `[PATCH v2 ...]`, if any. */
  version: number | null;
}

export type MboxErrorCode = 'empty' | 'no-patch' | 'malformed' | 'incomplete' | 'refused';

export class MboxError extends Error {
  constructor(
    readonly code: MboxErrorCode,
    message: string,
    /** 1-based index of the offending patch, when there is one. */
    readonly patch: number | null = null,
  ) {
    super(message);
    this.name = 'MboxError';
  }
}

const MBOX_FROM = /^From \S+( .*)?$/;
const HEADER = /^([A-Za-z0-9-]+):[ \t]?(.*)$/;
const MAIL_START = /^(From|Subject|Date|Message-I[dD]|Return-Path|Received|To|Cc|In-Reply-To|References|MIME-Version|X-[A-Za-z-]+):/;

/** Decodes RFC 2047 encoded words (=?utf-8?q?...?= / ?b?, any charset), as b4 and git send-email write them. */
const decodeEncodedWords = (s: string): string => libmime.decodeWords(s);

interface Message {
  headers: Map<string, string>;
  body: string[];
}

function parseHeaders(lines: string[]): Message {
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
    if (!m) break; // the body starts without a blank line: keep it
    last = m[1]!.toLowerCase();
    if (!headers.has(last)) headers.set(last, m[2]!.trim());
  }
  return { headers, body: decodeBody(lines.slice(i), headers) };
}

/**
 * A body as text: undone transfer encoding, then the charset of its Content-Type (a patch mailed
 * as quoted-printable latin-1 must reach `git apply` as the bytes the author's tree has, in UTF-8).
 */
function decodeBody(body: string[], headers: Map<string, string>): string[] {
  const cte = headers.get('content-transfer-encoding')?.toLowerCase();
  if (cte !== 'quoted-printable' && cte !== 'base64') return body;
  const bytes = cte === 'base64' ? Buffer.from(body.join(''), 'base64') : decodeQuotedPrintable(body.join('\n'));
  const type = headers.get('content-type');
  const declared = type ? libmime.parseHeaderValue(type).params.charset : undefined;
  const charset = declared && iconv.encodingExists(declared) ? declared : 'utf-8';
  return iconv.decode(bytes, charset).replace(/\r\n/g, '\n').split('\n');
}

function splitMessages(lines: string[], first: number): string[][] {
  const messages: string[][] = [];
  let cur: string[] | null = null;
  for (let i = first; i < lines.length; i++) {
    const l = lines[i]!;
    // A message starts at a "From " line followed by a header line.
    if (MBOX_FROM.test(l) && HEADER.test(lines[i + 1] ?? '')) {
      cur = [];
      messages.push(cur);
      continue;
    }
    if (!cur) {
      cur = [];
      messages.push(cur);
    }
    // mboxrd (b4) quotes body lines that start with "From " as ">From ", ">>From " ...
    cur.push(/^>+From /.test(l) ? l.slice(1) : l);
  }
  return messages;
}

const angle = (s: string | undefined): string | null => {
  if (!s) return null;
  const m = /<([^>]+)>/.exec(s);
  return (m ? m[1]! : s.trim()) || null;
};
const allAngles = (s: string | undefined): string[] => (s ? [...s.matchAll(/<([^>]+)>/g)].map((m) => m[1]!) : []);

/** `[PATCH v2 3/7]`, `[RFC PATCH net-next 1/2]`: the numbering, version and the bare subject. */
export function parseSubject(raw: string): { subject: string; n: number | null; total: number | null; version: number | null; reply: boolean } {
  let s = raw.trim();
  const reply = /^(re|aw|sv)\s*:/i.test(s);
  s = s.replace(/^((re|aw|sv|fwd?)\s*:\s*)+/i, '');
  let n: number | null = null;
  let total: number | null = null;
  let version: number | null = null;
  for (;;) {
    const m = /^\s*\[([^\]]*)\]\s*/.exec(s);
    if (!m) break;
    const inner = m[1]!;
    const num = /(?:^|\s)(\d+)\/(\d+)(?:\s|$)/.exec(inner);
    if (num && n === null) {
      n = Number(num[1]);
      total = Number(num[2]);
    }
    const v = /(?:^|\s)v(\d+)(?:\s|$)/i.exec(inner);
    if (v && version === null) version = Number(v[1]);
    s = s.slice(m[0].length);
  }
  return { subject: s.trim(), n, total, version, reply };
}

/** Where the diff starts in a message body: the first `diff --git`, or a `---`/`+++` pair. */
function diffStart(body: string[]): number {
  for (let i = 0; i < body.length; i++) {
    const l = body[i]!;
    if (l.startsWith('diff --git ')) return i;
    if (l.startsWith('--- ') && body[i + 1]?.startsWith('+++ ') && body[i + 2]?.startsWith('@@ ')) return i;
  }
  return -1;
}

const HUNK = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;
const GIT_EXTENDED = /^(old mode|new mode|deleted file mode|new file mode|copy from|copy to|rename from|rename to|similarity index|dissimilarity index|index |Binary files |GIT binary patch)/;

function stripPath(raw: string): string {
  let p = raw.includes('\t') ? raw.slice(0, raw.indexOf('\t')) : raw;
  p = p.trim();
  if (p.startsWith('"')) p = p.slice(1, p.lastIndexOf('"'));
  const i = p.indexOf('/');
  return i >= 0 ? p.slice(i + 1) : p;
}

/**
 * Checks a diff as `git apply` reads it and returns the text to apply (the signature `-- `
 * and anything after the last hunk cut off) and the files it touches. Throws a plain Error
 * describing the first problem; the caller names the patch.
 */
export function checkDiff(lines: string[]): { diff: string; files: string[]; fileDiffs: FileDiff[] } {
  const files: string[] = [];
  const fileDiffs: FileDiff[] = [];
  let i = 0;
  let end = 0;
  let fileCount = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    let file: string | null = null;
    let from: string | null = null;
    let status: FileDiff['status'] = 'modified';
    let gitHeader = false;
    if (l.startsWith('diff --git ')) {
      gitHeader = true;
      const m = /^diff --git (?:"?a\/)?(.*?)"? "?b\/(.*?)"?$/.exec(l);
      file = m ? m[2]! : l.slice(11);
      from = m ? m[1]! : file;
      i++;
      while (i < lines.length && GIT_EXTENDED.test(lines[i]!)) {
        const ext = lines[i]!;
        let x: RegExpExecArray | null;
        if (ext.startsWith('new file mode')) status = 'added';
        else if (ext.startsWith('deleted file mode')) status = 'deleted';
        else if ((x = /^(rename|copy) from (.*)$/.exec(ext))) {
          status = x[1] === 'rename' ? 'renamed' : 'copied';
          from = diffPath(x[2]!, false);
        }
        if (lines[i]!.startsWith('GIT binary patch')) {
          // literal/delta blocks up to a blank line, twice (forward and reverse)
          i++;
          let blanks = 0;
          while (i < lines.length && blanks < 2 && !lines[i]!.startsWith('diff --git ')) {
            if (lines[i] === '') blanks++;
            i++;
          }
          break;
        }
        i++;
      }
      end = i;
    } else if (l.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) {
      file = null;
    } else {
      // Between files and after the last one: text git apply ignores (diffstat, signature).
      i++;
      continue;
    }
    if (lines[i]?.startsWith('--- ')) {
      if (!lines[i + 1]?.startsWith('+++ ')) throw new Error(`${file ?? 'a file'}: "---" line without a "+++" line after it`);
      const plus = lines[i + 1]!.slice(4);
      const minus = lines[i]!.slice(4);
      file ??= plus.startsWith('/dev/null') ? stripPath(minus) : stripPath(plus);
      if (!gitHeader) from = stripPath(minus);
      if (minus.startsWith('/dev/null')) status = 'added';
      if (plus.startsWith('/dev/null')) status = 'deleted';
      i += 2;
      if (!lines[i]?.startsWith('@@')) throw new Error(`${file}: file header without a hunk`);
    } else if (!gitHeader) {
      i++;
      continue;
    }
    fileCount++;
    files.push(file!);
    const hunks: Hunk[] = [];
    fileDiffs.push({ path: file!, from: status === 'added' ? null : from, status, hunks });
    let hunkNo = 0;
    while (lines[i]?.startsWith('@@')) {
      const header = lines[i]!;
      const m = HUNK.exec(header);
      hunkNo++;
      if (!m) throw new Error(`${file}: hunk ${hunkNo}: malformed hunk header "${header}"`);
      let oldLeft = m[2] === undefined ? 1 : Number(m[2]);
      let newLeft = m[4] === undefined ? 1 : Number(m[4]);
      const [wantOld, wantNew] = [oldLeft, newLeft];
      let ops = '';
      i++;
      while (oldLeft > 0 || newLeft > 0) {
        // The empty string after the text's final newline is the end of the text, not an empty context line.
        const h = i === lines.length - 1 && lines[i] === '' ? undefined : lines[i];
        if (h === undefined || h.startsWith('diff --git ') || h.startsWith('@@')) {
          throw new Error(
            `${file}: hunk ${hunkNo} (${header.replace(/ @@.*/, ' @@')}) is truncated: its header promises ${wantOld} old and ${wantNew} new lines, ` +
              `${wantOld - oldLeft} and ${wantNew - newLeft} found`,
          );
        }
        const c = h[0];
        if (h === '' || c === ' ') {
          oldLeft--;
          newLeft--;
          ops += ' ';
        } else if (c === '-') {
          oldLeft--;
          ops += '-';
        } else if (c === '+') {
          newLeft--;
          ops += '+';
        } else if (c === '\\') {
          /* "\ No newline at end of file" */
        } else {
          throw new Error(
            `${file}: hunk ${hunkNo} (${header.replace(/ @@.*/, ' @@')}): line ${JSON.stringify(h.slice(0, 60))} is not part of a hunk ` +
              `(${wantOld - oldLeft} of ${wantOld} old and ${wantNew - newLeft} of ${wantNew} new lines found)`,
          );
        }
        if (oldLeft < 0 || newLeft < 0) {
          throw new Error(`${file}: hunk ${hunkNo} (${header.replace(/ @@.*/, ' @@')}) has more lines than its header says (${wantOld} old, ${wantNew} new)`);
        }
        i++;
      }
      if (lines[i]?.startsWith('\\')) i++;
      hunks.push({ oldStart: Number(m[1]), newStart: Number(m[3]), ops });
      // A hunk line right after the counted ones: the header promised fewer lines than there are.
      const next = lines[i];
      if (next !== undefined && next !== '-- ' && !(next.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) && /^[-+ ]/.test(next) && !/^ ?$/.test(next)) {
        throw new Error(`${file}: hunk ${hunkNo} (${header.replace(/ @@.*/, ' @@')}) has more lines than its header says (${wantOld} old, ${wantNew} new): ${JSON.stringify(next.slice(0, 60))} follows`);
      }
      end = i;
    }
  }
  if (fileCount === 0) throw new Error('no file diff in it');
  return { diff: lines.slice(0, end).join('\n') + '\n', files, fileDiffs };
}

/** checkDiff and touchedPaths of one patch, their errors as MboxErrors naming it (`what`). */
function checkedDiff(lines: string[], what: string, patch: number): { diff: string; files: string[]; touched: string[]; fileDiffs: FileDiff[] } {
  let checked;
  try {
    checked = checkDiff(lines);
  } catch (e) {
    throw new MboxError('malformed', `${what} is malformed: ${(e as Error).message}`, patch);
  }
  try {
    return { ...checked, touched: touchedPaths(checked.diff) };
  } catch (e) {
    throw new MboxError('refused', `${what}: ${(e as Error).message}`, patch);
  }
}

/** Parses an mbox or a unified diff; throws MboxError (empty, no patch, malformed, incomplete series). */
export function parseMbox(text: string): ParsedMbox {
  if (text.trim() === '') throw new MboxError('empty', 'the patch is empty');
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const first = lines.findIndex((l) => l.trim() !== '');
  const head = lines[first]!;
  const isMail = MBOX_FROM.test(head) || MAIL_START.test(head);
  if (!isMail) {
    const start = diffStart(lines);
    if (start < 0) {
      throw new MboxError('no-patch', 'not a patch: no "diff --git" or "---"/"+++"/"@@" lines found (send an mbox from git format-patch or b4, or a unified diff)');
    }
    const checked = checkedDiff(lines.slice(start), 'the diff', 1);
    return {
      cover: null,
      patches: [{ index: 1, total: 1, subject: 'unified diff', rawSubject: 'unified diff', messageId: null, inReplyTo: null, references: [], from: null, date: null, ...checked }],
      skipped: [],
      version: null,
    };
  }

  const messages = splitMessages(lines, first).map(parseHeaders);
  let cover: MboxCover | null = null;
  const skipped: ParsedMbox['skipped'] = [];
  const found: (MboxPatch & { n: number | null })[] = [];
  let version: number | null = null;
  for (const [pos, msg] of messages.entries()) {
    const rawSubject = decodeEncodedWords(msg.headers.get('subject') ?? '');
    const parsed = parseSubject(rawSubject);
    const shown = rawSubject || '(no subject)';
    const start = diffStart(msg.body);
    const from = msg.headers.has('from') ? decodeEncodedWords(msg.headers.get('from')!) : null;
    const messageId = angle(msg.headers.get('message-id'));
    const date = msg.headers.get('date') ?? null;
    if (parsed.reply) {
      skipped.push({ subject: shown, reason: 'a reply' });
      continue;
    }
    if (parsed.n === 0 || (start < 0 && (parsed.n === null || pos === 0) && cover === null && found.length === 0)) {
      if (cover) {
        skipped.push({ subject: shown, reason: 'a second cover letter' });
        continue;
      }
      cover = { subject: parsed.subject, rawSubject, messageId, from, date, body: msg.body.join('\n').replace(/\n-- \n[\s\S]*$/, '').trim() };
      version ??= parsed.version;
      continue;
    }
    const label = parsed.n !== null ? `patch ${parsed.n}/${parsed.total}` : `message ${pos + 1}`;
    if (start < 0) {
      if (parsed.n !== null) throw new MboxError('malformed', `${label} "${shown}" has no diff in it`, parsed.n);
      skipped.push({ subject: shown, reason: 'no diff' });
      continue;
    }
    const checked = checkedDiff(msg.body.slice(start), `${label} "${shown}"`, parsed.n ?? found.length + 1);
    version ??= parsed.version;
    found.push({
      n: parsed.n,
      index: 0,
      total: parsed.total ?? 0,
      subject: parsed.subject || shown,
      rawSubject,
      messageId,
      inReplyTo: angle(msg.headers.get('in-reply-to')),
      references: allAngles(msg.headers.get('references')),
      from,
      date,
      ...checked,
    });
  }
  if (found.length === 0) {
    throw new MboxError(
      'no-patch',
      `not a patch series: no diff in ${messages.length} message(s)${cover ? ` (cover letter "${cover.rawSubject}" only)` : ''}`,
    );
  }
  // Numbered series: in number order, each number once, no gap. A contiguous part of a series
  // (3/7 alone, as `b4 am -P 3` gives) is taken as it is: whether it applies is the patch stage's call.
  const numbered = found.filter((p) => p.n !== null);
  if (numbered.length > 0) {
    if (numbered.length !== found.length) {
      const odd = found.find((p) => p.n === null)!;
      throw new MboxError('incomplete', `series mixes numbered patches and an unnumbered one ("${odd.rawSubject}")`);
    }
    const total = Math.max(...found.map((p) => p.total));
    found.sort((a, b) => a.n! - b.n!);
    const first = found[0]!.n!;
    const last = found[found.length - 1]!.n!;
    for (let k = first; k <= last; k++) {
      const same = found.filter((p) => p.n === k);
      if (same.length === 0) throw new MboxError('incomplete', `patch ${k}/${total} is missing from the mbox (found ${found.map((p) => p.n).join(', ')})`, k);
      if (same.length > 1) throw new MboxError('incomplete', `patch ${k}/${total} appears ${same.length} times in the mbox`, k);
    }
  }
  const patches = found.map(({ n: _n, ...p }, k) => ({ ...p, index: k + 1, total: found.length }));
  return { cover, patches, skipped, version };
}

/** The Message-IDs a reply to the series should reference: the cover letter's, else the first patch's. */
export function threadIds(m: ParsedMbox): { inReplyTo: string | null; references: string[] } {
  const root = m.cover?.messageId ?? m.patches[0]?.messageId ?? null;
  const refs = new Set<string>();
  for (const r of m.patches[0]?.references ?? []) refs.add(r);
  if (root) refs.add(root);
  return { inReplyTo: root, references: [...refs] };
}
