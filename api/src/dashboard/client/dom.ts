/** Page plumbing: swapping in freshly server-rendered sections, ticking clocks, copy buttons. */
import { duration } from '../duration.js';

/**
 * Fetches this page again and replaces the elements with these ids by their new versions: the
 * server renders everything, the script only decides when.
 */
export async function refresh(ids: readonly string[]): Promise<Document | null> {
  const res = await fetch(location.href, { headers: { accept: 'text/html' }, cache: 'no-store' });
  if (!res.ok) return null;
  const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
  for (const id of ids) {
    const fresh = doc.getElementById(id);
    const current = document.getElementById(id);
    if (fresh && current) current.replaceWith(document.importNode(fresh, true));
  }
  setupCopy();
  return doc;
}

/** Elements with `data-since` show the time elapsed since then, every second. */
export function tickClocks(): void {
  const tick = () => {
    for (const el of document.querySelectorAll<HTMLElement>('[data-since]')) {
      const since = Date.parse(el.dataset.since ?? '');
      if (Number.isFinite(since)) el.textContent = duration(Date.now() - since);
    }
  };
  setInterval(tick, 1000);
}

/** Copy buttons exist in the markup hidden; without the script the text area is still selectable. */
export function setupCopy(): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-copy]')) {
    if (!b.hidden) continue;
    b.hidden = false;
    b.addEventListener('click', () => {
      const area = document.getElementById(b.dataset.copy ?? '') as HTMLTextAreaElement | null;
      if (!area) return;
      const done = () => {
        b.textContent = 'Copied';
        setTimeout(() => (b.textContent = 'Copy'), 2000);
      };
      // navigator.clipboard needs a secure context; plain http on another host has none.
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(area.value).then(done, () => undefined);
      } else {
        area.select();
        if (document.execCommand('copy')) done();
      }
    });
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` every `ms` while the tab is visible, until it returns false. */
export function every(ms: number, fn: () => Promise<boolean>): void {
  const loop = async () => {
    let go = true;
    if (document.visibilityState === 'visible') go = await fn().catch(() => true);
    if (go) setTimeout(() => void loop(), ms);
  };
  setTimeout(() => void loop(), ms);
}
