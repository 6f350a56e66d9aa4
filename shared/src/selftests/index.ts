export * from './catalog.js';
export * from './console.js';
