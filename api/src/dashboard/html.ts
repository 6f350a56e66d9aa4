/**
 * Server-side HTML: a tagged template that escapes every interpolated value unless it is
 * already HTML (the result of another `html` call or `raw`). Pages are plain functions of
 * their data returning Html; no template engine.
 */

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

type Part = Html | string | number | boolean | null | undefined | readonly Part[];

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function render(p: Part): string {
  if (p === null || p === undefined || p === false || p === true) return '';
  if (p instanceof Html) return p.value;
  if (Array.isArray(p)) return p.map(render).join('');
  return escapeHtml(String(p));
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return new Html(out);
}

/** Markup we wrote ourselves (never user data). */
export const raw = (s: string): Html => new Html(s);

export interface PageOptions {
  title: string;
  /** Which nav entry is current. */
  nav: 'jobs' | 'runs' | 'queue' | 'kernels' | null;
  /** `data-page` of <body>: tells the script which live parts to start. */
  page: string;
  body: Html;
}

const NAV: [PageOptions['nav'], string, string][] = [
  ['jobs', '/', 'Jobs'],
  ['runs', '/runs', 'Runs'],
  ['queue', '/queue', 'Queue'],
  ['kernels', '/kernels', 'Kernels'],
];

export function layout(o: PageOptions): string {
  return (
    '<!doctype html>\n' +
    html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · nommu-ci</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/dashboard.css">
<script type="module" src="/assets/dashboard.js"></script>
</head>
<body data-page="${o.page}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/">nommu-ci</a>
<nav aria-label="Main"><ul>
${NAV.map(([key, href, label]) => html`<li><a href="${href}"${key === o.nav ? raw(' aria-current="page"') : ''}>${label}</a></li>`)}
<li><a href="/docs">API</a></li>
</ul></nav>
</header>
<main id="main">
${o.body}
</main>
</body>
</html>
`.value
  );
}
