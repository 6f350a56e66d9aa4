/**
 * The dashboard's static files: the stylesheet as written, and the script bundled from
 * client/*.ts by esbuild once when the API starts (a few milliseconds; nothing is written to disk,
 * so a fresh clone needs no build step).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { build } from 'esbuild';

export interface Asset {
  type: string;
  body: string;
  etag: string;
}

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const asset = (type: string, body: string): Asset => ({ type, body, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"` });

export async function loadAssets(): Promise<Map<string, Asset>> {
  const out = await build({
    entryPoints: [here('./client/main.ts')],
    bundle: true,
    format: 'esm',
    target: 'es2020',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  return new Map([
    ['dashboard.js', asset('text/javascript; charset=utf-8', out.outputFiles[0]!.text)],
    ['dashboard.css', asset('text/css; charset=utf-8', readFileSync(here('./dashboard.css'), 'utf8'))],
  ]);
}
