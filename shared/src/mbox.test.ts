import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_DIR } from './paths.js';
import { MboxError, parseMbox, parseSubject, threadIds } from './mbox.js';

const fixture = readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/fixture-series.mbox'), 'utf8');

function err(text: string): MboxError {
  try {
    parseMbox(text);
  } catch (e) {
    expect(e).toBeInstanceOf(MboxError);
    return e as MboxError;
  }
  throw new Error('parseMbox accepted it');
}

describe('parseMbox', () => {
  it('splits a git format-patch --cover-letter series and skips the cover letter', () => {
    const m = parseMbox(fixture);
    expect(m.cover?.subject).toMatch(/^nommu-ci fixture series/);
    expect(m.cover?.rawSubject).toMatch(/^\[PATCH 0\/3\] /);
    expect(m.cover?.messageId).toBe('cover.1795928078.git.fixtures@nommu-ci.invalid');
    expect(m.patches.map((p) => [p.index, p.total, p.subject])).toEqual([
      [1, 3, 'list: test: describe which list structures are covered'],
      [2, 3, 'list: test: check list_empty() after list_add_tail()'],
      [3, 3, 'mm/nommu: use vma_span_bytes() in kobjsize()'],
    ]);
    const p3 = m.patches[2]!;
    expect(p3.rawSubject).toBe('[PATCH 3/3] mm/nommu: use vma_span_bytes() in kobjsize()');
    expect(p3.inReplyTo).toBe('cover.1795928078.git.fixtures@nommu-ci.invalid');
    expect(p3.from).toBe('Nommu CI Fixtures <fixtures@nommu-ci.invalid>');
    expect(p3.files).toEqual(['mm/nommu.c']);
    expect(p3.diff.startsWith('diff --git a/mm/nommu.c b/mm/nommu.c\n')).toBe(true);
    // the format-patch signature is not part of the diff
    expect(p3.diff).not.toMatch(/^-- $/m);
    expect(p3.diff).not.toContain('2.39.5');
    expect(threadIds(m)).toEqual({
      inReplyTo: 'cover.1795928078.git.fixtures@nommu-ci.invalid',
      references: ['cover.1795928078.git.fixtures@nommu-ci.invalid'],
    });
  });

  it('takes a single patch without a cover letter and numbering', () => {
    const one = readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/harmless.patch'), 'utf8').replace('[PATCH 1/3]', '[PATCH]');
    const m = parseMbox(one);
    expect(m.cover).toBeNull();
    expect(m.patches).toHaveLength(1);
    expect(m.patches[0]).toMatchObject({ index: 1, total: 1, subject: 'list: test: describe which list structures are covered' });
  });

  it('takes a plain unified diff', () => {
    const m = parseMbox('--- a/lib/x.c\n+++ b/lib/x.c\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n');
    expect(m.patches[0]).toMatchObject({ index: 1, total: 1, subject: 'unified diff', files: ['lib/x.c'] });
  });

  it('reads b4 mboxrd: quoted From lines, encoded subjects, replies and out-of-order patches', () => {
    const msg = (n: number, extra = '') =>
      `From mboxrd@z Thu Jan  1 00:00:00 1970\nFrom: =?utf-8?q?J=C3=B6rg_Dev?= <j@example.org>\nSubject: [PATCH v2 ${n}/2] =?utf-8?q?mm=3A_fix_n=C2=B0${n}?=\nMessage-Id: <p${n}@example.org>\nIn-Reply-To: <c@example.org>\nReferences: <c@example.org>\n\nBody\n>From here on\n---\n${extra}diff --git a/f${n} b/f${n}\n--- a/f${n}\n+++ b/f${n}\n@@ -1 +1 @@\n-a\n+b\n-- \n2.47.0\n\n`;
    const reply = 'From mboxrd@z Thu Jan  1 00:00:00 1970\nFrom: r@example.org\nSubject: Re: [PATCH v2 1/2] mm: fix\nMessage-Id: <r@example.org>\n\n> diff --git a/f1 b/f1\nLooks good.\n\n';
    const m = parseMbox(msg(2) + reply + msg(1));
    expect(m.version).toBe(2);
    expect(m.patches.map((p) => p.messageId)).toEqual(['p1@example.org', 'p2@example.org']);
    expect(m.patches[0]!.subject).toBe('mm: fix n°1');
    expect(m.patches[0]!.from).toBe('Jörg Dev <j@example.org>');
    expect(m.skipped).toEqual([{ subject: 'Re: [PATCH v2 1/2] mm: fix', reason: 'a reply' }]);
    expect(threadIds(m).inReplyTo).toBe('p1@example.org');
  });

  it('parses subject prefixes', () => {
    expect(parseSubject('[RFC PATCH net-next v3 04/10] net: x')).toMatchObject({ subject: 'net: x', n: 4, total: 10, version: 3 });
    expect(parseSubject('[PATCH] x')).toMatchObject({ subject: 'x', n: null, total: null });
  });

  it.each([
    ['', 'empty', /empty/],
    ['   \n\n', 'empty', /empty/],
    ['hello, this is not a patch\n', 'no-patch', /not a patch/],
    ['From: a@b\nSubject: [PATCH 0/1] cover\n\nonly words\n', 'no-patch', /cover letter .*only/],
  ])('refuses %j', (text, code, msg) => {
    const e = err(text);
    expect(e.code).toBe(code);
    expect(e.message).toMatch(msg);
  });

  it('names a broken patch in the middle: hunk line counts that do not match', () => {
    // patch 2/3: its hunk header claims one more old and new line than it has
    const broken = fixture.replace(/@@ -(\d+),7 \+(\d+),7 @@ static void list_test_list_empty/, '@@ -$1,8 +$2,8 @@ static void list_test_list_empty');
    expect(broken).not.toBe(fixture);
    const e = err(broken);
    expect(e.code).toBe('malformed');
    expect(e.patch).toBe(2);
    expect(e.message).toMatch(/^patch 2\/3 "\[PATCH 2\/3\] list: test: check list_empty\(\) after list_add_tail\(\)" is malformed: lib\/tests\/list-test.c: hunk 1 /);
  });

  it('names a patch whose hunk has a stray line', () => {
    const broken = fixture.replace('-\t\t\treturn vma->vm_end - vma->vm_start;\n', '-\t\t\treturn vma->vm_end - vma->vm_start;\n*garbage\n');
    const e = err(broken);
    expect(e.patch).toBe(3);
    expect(e.message).toMatch(/patch 3\/3 .*mm\/nommu.c: hunk 1 .*"\*garbage" is not part of a hunk/);
  });

  it('refuses a series with a patch missing or a numbered patch without a diff', () => {
    const parts = fixture.split(/(?=^From [0-9a-f]{40} )/m);
    expect(parts).toHaveLength(4);
    const e = err(parts[0]! + parts[1]! + parts[3]!);
    expect(e.code).toBe('incomplete');
    expect(e.message).toMatch(/patch 2\/3 is missing/);
    const nodiff = parts[2]!.replace(/^diff --git[\s\S]*?(?=^-- $)/m, '');
    const e2 = err(parts[0]! + parts[1]! + nodiff + parts[3]!);
    expect(e2.message).toMatch(/patch 2\/3 .* has no diff/);
  });
});

