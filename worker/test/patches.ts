/** Patches against the default kernel tree, written as git format-patch writes them. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadCatalog } from '@nommu-ci/shared';

const kernel = loadCatalog()[0]!;

/** An mbox (git format-patch style) with one patch replacing line `lineNo` of `rel` by `replacement`. */
export function linePatch(rel: string, lineNo: number, replacement: string[], subject: string, opts: { breakContext?: boolean } = {}): string {
  const lines = readFileSync(path.join(kernel.path, rel), 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const i = lineNo - 1;
  const before = lines.slice(Math.max(0, i - 3), i);
  const after = lines.slice(i + 1, i + 4);
  const start = i - before.length + 1;
  if (opts.breakContext) before[0] = `${before[0]} /* not in the tree */`;
  const hunk = [
    `@@ -${start},${before.length + 1 + after.length} +${start},${before.length + replacement.length + after.length} @@`,
    ...before.map((l) => ` ${l}`),
    `-${lines[i]}`,
    ...replacement.map((l) => `+${l}`),
    ...after.map((l) => ` ${l}`),
  ];
  return mbox('1111111111111111111111111111111111111111', subject, [`diff --git a/${rel} b/${rel}`, `--- a/${rel}`, `+++ b/${rel}`, ...hunk]);
}

export function lineOf(rel: string, needle: string): number {
  const i = readFileSync(path.join(kernel.path, rel), 'utf8').split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`${needle} not in ${rel}`);
  return i + 1;
}

/** An mbox with one patch that adds `files` (path in the tree -> text) to the tree. */
export function newFilesPatch(files: Record<string, string>, subject: string): string {
  const diffs: string[] = [];
  for (const [rel, text] of Object.entries(files)) {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    diffs.push(`diff --git a/${rel} b/${rel}`, 'new file mode 100644', '--- /dev/null', `+++ b/${rel}`, `@@ -0,0 +1,${lines.length} @@`, ...lines.map((l) => `+${l}`));
  }
  return mbox('2222222222222222222222222222222222222222', subject, diffs);
}

/** One git format-patch message around `diff` (its lines), its Message-Id derived from the subject. */
function mbox(commit: string, subject: string, diff: string[]): string {
  return [
    `From ${commit} Mon Sep 17 00:00:00 2001`,
    'From: Test Author <test@example.org>',
    'Date: Sun, 29 Nov 2026 00:00:00 +0000',
    `Subject: [PATCH] ${subject}`,
    `Message-Id: <${createHash('sha1').update(subject).digest('hex').slice(0, 12)}@example.org>`,
    '',
    'Test patch.',
    '',
    'Signed-off-by: Test Author <test@example.org>',
    '---',
    ...diff,
    '-- ',
    '2.39.5',
    '',
  ].join('\n');
}
