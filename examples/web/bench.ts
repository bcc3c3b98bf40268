// The bench page: hotpaths' WGSL kernels on the visitor's GPU. It brings its own GPUDevice
// (init({ backend: 'webgpu', device })), checks a zero-copy round trip through one of its own
// GPUBuffers, shows `hotpaths info` (adapter, features, limits), then runs every benchmark family
// the webgpu backend has (bench/families.ts, the same cases as `hotpaths bench`) and shows the table
// and one chart per family. URL flags: ?quick=1 (small shapes; the default on a software adapter),
// ?ceilings=0 (skip measuring the copy and FP32 FMA ceilings), ?autorun=1.
// Built by `npm run build:example` into examples/web/dist/bench.js (chart.js bundled in).

import * as hp from 'hotpaths/web';
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Title, Tooltip } from 'chart.js';
import { familiesOn, measureCase, type BenchFamily } from '../../bench/families.js';
import type { Measurement } from '../../bench/measurement.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Title, Tooltip, Legend);

const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function status(text: string, bad = false): void {
  const el = $('status');
  el.textContent = text;
  el.className = bad ? 'bad' : '';
}

function row(cells: (string | number)[], tag: 'td' | 'th' = 'td'): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement(tag);
    td.textContent = String(c);
    tr.append(td);
  }
  return tr;
}

/** The page's own device: the features and limits hotpaths can use, when the adapter has them. */
async function ownDevice(): Promise<{ device: GPUDevice; adapter: GPUAdapter }> {
  if (!navigator.gpu) throw new Error('this browser has no WebGPU (navigator.gpu is missing; a secure context — https or localhost — is needed)');
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter');
  const requiredFeatures = hp.WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  for (const k of hp.WANTED_LIMITS) requiredLimits[k] = (adapter.limits as unknown as Record<string, number>)[k]!;
  return { adapter, device: await adapter.requestDevice({ requiredFeatures, requiredLimits }) };
}

