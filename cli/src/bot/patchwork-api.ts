/**
 * The parts of the Patchwork REST API (1.x, as Patchwork 3.x serves it) the bot uses: the
 * series of a project, their mboxes, and the checks of a patch. Network errors, 5xx and 429 are
 * retried with exponential backoff (honouring Retry-After); other errors are thrown at once.
 */

export interface PwPatchRef {
  id: number;
  msgid: string;
  name: string;
}

export interface PwSeries {
  id: number;
  name: string | null;
  date: string;
  version: number;
  total: number;
  received_all: boolean;
  mbox: string;
  cover_letter: { id: number; msgid: string; mbox: string } | null;
  patches: PwPatchRef[];
  submitter: { name: string | null; email: string };
  project: { link_name: string; list_email: string };
}

export interface PwCheck {
  id: number;
  user: { username: string } | null;
  state: 'pending' | 'success' | 'warning' | 'fail';
  context: string;
  target_url: string | null;
  description: string | null;
  date: string;
}

export class PatchworkError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface RetryOptions {
  attempts: number;
  /** First delay; doubled each attempt. */
  baseMs: number;
  maxMs: number;
  log?: (msg: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PatchworkApi {
  constructor(
    readonly url: string,
    private readonly token: string,
    private readonly retry: RetryOptions = { attempts: 6, baseMs: 1000, maxMs: 60_000 },
  ) {}

  private async request(method: string, url: string, body?: unknown): Promise<Response> {
    const full = url.startsWith('http') ? url : `${this.url}${url}`;
    for (let attempt = 1; ; attempt++) {
      let res: Response | null = null;
      let problem: string;
      try {
        res = await fetch(full, {
          method,
          headers: {
            authorization: `Token ${this.token}`,
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(60_000),
        });
        if (res.ok) return res;
        problem = `${method} ${full}: ${res.status} ${(await res.text()).slice(0, 300)}`;
        if (res.status < 500 && res.status !== 429) throw new PatchworkError(res.status, problem);
      } catch (e) {
        if (e instanceof PatchworkError) throw e;
        problem = `${method} ${full}: ${(e as Error).message}`;
      }
      if (attempt >= this.retry.attempts) throw new PatchworkError(res?.status ?? 0, `${problem} (after ${attempt} attempts)`);
      const after = Number(res?.headers.get('retry-after'));
      const wait = Number.isFinite(after) && after > 0 ? after * 1000 : Math.min(this.retry.maxMs, this.retry.baseMs * 2 ** (attempt - 1));
      this.retry.log?.(`patchwork: ${problem}; retrying in ${Math.round(wait / 1000)} s`);
      await sleep(wait);
    }
  }

  private async json<T>(method: string, url: string, body?: unknown): Promise<T> {
    return (await (await this.request(method, url, body)).json()) as T;
  }

  /** Every series of the project dated `since` or later, oldest first (all pages). */
  async seriesSince(project: string, since: string): Promise<PwSeries[]> {
    const out: PwSeries[] = [];
    let next: string | null = `/api/series/?project=${encodeURIComponent(project)}&since=${encodeURIComponent(since)}&order=id&per_page=100`;
    while (next) {
      const res = await this.request('GET', next);
      out.push(...((await res.json()) as PwSeries[]));
      next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1] ?? null;
    }
    return out;
  }

  async text(url: string): Promise<string> {
    return (await this.request('GET', url)).text();
  }

  async checks(patchId: number): Promise<PwCheck[]> {
    return this.json('GET', `/api/patches/${patchId}/checks/?per_page=250`);
  }

  async postCheck(patchId: number, check: { state: string; context: string; target_url?: string; description: string }): Promise<PwCheck> {
    return this.json('POST', `/api/patches/${patchId}/checks/`, check);
  }
}
