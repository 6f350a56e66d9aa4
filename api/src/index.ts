export { buildApp, type AppDeps } from './app.js';
export { startApi } from './server.js';
