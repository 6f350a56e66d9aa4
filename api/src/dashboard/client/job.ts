/**
 * The job page while the job runs: each `test` event of /v1/jobs/:id/events adds its result to
 * the tree (failures and crashes also to the list above it); each `state` event refreshes the
 * status section; at `end` the server-rendered results (diagnostics, crash excerpts, suite
 * durations) replace the live tree.
 */
import { refresh, sleep } from './dom.js';

interface TestEvent {
  path: string[];
  status: 'pass' | 'fail' | 'skip' | 'crash';
  reason?: string;
}

const counts = { pass: 0, fail: 0, skip: 0, crash: 0 };

function badge(status: string): HTMLSpanElement {
  const b = document.createElement('span');
  b.className = `badge s-${status}`;
  b.textContent = status;
  return b;
}

/** The <li> of a path in the live tree, created with its ancestors as needed. */
function node(path: string[]): HTMLLIElement {
  let list = document.getElementById('live-tests') as HTMLOListElement;
  let li: HTMLLIElement | null = null;
  path.forEach((name, depth) => {
    const key = path.slice(0, depth + 1).join('\u0000');
    li = [...list.children].find((c): c is HTMLLIElement => (c as HTMLElement).dataset.key === key) ?? null;
    if (!li) {
      li = document.createElement('li');
      li.dataset.key = key;
      const label = document.createElement('span');
      label.className = 'name';
      label.textContent = name;
      li.append(label, document.createElement('ol'));
      list.append(li);
    }
    list = li.querySelector('ol')!;
  });
  return li!;
}

/** Shows the heading just before a list once the list has something in it. */
function showHeading(listId: string): void {
  const h = document.getElementById(listId)?.previousElementSibling as HTMLElement | null;
  if (h) h.hidden = false;
}

function addTest(ev: TestEvent): void {
  showHeading('live-tests');
  const li = node(ev.path);
  const leaf = li.querySelector('ol')!.children.length === 0;
  li.dataset.status = ev.status;
  li.querySelector(':scope > .badge')?.remove();
  li.prepend(badge(ev.status), ' ');
  if (ev.reason) {
    const r = document.createElement('span');
    r.className = 'reason';
    r.textContent = ` ${ev.reason}`;
    li.querySelector(':scope > .name')!.after(r);
  }
  if (!leaf) return;
  counts[ev.status]++;
  if (ev.status === 'fail' || ev.status === 'crash') {
    const p = document.createElement('li');
    const code = document.createElement('code');
    code.textContent = ev.path.join('.');
    p.append(badge(ev.status), ' ', code, ev.reason ? ` ${ev.reason}` : '');
    document.getElementById('live-problems')!.append(p);
    showHeading('live-problems');
  }
  const n = counts.pass + counts.fail + counts.skip + counts.crash;
  document.getElementById('live-summary')!.textContent =
    `${n} result${n === 1 ? '' : 's'} so far: ${counts.pass} passed, ${counts.fail} failed, ${counts.crash} crashed, ${counts.skip} skipped`;
}

export function liveJob(): void {
  const root = document.getElementById('job');
  const id = root?.dataset.job;
  if (!id) return;
  const sections = ['job-status', 'job-tests', 'job-files'];
  let statusRefresh: Promise<unknown> = Promise.resolve();
  const es = new EventSource(`/v1/jobs/${id}/events`);
  es.addEventListener('test', (e) => addTest(JSON.parse((e as MessageEvent<string>).data) as TestEvent));
  es.addEventListener('state', (e) => {
    const s = JSON.parse((e as MessageEvent<string>).data) as { state: string };
    const b = document.querySelector('#job-status [data-field="state"]');
    if (b) {
      b.textContent = s.state;
      b.className = `badge s-${s.state}`;
    }
    statusRefresh = statusRefresh.then(() => refresh(['job-status'])).catch(() => undefined);
  });
  es.addEventListener('end', () => {
    es.close();
    void (async () => {
      await statusRefresh;
      // The worker stores the logs just before it ends the stream; a few tries cover a slow store.
      for (let i = 0; i < 10; i++) {
        const doc = await refresh(sections).catch(() => null);
        if (doc?.getElementById('job-status')?.dataset.final === 'true') {
          document.body.dataset.page = 'job-final';
          document.title = doc.title;
          return;
        }
        await sleep(1000);
      }
    })();
  });
}
