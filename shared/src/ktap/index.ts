/**
 * KUnit's KTAP output → the result tree of result.ts.
 *
 * console.ts: kernel console → KTAP lines (boot noise, console prefixes, crash markers).
 * parse.ts:   KTAP lines → test tree, batch or incremental.
 * counts.ts:  kunit_tool's own way of counting, to compare with `kunit.py parse`.
 */
export { KtapExtractor, extractKtap } from './console.js';
export { KtapStream, parseKtap, type KtapResult, type ResultCallback } from './parse.js';
