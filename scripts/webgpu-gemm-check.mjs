// Scratch correctness check of the WebGPU GEMM kernels (src/webgpu/gemm.ts) against naive JS loops
// (f64), outputs poisoned first. fp8: |D − ref| ≤ tol·Σ|a·sa|·|b·sb| (+ bf16 rounding); matmul:
// |D − ref| ≤ tol·Σ|a|·|b|; transpose: bit-exact. Also the NaN/zero rows of bad group indices.
// Usage (after `npx tsc -p .`): node scripts/webgpu-gemm-check.mjs [quick]
import { getBackend, setPoison, shutdown, toBf16, fromBf16 } from '../dist/src/index.js';
import { GEMM_TUNING } from '../dist/src/webgpu/gemm.js';

const be = await getBackend('webgpu');
setPoison(true);
console.log(`adapter: ${be.deviceName}`);
let seed = Number(process.env.SEED ?? Date.now() % 100000);
console.log(`seed ${seed}`);
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const TOL = Number(process.env.TOL ?? 1e-5);

function e4m3(c) {
  const s = c & 0x80 ? -1 : 1;
  const e = (c >> 3) & 15;
  const m = c & 7;
  if ((c & 0x7f) === 0x7f) return NaN;
  return e === 0 ? s * 2 ** -6 * (m / 8) : s * 2 ** (e - 7) * (1 + m / 8);
}
const randCode = () => {
  let c;
  do c = Math.floor(rand() * 256);
  while ((c & 0x7f) === 0x7f);
  return c;
};

