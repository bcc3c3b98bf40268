// report: one self-contained HTML file — reward, accuracy, format, KL and clip-fraction curves over the
// GRPO steps, the warm-start loss, held-out accuracy before and after GRPO, peak memory, the config and
// a few completions. Chart.js (a runtime dependency) is inlined from node_modules, so the file opens
// offline and needs nothing but a browser.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { TrainConfig } from './config.js';
import { writeFileAtomic } from './checkpoint.js';
import type { MetricRecord } from './metrics.js';
import type { EvalResult } from './trainer.js';

export interface ReportInput {
  config: TrainConfig;
  metrics: MetricRecord[];
  before: EvalResult | null;
  after: EvalResult | null;
  peakBytes: { sft: number | null; grpo: number | null };
  seconds: number;
  device: string;
  parameters: number;
}

function chartJsSource(): string {
  // chart.js's package exports name no UMD entry; its main file sits next to the UMD build
  const main = createRequire(import.meta.url).resolve('chart.js');
  return readFileSync(join(dirname(main), 'chart.umd.min.js'), 'utf8');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const pct = (x: number | undefined | null) => (x === undefined || x === null ? '—' : `${(100 * x).toFixed(1)}%`);
const mib = (b: number | null) => (b === null ? '—' : `${(b / 2 ** 20).toFixed(1)} MiB`);

/** Moving average over `w` points (the raw per-step values are noisy at 128 samples a step). */
function smooth(xs: number[], w: number): number[] {
  return xs.map((_, i) => {
    const a = xs.slice(Math.max(0, i - w + 1), i + 1);
    return a.reduce((s, v) => s + v, 0) / a.length;
  });
}

export function renderReport(r: ReportInput): string {
  const grpo = r.metrics.filter((m) => m.phase === 'grpo');
  const sft = r.metrics.filter((m) => m.phase === 'sft');
  const evals = r.metrics.filter((m) => m.phase === 'eval');
  const col = (rows: MetricRecord[], k: string) => rows.map((m) => Number(m[k] ?? 0));
  const steps = col(grpo, 'step');
  const w = Math.max(1, Math.round(grpo.length / 20));
  const data = {
    steps,
    reward: col(grpo, 'reward'),
    rewardSmooth: smooth(col(grpo, 'reward'), w),
    accuracy: col(grpo, 'accuracy'),
    accuracySmooth: smooth(col(grpo, 'accuracy'), w),
    format: col(grpo, 'format'),
    kl: col(grpo, 'kl'),
    clip: col(grpo, 'clipFraction'),
    heldout: evals.map((m) => ({ x: Number(m.step), y: Number(m.accuracy) })),
    sftSteps: col(sft, 'step'),
    sftLoss: col(sft, 'loss'),
    smoothWindow: w,
  };
  const examples = (e: EvalResult | null) =>
    e ? e.examples.map((x) => `<tr><td><code>${esc(x.prompt)}</code></td><td><code>${esc(x.completion)}</code></td><td>${x.correct ? '✓' : '✗'}</td></tr>`).join('') : '';
  const gain = r.before && r.after ? r.after.accuracy - r.before.accuracy : null;
  const lossExtra = grpo.filter((m) => typeof m.lossExtraBytes === 'number');
  const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
  const lossRow = lossExtra.length
    ? `<tr><th>GRPO loss memory</th><td>at most ${kib(Math.max(...lossExtra.map((m) => Number(m.lossExtraBytes))))} above the activations, gradients of hidden and head included; the f32 logits [N, V] alone: ${kib(Math.max(...lossExtra.map((m) => Number(m.logitsBytes))))}</td></tr>`
    : '';
  const tps = grpo.length ? col(grpo, 'tokens').reduce((a, b) => a + b, 0) / col(grpo, 'seconds').reduce((a, b) => a + b, 0) : 0;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hotpaths train — ${esc(r.config.task)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px} h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
.big{font-size:20px;font-weight:600} .grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}
canvas{max-height:300px} pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}
</style>
<script>${chartJsSource()}</script></head><body>
<h1>hotpaths train: GRPO on <code>${esc(r.config.task)}</code></h1>
<p>Held-out accuracy (greedy, ${r.after?.n ?? r.before?.n ?? 0} prompts never trained on):
<span class="big">${pct(r.before?.accuracy)} after the warm start → ${pct(r.after?.accuracy)} after GRPO</span>
${gain === null ? '' : `(${gain >= 0 ? '+' : ''}${(100 * gain).toFixed(1)} points)`}.
Format: ${pct(r.before?.format)} → ${pct(r.after?.format)}.</p>
<table>
<tr><th>device</th><td>${esc(r.device)}</td></tr>
<tr><th>parameters</th><td>${r.parameters.toLocaleString('en')}${r.config.fp8 ? ' (FP8 linear layers)' : ''}</td></tr>
<tr><th>wall time</th><td>${(r.seconds / 60).toFixed(1)} min (warm start ${r.config.sft.steps} steps, GRPO ${r.config.grpo.steps} steps)</td></tr>
<tr><th>GRPO tokens/s</th><td>${tps.toFixed(0)} (sequence tokens over step wall time, sampling included)</td></tr>
<tr><th>peak tensor memory</th><td>warm start ${mib(r.peakBytes.sft)}, GRPO ${mib(r.peakBytes.grpo)} (loss ${r.config.grpo.fusedLoss ? 'fused from hidden states' : 'unfused, full logits'})</td></tr>
${lossRow}
</table>
<div class="grid">
<div><h2>Reward and accuracy of the sampled completions</h2><canvas id="reward"></canvas></div>
<div><h2>KL to the warm-start model, clip fraction</h2><canvas id="kl"></canvas></div>
<div><h2>Held-out accuracy (greedy)</h2><canvas id="heldout"></canvas></div>
<div><h2>Warm-start loss (−mean log p)</h2><canvas id="sft"></canvas></div>
</div>
<h2>Held-out completions after the warm start</h2><table><tr><th>prompt</th><th>completion</th><th></th></tr>${examples(r.before)}</table>
<h2>Held-out completions after GRPO</h2><table><tr><th>prompt</th><th>completion</th><th></th></tr>${examples(r.after)}</table>
<h2>Config</h2><pre>${esc(JSON.stringify(r.config, null, 1))}</pre>
<script>
const d = ${JSON.stringify(data)};
const line = (label, ys, color, extra = {}) => ({ label, data: ys, borderColor: color, backgroundColor: color, pointRadius: 0, borderWidth: 1.5, ...extra });
const opts = (y) => ({ animation: false, responsive: true, scales: { x: { type: 'linear', title: { display: true, text: 'step' } }, y } });
const xy = (ys, xs = d.steps) => ys.map((y, i) => ({ x: xs[i], y }));
new Chart(document.getElementById('reward'), { type: 'line', data: { datasets: [
  line('reward', xy(d.reward), '#9ecae1'), line('reward (avg ' + d.smoothWindow + ')', xy(d.rewardSmooth), '#08519c', { borderWidth: 2.5 }),
  line('accuracy', xy(d.accuracy), '#fdae6b'), line('accuracy (avg ' + d.smoothWindow + ')', xy(d.accuracySmooth), '#d94801', { borderWidth: 2.5 }),
  line('format', xy(d.format), '#74c476') ] }, options: opts({ min: 0, max: 1 }) });
new Chart(document.getElementById('kl'), { type: 'line', data: { datasets: [ line('KL (k3)', xy(d.kl), '#6a51a3'), line('clip fraction', xy(d.clip), '#e7298a', { yAxisID: 'y2' }) ] },
  options: { ...opts({ position: 'left', title: { display: true, text: 'KL' } }), scales: { x: { type: 'linear', title: { display: true, text: 'step' } }, y: { position: 'left' }, y2: { position: 'right', min: 0 } } } });
new Chart(document.getElementById('heldout'), { type: 'line', data: { datasets: [ line('held-out accuracy', d.heldout, '#d94801', { pointRadius: 4, borderWidth: 2 }) ] }, options: opts({ min: 0, max: 1 }) });
new Chart(document.getElementById('sft'), { type: 'line', data: { datasets: [ line('loss', xy(d.sftLoss, d.sftSteps), '#333') ] }, options: opts({ min: 0 }) });
</script></body></html>
`;
}

export function writeReport(path: string, r: ReportInput): void {
  writeFileAtomic(path, renderReport(r));
}
