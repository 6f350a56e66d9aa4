/**
 * Redis connection errors as log lines: one warning when Redis goes away and one line when it is
 * back, however many connections a process has. Left alone, ioredis reports every failed
 * reconnect (several a second per connection) and each BullMQ queue and worker repeats its
 * connection's errors, and a queue without an `error` listener prints each one to stderr.
 */
import type { EventEmitter } from 'node:events';

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** Whether `e` says the server could not be reached (rather than that a command or script failed). */
export function isConnectionError(e: Error): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return (code !== undefined && CONNECTION_CODES.has(code)) || /Connection is closed|Stream isn't writeable|max retries per request/i.test(e.message);
}

export interface OutageLogger {
  warn(msg: string): void;
  info(msg: string): void;
}

export class RedisOutageLog {
  /** Connections that reported a connection error and have not been ready since. */
  private readonly down = new Set<string>();
  private since = 0;

  constructor(private readonly log: OutageLogger) {}

  /** An ioredis connection (`name` tells it apart in the log): its errors, and its `ready` once it is back. */
  connection(name: string, c: EventEmitter): void {
    c.on('error', (e: Error) => {
      if (!isConnectionError(e)) return this.log.warn(`${name}: ${e.message}`);
      if (this.down.size === 0) {
        this.since = Date.now();
        this.log.warn(`${name}: ${e.message}: Redis is unreachable; reconnecting (further connection errors are not logged until it is back)`);
      }
      this.down.add(name);
    });
    c.on('ready', () => {
      if (!this.down.delete(name) || this.down.size > 0) return;
      this.log.info(`Redis is reachable again after ${((Date.now() - this.since) / 1000).toFixed(1)} s`);
    });
  }

  /** A BullMQ queue or worker: its connection errors repeat its connection's; its other errors are logged. */
  client(name: string, q: EventEmitter): void {
    q.on('error', (e: Error) => {
      if (!isConnectionError(e)) this.log.warn(`${name}: ${e.message}`);
    });
  }
}
