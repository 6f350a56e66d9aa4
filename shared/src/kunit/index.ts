export * from './globs.js';
export * from './list.js';
export * from './plan.js';
export * from './suites.js';
export * from './formats.js';