let failures = 0;
function report(name, bad, worst, n) {
  const ok = bad === 0;
  if (!ok) failures++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${bad}/${n} bad, worst err/bound ${worst.toExponential(2)}`);
}

async function checkFp8({ M, N, K, G = 1, grouping = 'none', bRows = 128, withC = false, outDtype = 'f32', rowGroups = null, Mmax = M }) {
  const KB = Math.ceil(K / 128);
  const NB = Math.ceil(N / 128);
  const a = Uint8Array.from({ length: M * K }, randCode);
  const b = Uint8Array.from({ length: G * N * K }, randCode);
  const sa = Float32Array.from({ length: M * KB }, () => 2 ** Math.floor(rand() * 8 - 4) * (0.5 + rand()));
  const sbRows = bRows === 128 ? G * NB : G * N;
  const sb = Float32Array.from({ length: sbRows * KB }, () => 2 ** Math.floor(rand() * 8 - 4) * (0.5 + rand()));
  const c = withC ? Float32Array.from({ length: M * N }, () => rand() * 2 - 1) : null;
  const av = Float64Array.from(a, e4m3);
  const bv = Float64Array.from(b, e4m3);
  const t = {
    a: be.fromHost(a, 'fp8e4m3', grouping === 'masked' ? [G, Mmax, K] : [M, K]),
    aScales: be.fromHost(sa, 'f32', [M, KB]),
    b: be.fromHost(b, 'fp8e4m3', grouping === 'none' ? [N, K] : [G, N, K]),
    bScales: be.fromHost(sb, 'f32', [sbRows, KB]),
    rowGroups: rowGroups ? be.fromHost(Int32Array.from(rowGroups), 'i32', [rowGroups.length]) : null,
    c: c ? be.fromHost(c, 'f32', [M, N]) : null,
  };
  const out = be.empty(outDtype, grouping === 'masked' ? [G, Mmax, N] : [M, N]);
  await be.gemm.fp8({ ...t, bBlockRows: bRows, grouping, M, N, K, G, Mmax, out });
  const raw = await be.read(out);
  const d = outDtype === 'bf16' ? fromBf16(raw) : raw;
  let bad = 0;
  let worst = 0;
  for (let r = 0; r < M; r++) {
    let g = 0;
    let mode = 'compute';
    if (grouping === 'contiguous') {
      const blk = Math.floor(r / 128) * 128;
      let first = -1;
      for (let i = blk; i < Math.min(M, blk + 128); i++) if (rowGroups[i] !== -1) { first = rowGroups[i]; break; }
      const gi = rowGroups[r];
      if (gi === -1) mode = 'zero';
      else if (gi < -1 || gi >= G || gi !== first) mode = 'nan';
      else g = gi;
    } else if (grouping === 'masked') {
      g = Math.floor(r / Mmax);
      const mm = rowGroups[g];
      if (mm < 0 || mm > Mmax) mode = 'nan';
      else if (r % Mmax >= mm) mode = 'zero';
    }
    for (let n = 0; n < N; n++) {
      const got = d[r * N + n];
      if (mode === 'zero') { if (got !== 0 || Object.is(got, -0)) bad++; continue; }
      if (mode === 'nan') { if (!Number.isNaN(got)) bad++; continue; }
      let acc = 0;
      let mag = 0;
      for (let kb = 0; kb < KB; kb++) {
        let p = 0;
        let pm = 0;
        for (let k = kb * 128; k < Math.min(K, kb * 128 + 128); k++) {
          const x = av[r * K + k] * bv[(g * N + n) * K + k];
          p += x;
          pm += Math.abs(x);
        }
        const s = sa[r * KB + kb] * (bRows === 128 ? sb[(g * NB + Math.floor(n / 128)) * KB + kb] : sb[(g * N + n) * KB + kb]);
        acc += p * s;
        mag += pm * Math.abs(s);
      }
      if (c) { acc += c[r * N + n]; mag += Math.abs(c[r * N + n]); }
      let bound = TOL * mag + 1e-30;
      const ref = acc;
      if (outDtype === 'bf16') bound += (Math.abs(acc) + TOL * mag) * 2 ** -8; // RNE to bf16: half an ulp
      const err = Math.abs(got - ref);
      if (!(err <= bound)) bad++;
      worst = Math.max(worst, err / bound);
    }
  }
  report(`fp8 ${grouping} M${M} N${N} K${K} G${G} bRows${bRows}${withC ? ' +C' : ''} ${outDtype}`, bad, worst, M * N);
  for (const x of Object.values(t)) x?.dispose?.();
  out.dispose();
}

async function checkMatmul({ M, N, K, transA, transB, bf16 = false, withC = false, outDtype = 'f32' }) {
  let a = Float32Array.from({ length: M * K }, () => rand() * 2 - 1);
  let b = Float32Array.from({ length: K * N }, () => rand() * 2 - 1);
  if (bf16) { a = fromBf16(toBf16(a)); b = fromBf16(toBf16(b)); }
  const c = withC ? Float32Array.from({ length: M * N }, () => rand() * 2 - 1) : null;
  const ta = bf16 ? be.fromHost(toBf16(a), 'bf16', transA ? [K, M] : [M, K]) : be.fromHost(a, 'f32', transA ? [K, M] : [M, K]);
  const tb = bf16 ? be.fromHost(toBf16(b), 'bf16', transB ? [N, K] : [K, N]) : be.fromHost(b, 'f32', transB ? [N, K] : [K, N]);
  const tc = c ? be.fromHost(c, 'f32', [M, N]) : null;
  const out = be.empty(outDtype, [M, N]);
  await be.gemm.matmul(ta, tb, transA, transB, tc, out);
  const raw = await be.read(out);
  const d = outDtype === 'bf16' ? fromBf16(raw) : raw;
  let bad = 0;
  let worst = 0;
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0;
      let mag = 0;
      for (let k = 0; k < K; k++) {
        const x = a[transA ? k * M + m : m * K + k] * b[transB ? n * K + k : k * N + n];
        acc += x;
        mag += Math.abs(x);
      }
      if (c) { acc += c[m * N + n]; mag += Math.abs(c[m * N + n]); }
      let bound = TOL * mag + 1e-30;
      const ref = acc;
      if (outDtype === 'bf16') bound += (Math.abs(acc) + TOL * mag) * 2 ** -8; // RNE to bf16: half an ulp
      const err = Math.abs(d[m * N + n] - ref);
      if (!(err <= bound)) bad++;
      worst = Math.max(worst, err / bound);
    }
  report(`matmul M${M} N${N} K${K} tA${+transA} tB${+transB} ${bf16 ? 'bf16' : 'f32'}${withC ? ' +C' : ''} -> ${outDtype}`, bad, worst, M * N);
  ta.dispose(); tb.dispose(); tc?.dispose(); out.dispose();
}

async function checkTranspose(R, C, dtype) {
  const n = R * C;
  const host = dtype === 'f32' ? Float32Array.from({ length: n }, () => rand()) : dtype === 'bf16' ? Uint16Array.from({ length: n }, () => Math.floor(rand() * 65536)) : Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
  const x = be.fromHost(host, dtype, [R, C]);
  const out = be.empty(dtype, [C, R]);
  await be.gemm.transpose(x, out);
  const got = await be.read(out);
  let bad = 0;
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) if (!Object.is(got[c * R + r], host[r * C + c])) bad++;
  report(`transpose ${dtype} [${R}, ${C}]`, bad, 0, n);
  x.dispose(); out.dispose();
}

// ---- fp8 (automatic K splits, then 3 forced splits)
for (const splits of [0, 3]) {
GEMM_TUNING.fp8Splits = splits;
console.log(`fp8Splits = ${splits}`);
await checkFp8({ M: 1, N: 5, K: 7 });
await checkFp8({ M: 37, N: 130, K: 300 });
await checkFp8({ M: 129, N: 257, K: 256, withC: true });
await checkFp8({ M: 64, N: 96, K: 200, bRows: 1, outDtype: 'bf16' });
await checkFp8({ M: 33, N: 51, K: 131, outDtype: 'bf16' }); // N odd: scratch path; K % 4 = 3
await checkFp8({ M: 200, N: 64, K: 130, outDtype: 'bf16', withC: true });
{
  // contiguous: blocks of 128 rows, padding rows, one bad block (mixed groups), one bad index
  const M = 384 + 50;
  const rg = new Array(M).fill(0).map((_, i) => (i < 128 ? 1 : i < 256 ? 0 : i < 384 ? 2 : 1));
  for (let i = 100; i < 128; i++) rg[i] = -1; // padding tail
  for (let i = 128; i < 140; i++) rg[i] = -1; // padding head
  rg[300] = 1; // differs from its block's group: NaN
  rg[310] = 7; // out of range: NaN
  rg[311] = -3; // out of range: NaN
  await checkFp8({ M, N: 136, K: 260, G: 3, grouping: 'contiguous', rowGroups: rg });
  await checkFp8({ M, N: 72, K: 128, G: 3, grouping: 'contiguous', rowGroups: rg, bRows: 1, outDtype: 'bf16' });
  const rg2 = new Array(130).fill(-1);
  rg2[129] = 5; // first non-padding row of the second block has a bad index: whole block NaN except padding
  rg2[5] = 0;
  await checkFp8({ M: 130, N: 40, K: 64, G: 2, grouping: 'contiguous', rowGroups: rg2 });
}
{
  // masked: G = 3, Mmax = 150 (tiles straddle 128), one group invalid
  const G = 3, Mmax = 150;
  await checkFp8({ M: G * Mmax, Mmax, N: 100, K: 256, G, grouping: 'masked', rowGroups: [150, 37, 0] });
  await checkFp8({ M: G * Mmax, Mmax, N: 33, K: 129, G, grouping: 'masked', rowGroups: [140, 151, 2], outDtype: 'bf16' });
}
}
GEMM_TUNING.fp8Splits = 0;
// ---- matmul
for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]]) {
  await checkMatmul({ M: 70, N: 130, K: 45, transA: tA, transB: tB });
  await checkMatmul({ M: 33, N: 65, K: 129, transA: tA, transB: tB, bf16: true, withC: true, outDtype: 'bf16' });
}
await checkMatmul({ M: 1, N: 1, K: 1, transA: false, transB: false, outDtype: 'bf16' });
await checkMatmul({ M: 130, N: 128, K: 300, transA: false, transB: true, withC: true });
// ---- transpose
for (const dt of ['f32', 'bf16', 'u8']) {
  await checkTranspose(1, 7, dt);
  await checkTranspose(37, 53, dt);
  await checkTranspose(64, 3, dt);
}
console.log(failures ? `${failures} FAILED` : 'all ok');
await shutdown();
process.exitCode = failures ? 1 : 0;
