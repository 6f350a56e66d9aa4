export * from './job.js';
export * from './result.js';
export * from './kconfig.js';
export * from './store.js';
export * from './queue.js';
export * from './paths.js';
export * from './kernels.js';
export * from './ktap/index.js';
