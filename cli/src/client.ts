/** A small client for the nommu-ci HTTP API, shared by the CLI commands. */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { JobRecord, JobRequest } from '@nommu-ci/shared';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Retry-After of a 429 or 503, in seconds as the server sent it. */
    readonly retryAfter: string | null = null,
  ) {
    super(message);
  }
}

export class Client {
  /** `token`: sent as a bearer token (--token or NOMMU_CI_TOKEN), when the server needs one. */
  constructor(
    readonly base: string,
    readonly token: string | undefined = process.env.NOMMU_CI_TOKEN || undefined,
  ) {}

  /** The Authorization header, when there is a token. */
  auth(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  async call<T>(method: string, path: string, body?: unknown, raw = false): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: { ...this.auth(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, `cannot reach ${this.base}: ${(err as Error).cause ?? (err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        // not JSON: keep the body as it is
      }
      throw new ApiError(res.status, `${res.status}: ${message}`, res.headers.get('retry-after'));
    }
    return (raw ? text : JSON.parse(text)) as T;
  }

  submit(req: JobRequest): Promise<{ id: string }> {
    return this.call('POST', '/v1/jobs', req);
  }
  job(id: string): Promise<JobRecord> {
    return this.call('GET', `/v1/jobs/${id}`);
  }
  cancel(id: string): Promise<{ id: string; state: string }> {
    return this.call('DELETE', `/v1/jobs/${id}`);
  }
  kernels(): Promise<unknown[]> {
    return this.call('GET', '/v1/kernels');
  }
  /** The job's results as text: the tree (JSON), kunit.py's --json document, JUnit XML, or coverage (JSON). */
  async results(id: string, format: 'tree' | 'kunit-json' | 'junit' | 'coverage'): Promise<string> {
    const res = await fetch(`${this.base}/v1/jobs/${id}/results?format=${format}`);
    const text = await res.text();
    if (!res.ok) throw new ApiError(res.status, `${res.status}: ${text}`);
    return text;
  }

  /** The job's KTAP as it arrives, in chunks of text. */
  async *tap(id: string, signal?: AbortSignal): AsyncGenerator<string> {
    const res = await fetch(`${this.base}/v1/jobs/${id}/tap`, { signal, headers: this.auth() });
    if (!res.ok || !res.body) throw new ApiError(res.status, `tap stream: ${res.status}`);
    const decoder = new TextDecoder();
    for await (const chunk of res.body) yield decoder.decode(chunk as Uint8Array, { stream: true });
  }

  /** The job's server-sent events until the `end` event. */
  async *events(id: string, signal?: AbortSignal): AsyncGenerator<EventSourceMessage> {
    const res = await fetch(`${this.base}/v1/jobs/${id}/events`, { headers: { accept: 'text/event-stream', ...this.auth() }, signal });
    if (!res.ok || !res.body) throw new ApiError(res.status, `event stream: ${res.status}`);
    const queue: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (e) => queue.push(e) });
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
      while (queue.length > 0) {
        const e = queue.shift()!;
        yield e;
        if (e.event === 'end') return;
      }
    }
  }
}