describe('hunk counts', () => {
  const diff = (header: string, body: string) => `--- a/f.c\n+++ b/f.c\n${header}\n${body}`;
  it('refuses a hunk with more lines than its header says', () => {
    const e = err(diff('@@ -1,2 +1,2 @@', ' a\n-b\n+c\n+d\n'));
    expect(e.message).toMatch(/f.c: hunk 1 \(@@ -1,2 \+1,2 @@\) has more lines than its header says .*"\+d" follows/);
  });
  it('accepts an empty context line, a missing newline marker, and text after the last hunk', () => {
    const m = parseMbox(diff('@@ -1,3 +1,3 @@', ' a\n\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n\nbase-commit: 0123\n'));
    expect(m.patches[0]!.diff).toBe('--- a/f.c\n+++ b/f.c\n@@ -1,3 +1,3 @@\n a\n\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n');
  });
  it('accepts renames, mode changes and binary patches without hunks', () => {
    const text = 'diff --git a/x b/y\nsimilarity index 100%\nrename from x\nrename to y\ndiff --git a/s.sh b/s.sh\nold mode 100644\nnew mode 100755\ndiff --git a/i.png b/i.png\nnew file mode 100644\nindex 0000000..1111111\nGIT binary patch\nliteral 3\nKcmZ?wbN~PS0RR91\n\nliteral 0\nHcmV?d00001\n\n';
    expect(parseMbox(text).patches[0]!.files).toEqual(['y', 's.sh', 'i.png']);
  });
});

describe('part of a series', () => {
  it('takes a contiguous part (3/3 alone) but not one with a gap', () => {
    const parts = fixture.split(/(?=^From [0-9a-f]{40} )/m);
    const m = parseMbox(parts[3]!);
    expect(m.patches.map((p) => [p.index, p.total, p.rawSubject])).toEqual([[1, 1, '[PATCH 3/3] mm/nommu: use vma_span_bytes() in kobjsize()']]);
    expect(parseMbox(parts[2]! + parts[3]!).patches).toHaveLength(2);
  });
});

describe('MIME decoding', () => {
  const head = (extra: string): string =>
    `From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\nFrom: =?iso-8859-1?q?J=F6rg?= <j@x>\nSubject: [PATCH] =?iso-8859-1?q?caf=E9?=\nMessage-Id: <q@x>\n${extra}\n`;
  it('decodes encoded words in any charset', () => {
    const m = parseMbox(`${head('')}msg\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n`);
    expect(m.patches[0]!.rawSubject).toBe('[PATCH] café');
    expect(m.patches[0]!.from).toBe('Jörg <j@x>');
  });
  it('applies the body charset after quoted-printable decoding, so the diff is what the author had', () => {
    const body = 'msg\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+caf=E9 =3D x\n';
    const m = parseMbox(head('Content-Type: text/plain; charset="ISO-8859-1"\nContent-Transfer-Encoding: quoted-printable\n') + body);
    expect(m.patches[0]!.diff).toContain('+café = x\n');
  });
});
