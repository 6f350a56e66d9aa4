import { describe, expect, it } from 'vitest';
import { MboxError, parseMbox } from './mbox.js';
import { refusePath } from './patch-paths.js';

const diff = (file: string, body = '@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n'): string =>
  `diff --git a/${file} b/${file}\nindex 1234567..89abcde 100644\n--- a/${file}\n+++ b/${file}\n${body}`;
const mail = (d: string): string =>
  `From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\nFrom: A <a@b>\nSubject: [PATCH 3/3] evil\nMessage-Id: <3@x>\n\nmsg\n---\n${d}`;

function refusal(d: string): string {
  try {
    parseMbox(mail(d));
  } catch (e) {
    expect(e).toBeInstanceOf(MboxError);
    expect((e as MboxError).code).toBe('refused');
    expect((e as MboxError).patch).toBe(3);
    return (e as Error).message;
  }
  throw new Error('not refused');
}

describe('paths a patch may touch', () => {
  it('refuses .. paths naming the patch and the path', () => {
    const m = refusal(diff('lib/../../etc/passwd'));
    expect(m).toContain('patch 3/3 "[PATCH 3/3] evil"');
    expect(m).toMatch(/outside the tree.*lib\/\.\.\/\.\.\/etc\/passwd/);
  });
  it('refuses absolute paths in plain diffs', () => {
    expect(refusal('--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n')).toMatch(/absolute path: \/etc\/passwd/);
  });
  it('refuses symlinks, mode changes to symlinks and submodules', () => {
    expect(refusal('diff --git a/lib/l b/lib/l\nnew file mode 120000\nindex 0000000..1111111\n--- /dev/null\n+++ b/lib/l\n@@ -0,0 +1 @@\n+/etc/shadow\n\\ No newline at end of file\n')).toMatch(
      /symlink \(mode 120000\): lib\/l/,
    );
    expect(refusal('diff --git a/x b/x\nold mode 100644\nnew mode 120000\n')).toMatch(/symlink/);
    expect(refusal('diff --git a/x b/x\nnew file mode 160000\nindex 0000000..1111111\n')).toMatch(/submodule/);
  });
  it('refuses .git paths, also in renames', () => {
    expect(refusal(diff('.git/config'))).toMatch(/\.git path: \.git\/config/);
    expect(refusal('diff --git a/a b/sub/.git/hooks/x\nsimilarity index 100%\nrename from a\nrename to sub/.git/hooks/x\n')).toMatch(/\.git path/);
  });
  it('accepts ordinary patches, new and deleted files, and lists what they touch', () => {
    const d = diff('lib/list-test.c') + 'diff --git a/lib/new.c b/lib/new.c\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/lib/new.c\n@@ -0,0 +1 @@\n+x\n';
    expect(parseMbox(mail(d)).patches[0]!.touched).toEqual(['lib/list-test.c', 'lib/new.c']);
    expect(refusePath('lib/a..b.c')).toBeNull();
  });
});
