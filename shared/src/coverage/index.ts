/** Line coverage from lcov tracefiles: totals, and a patch's changed lines executed or not. */
export * from './model.js';
export * from './tracefile.js';
export * from './changed-lines.js';
export * from './changed-coverage.js';
export * from './ranges.js';
export * from './measure.js';
export * from './text.js';