/** A tensor over one of the page's GPUBuffers, encoded to fp8 there, must match the reference backend byte for byte. */
async function zeroCopyCheck(rt: hp.Runtime, device: GPUDevice): Promise<string> {
  const n = 1001;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 2 ** ((i % 40) - 20));
  const buf = device.createBuffer({ size: Math.ceil((n * 4) / 16) * 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  device.queue.writeBuffer(buf, 0, x);
  const t = rt.wrapGPUBuffer(buf, 'f32', [n]);
  const got = (await (await hp.fp8.encode(t)).read()) as Uint8Array;
  const ref = await hp.init({ backend: 'reference', verbose: false });
  const want = (await (await hp.fp8.encode(ref.tensor(x, [n]))).read()) as Uint8Array;
  t.dispose();
  buf.destroy();
  const bad = got.findIndex((v, i) => v !== want[i]);
  if (bad >= 0) throw new Error(`zero-copy check: byte ${bad} is 0x${got[bad]!.toString(16)}, the reference says 0x${want[bad]!.toString(16)}`);
  return `bring-your-own device: hotpaths runs on this page's GPUDevice; a tensor wrapping the page's GPUBuffer (${n} f32, no copy) encodes to the reference's fp8 bytes`;
}

function showInfo(rt: hp.Runtime, adapter: GPUAdapter): void {
  const d = rt.backend.details as { adapter: Record<string, unknown>; features: string[]; limits: Record<string, number>; timer: string };
  const tbody = $<HTMLTableElement>('info');
  const a = d.adapter;
  const line = (k: string, v: string) => tbody.append(row([k, v]));
  line('device', rt.backend.deviceName);
  line('adapter', [a.vendor, a.architecture, a.description].filter(Boolean).join(' · ') + (a.isSoftware ? ' (software)' : ''));
  if (a.subgroupMinSize) line('subgroup size', `${a.subgroupMinSize}–${a.subgroupMaxSize}`);
  line('features used', d.features.join(', ') || '(none)');
  line('adapter features', [...adapter.features].sort().join(', '));
  line('limits', Object.entries(d.limits).map(([k, v]) => `${k} ${v}`).join(', '));
  line('timer', d.timer === 'timestamp-query' ? 'GPU timestamps (timestamp-query)' : 'wall clock (no timestamp-query)');
}

const charts: Chart[] = [];

function showChart(family: BenchFamily, ms: Measurement[]): void {
  const canvas = document.createElement('canvas');
  const box = document.createElement('div');
  box.className = 'chart';
  box.append(canvas);
  $('charts').append(box);
  const value = (m: Measurement) => (family.unit === 'GB/s' ? m.gbps : m.tflops) ?? 0;
  charts.push(
    new Chart(canvas, {
      type: 'bar',
      data: { labels: ms.map((m) => `${m.op} ${m.shape}`), datasets: [{ label: `${family.name}: ${family.unit}`, data: ms.map(value), backgroundColor: family.unit === 'GB/s' ? '#3b82f6' : '#f97316' }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { title: { display: true, text: `${family.name} — ${family.unit} per shape` }, legend: { display: false } }, scales: { y: { beginAtZero: true, title: { display: true, text: family.unit } } } },
    }),
  );
}

async function run(rt: hp.Runtime, quick: boolean, withCeilings: boolean): Promise<Measurement[]> {
  const backend = rt.backend;
  $<HTMLButtonElement>('run').disabled = true;
  $('results').replaceChildren(row(['family', 'op', 'shape', 'ms', 'GB/s', 'TFLOP/s', 'of ceiling'], 'th'));
  charts.splice(0).forEach((c) => c.destroy());
  $('charts').replaceChildren();
  let ceilings: { copyGBps?: number; tflops?: number } = {};
  if (withCeilings && backend.measureCeilings) {
    status('measuring the copy and FP32 FMA ceilings…');
    const c = await backend.measureCeilings({ quick });
    ceilings = { copyGBps: c.copyGBps, tflops: c.fp32Tflops };
    $('ceilings').textContent = `ceilings on this GPU: copy ${c.copyGBps.toFixed(1)} GB/s, FP32 FMA ${c.fp32Tflops.toFixed(3)} TFLOP/s`;
  }
  const all: Measurement[] = [];
  for (const family of familiesOn(backend)) {
    const done: Measurement[] = [];
    const cases = family.cases(backend, quick);
    for (const [i, c] of cases.entries()) {
      status(`${family.name} ${i + 1}/${cases.length}: ${c.op} ${c.shape}…`);
      const m = await measureCase(backend, c, ceilings, quick);
      done.push(m);
      $('results').append(row([m.family, m.op, m.shape, m.ms.toFixed(3) + (m.timer === 'device' ? '*' : ''), m.gbps !== undefined ? (m.gbps >= 10 ? m.gbps.toFixed(1) : m.gbps.toPrecision(3)) : '', m.tflops?.toPrecision(3) ?? '', m.ceiling_fraction !== undefined ? `${(m.ceiling_fraction * 100).toFixed(0)}%` : '']));
    }
    showChart(family, done);
    all.push(...done);
  }
  status(`done: ${all.length} measurements${quick ? ' (quick shapes)' : ''}; * = GPU timestamps`);
  $<HTMLButtonElement>('run').disabled = false;
  return all;
}

async function main(): Promise<void> {
  try {
    status('requesting a WebGPU device…');
    const { device, adapter } = await ownDevice();
    const rt = await hp.init({ backend: 'webgpu', device });
    showInfo(rt, adapter);
    $('byo').textContent = `✓ ${await zeroCopyCheck(rt, device)}`;
    const software = (rt.backend.details as { software?: boolean }).software === true;
    $<HTMLInputElement>('quick').checked = params.has('quick') ? params.get('quick') !== '0' : software;
    $<HTMLInputElement>('ceilings-on').checked = params.get('ceilings') !== '0';
    const families = familiesOn(rt.backend).map((f) => f.name);
    status(`ready: families on webgpu here: ${families.join(', ')}${software ? ' (software adapter: quick shapes preselected)' : ''}`);
    const go = async () => {
      const results = await run(rt, $<HTMLInputElement>('quick').checked, $<HTMLInputElement>('ceilings-on').checked);
      (window as unknown as { benchResults: Measurement[] }).benchResults = results;
      document.title = 'hotpaths bench — done';
    };
    $<HTMLButtonElement>('run').onclick = () => void go().catch(fail);
    $<HTMLButtonElement>('run').disabled = false;
    if (params.get('autorun') === '1') await go();
  } catch (e) {
    fail(e);
  }
}

function fail(e: unknown): void {
  console.error(e);
  status(`error: ${(e as Error).message ?? String(e)}`, true);
  document.title = 'hotpaths bench — failed';
}

void main();
