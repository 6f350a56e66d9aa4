import { describe, expect, it } from 'vitest';
import { jobPatches } from './patch.js';
import { StageError } from '../errors.js';

function stageError(text: string): StageError {
  try {
    jobPatches(text);
  } catch (e) {
    expect(e).toBeInstanceOf(StageError);
    return e as StageError;
  }
  throw new Error('accepted');
}

// The parsing itself is shared/src/mbox.ts's (tested there); the worker only turns what the API
// would have refused into a failure of stage `patch`, for jobs queued by older API versions or
// straight into Redis.
describe('jobPatches', () => {
  it('gives the parsed patches with every path they touch', () => {
    const ps = jobPatches('diff --git a/a b/lib/b.c\nsimilarity index 90%\nrename from a\nrename to lib/b.c\n--- a/a\n+++ b/lib/b.c\n@@ -1 +1 @@\n-x\n+y\n');
    expect(ps).toHaveLength(1);
    expect(ps[0]!.touched).toEqual(['a', 'lib/b.c']);
  });

  it('fails at stage patch, naming the patch and the path', () => {
    const e = stageError('diff --git a/lib/../../etc/passwd b/lib/../../etc/passwd\n--- a/lib/../../etc/passwd\n+++ b/lib/../../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n');
    expect(e.stage).toBe('patch');
    expect(e.message).toMatch(/the diff: refused: path outside the tree \(".."\): lib\/..\/..\/etc\/passwd/);
    expect(stageError('hello\nworld\n').message).toMatch(/^patch: not a patch/);
  });
});
