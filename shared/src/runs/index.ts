/** Runs: a series against its base on both kernels; the verdict; the reports. */
export * from './model.js';
export * from './store.js';
export * from './verdict.js';
export * from './series.js';
export * from './reports/index.js';
export * from './live.js';
export * from './extras.js';
export * from './blame.js';
