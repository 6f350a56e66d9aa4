/** Kernel sources: versions, the no-MMU series, and what boot selftests and kselftest targets each offers. */
import { availability, defaultMmu, type BootSelftest, type KernelSource, type KselftestTarget, type SeriesInfo } from '@nommu-ci/shared';
import { html, type Html } from '../html.js';

export interface KernelsView {
  catalog: KernelSource[];
  series: SeriesInfo | null;
  selftests: BootSelftest[];
  kselftests: (k: KernelSource) => KselftestTarget[];
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

function kernel(k: KernelSource, v: KernelsView): Html {
  if (!k.available) return html`<section><h2>${k.name} <span class="sub">${k.version}</span></h2><p>Not present on this host.</p></section>`;
  const targets = v.kselftests(k);
  return html`<section aria-labelledby="k-${k.name}">
<h2 id="k-${k.name}">${k.name} <span class="sub">${k.version}</span></h2>
<p>Jobs that do not say run on the ${defaultMmu(v.series) ? 'MMU' : 'no-MMU'} kernel.</p>
<details open><summary>Boot-time selftests (${v.selftests.length})</summary>
<div class="scroll"><table>
<thead><tr><th scope="col">Name</th><th scope="col">Kconfig</th><th scope="col">In this tree</th><th scope="col">Without an MMU</th></tr></thead>
<tbody>${v.selftests.map((t) => {
    const a = availability(t, k.path);
    return html`<tr><td>${t.name}</td><td><code>${t.kconfig.join(' ')}</code></td><td>${yesNo(a.offered)}</td><td>${yesNo(a.nommu)}</td></tr>`;
  })}</tbody></table></div></details>
<details><summary>kselftest targets (${targets.length})</summary>
<div class="scroll"><table>
<thead><tr><th scope="col">Target</th><th scope="col">Tests</th><th scope="col">Can run without an MMU</th><th scope="col">Timeout</th></tr></thead>
<tbody>${targets.map(
    (t) => html`<tr><td>${t.name}</td><td>${t.tests.length}</td><td>${t.tests.filter((x) => x.nommu_blocker === null).length}</td><td>${t.timeout_s ? `${t.timeout_s} s` : 'none'}</td></tr>`,
  )}</tbody></table></div></details>
</section>`;
}

export function kernelsPage(v: KernelsView): Html {
  const s = v.series;
  return html`<h1>Kernels</h1>
${
  s
    ? html`<section aria-labelledby="series-h"><h2 id="series-h">No-MMU series <span class="sub">${s.name}@${s.hash.slice(0, 12)}</span></h2>
<details><summary>${s.patches.length} patches</summary><ol class="patches">${s.patches.map((p) => html`<li><code>${p}</code></li>`)}</ol></details></section>`
    : html`<p>This server has no no-MMU series: jobs run on the MMU kernel only.</p>`
}
${v.catalog.map((k) => kernel(k, v))}
<p class="note">JSON: <a href="/v1/kernels">/v1/kernels</a> · <a href="/v1/boot-selftests">/v1/boot-selftests</a> · <a href="/v1/kselftests">/v1/kselftests</a></p>`;
}
