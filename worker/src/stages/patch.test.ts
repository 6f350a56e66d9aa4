import { describe, expect, it } from 'vitest';
import { checkPatch, decodeMimeWords, refusePath, splitPatches, type Patch } from './patch.js';
import { StageError } from '../errors.js';

const diff = (file: string, body = '@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n'): string =>
  `diff --git a/${file} b/${file}\nindex 1234567..89abcde 100644\n--- a/${file}\n+++ b/${file}\n${body}`;

const mail = (n: number, of: number, subject: string, body: string, id = `<${n}@example.org>`): string =>
  `From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n` +
  `From: A U Thor <author@example.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n` +
  `Subject: [PATCH ${n}/${of}] ${subject}\nMessage-Id: ${id}\n\n` +
  `Commit message line.\n\nSigned-off-by: A U Thor <author@example.org>\n---\n ${'x'} | 2 +-\n 1 file changed\n\n${body}--\n2.39.5\n\n`;

function refusal(p: Patch): string {
  try {
    checkPatch(p);
  } catch (e) {
    expect(e).toBeInstanceOf(StageError);
    expect((e as StageError).stage).toBe('patch');
    return (e as Error).message;
  }
  throw new Error('not refused');
}

describe('splitPatches', () => {
  it('splits a format-patch mbox, skips the cover letter, keeps Subject and Message-ID', () => {
    const cover =
      'From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: A <a@b>\nSubject: [PATCH 0/2] the series\nMessage-Id: <0@example.org>\n\nCover text\n\nA U Thor (2):\n  x\n\n lib/a.c | 1 +\n\n-- \n2.39.5\n\n';
    const text = cover + mail(1, 2, 'lib: first', diff('lib/a.c')) + mail(2, 2, 'lib: second', diff('lib/b.c'));
    const ps = splitPatches(text);
    expect(ps.map((p) => p.subject)).toEqual(['[PATCH 1/2] lib: first', '[PATCH 2/2] lib: second']);
    expect(ps.map((p) => p.messageId)).toEqual(['1@example.org', '2@example.org']);
    expect(ps[0]!.diff.startsWith('diff --git a/lib/a.c b/lib/a.c\n')).toBe(true);
    expect(ps[1]!.index).toBe(2);
    expect(ps[0]!.author).toBe('A U Thor <author@example.org>');
  });

  it('takes a plain unified diff as one patch', () => {
    const ps = splitPatches('--- a/lib/x.c\n+++ b/lib/x.c\n@@ -1 +1 @@\n-a\n+b\n');
    expect(ps).toHaveLength(1);
    expect(ps[0]!.subject).toBe('unified diff');
  });

  it('takes a single mail without an mbox From line, folded and encoded subjects', () => {
    const ps = splitPatches(`From: X <x@y>\nSubject: [PATCH] mm: =?UTF-8?q?f=C3=B6o?=\n  bar\nMessage-ID: <m@x>\n\nmsg\n---\n${diff('mm/a.c')}`);
    expect(ps[0]!.subject).toBe('[PATCH] mm: föo bar');
    expect(ps[0]!.messageId).toBe('m@x');
  });

  it('fails at stage patch when there is no diff', () => {
    expect(() => splitPatches('hello\nworld\n')).toThrow(/no diff found/);
    expect(() => splitPatches(mail(1, 1, 'no diff', 'just text\n'))).toThrow(/no diff found/);
  });

  it('decodes base64 encoded words', () => {
    expect(decodeMimeWords('=?utf-8?b?w6TDtsO8?=')).toBe('äöü');
  });
});

describe('checkPatch refusals', () => {
  const p = (d: string): Patch => ({ index: 3, subject: '[PATCH 3/3] evil', messageId: null, author: null, diff: d });
  it('refuses .. paths naming the patch and the path', () => {
    const m = refusal(p(diff('lib/../../etc/passwd')));
    expect(m).toContain('patch 3 "[PATCH 3/3] evil"');
    expect(m).toContain('lib/../../etc/passwd');
    expect(m).toMatch(/outside the tree/);
  });
  it('refuses absolute paths in plain diffs', () => {
    expect(refusal(p('--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n'))).toMatch(/absolute path: \/etc\/passwd/);
  });
  it('refuses symlinks', () => {
    const d = 'diff --git a/lib/l b/lib/l\nnew file mode 120000\nindex 0000000..1111111\n--- /dev/null\n+++ b/lib/l\n@@ -0,0 +1 @@\n+/etc/shadow\n\\ No newline at end of file\n';
    expect(refusal(p(d))).toMatch(/symlink \(mode 120000\): lib\/l/);
  });
  it('refuses a mode change to a symlink and submodules', () => {
    expect(refusal(p('diff --git a/x b/x\nold mode 100644\nnew mode 120000\n'))).toMatch(/symlink/);
    expect(refusal(p('diff --git a/x b/x\nnew file mode 160000\nindex 0000000..1111111\n'))).toMatch(/submodule/);
  });
  it('refuses .git paths, also in renames', () => {
    expect(refusal(p(diff('.git/config')))).toMatch(/\.git path: \.git\/config/);
    expect(refusal(p('diff --git a/a b/sub/.git/hooks/x\nsimilarity index 100%\nrename from a\nrename to sub/.git/hooks/x\n'))).toMatch(/\.git path/);
  });
  it('accepts ordinary patches, new and deleted files', () => {
    const d = diff('lib/list-test.c') + 'diff --git a/lib/new.c b/lib/new.c\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/lib/new.c\n@@ -0,0 +1 @@\n+x\n';
    expect(checkPatch(p(d))).toEqual(['lib/list-test.c', 'lib/new.c']);
    expect(refusePath('lib/a..b.c')).toBeNull();
  });
});
