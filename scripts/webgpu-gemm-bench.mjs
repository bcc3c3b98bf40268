// Times the WebGPU GEMM kernels (src/webgpu/gemm.ts) with the backend's GPU timer and prints TFLOP/s
// (2·M·N·K / t) per shape and variant, next to the FP32 FMA ceiling measured in the same run.
// Also probes the adapter's subgroup matrices (int8 → int32, Vulkan cooperative matrices): a plain
// i8 GEMM at 4096×4096×7168, checked on sampled elements, to size an exact FP8-from-int8-limbs path.
// Usage (after `npx tsc -p .`): node scripts/webgpu-gemm-bench.mjs [QUICK=1]
import { getBackend, shutdown } from '../dist/src/index.js';
import { GEMM_TUNING } from '../dist/src/webgpu/gemm.js';
import { registerShaders } from '../dist/src/webgpu/shaders.js';

const quick = !!process.env.QUICK;
const be = await getBackend('webgpu');
const info = be.adapterInfo;
console.log(`adapter: ${be.deviceName}; subgroups ${info.subgroupMinSize}..${info.subgroupMaxSize}; matrix configs ${JSON.stringify(info.subgroupMatrixConfigs ?? [])}`);
const ceil = await be.measureCeilings({ quick: true });
console.log(`ceilings: ${ceil.fp32Tflops.toFixed(1)} TFLOP/s FP32 FMA, ${ceil.copyGBps.toFixed(0)} GB/s copy`);

let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const randCodes = (n) => {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let c = Math.floor(rand() * 256);
    if ((c & 0x7f) === 0x7f) c = 0x30;
    a[i] = c;
  }
  return a;
};
const rows = [];
async function time(name, flops, fn, reps = 10) {
  try {
    const t = await be.timeGpu(fn, reps, { warmup: 2 });
    rows.push({ name, ms: t.ms, tflops: flops / (t.ms * 1e9), src: t.source });
  } catch (e) {
    rows.push({ name, ms: NaN, tflops: 0, src: String(e.message).slice(0, 120) });
  }
  console.log(`${rows.at(-1).name}: ${rows.at(-1).ms.toFixed(3)} ms ${rows.at(-1).tflops.toFixed(1)} ${rows.at(-1).src}`);
}

async function fp8Case(name, { M, N, K, G = 1, grouping = 'none', Mmax = M, rowGroups = null, outDtype = 'bf16', bRows = 128, flopsRows = M }, variants) {
  const KB = Math.ceil(K / 128);
  const a = be.fromHost(randCodes(M * K), 'fp8e4m3', [M, K]);
  const b = be.fromHost(randCodes(G * N * K), 'fp8e4m3', grouping === 'none' ? [N, K] : [G, N, K]);
  const sa = be.fromHost(new Float32Array(M * KB).map(() => 0.5 + rand()), 'f32', [M, KB]);
  const sbRows = bRows === 128 ? G * Math.ceil(N / 128) : G * N;
  const sb = be.fromHost(new Float32Array(sbRows * KB).map(() => 0.5 + rand()), 'f32', [sbRows, KB]);
  const rg = rowGroups ? be.fromHost(Int32Array.from(rowGroups), 'i32', [rowGroups.length]) : null;
  const out = be.empty(outDtype, [M, N]);
  const args = { a, aScales: sa, b, bScales: sb, bBlockRows: bRows, grouping, rowGroups: rg, M, N, K, G, Mmax, c: null, out };
  for (const v of variants) {
    Object.assign(GEMM_TUNING, v);
    await time(`fp8 ${name} ${JSON.stringify(v)}`, 2 * flopsRows * N * K, () => be.gemm.fp8(args));
  }
  for (const t of [a, b, sa, sb, rg, out]) t?.dispose();
}

const big = quick ? [512, 512, 1024] : [4096, 4096, 7168];
const bk = [{ fp8Bk: 32 }, { fp8Bk: 16 }];
await fp8Case(`none ${big.join('x')} bf16`, { M: big[0], N: big[1], K: big[2] }, bk);
await fp8Case(`none ${big.join('x')} f32`, { M: big[0], N: big[1], K: big[2], outDtype: 'f32' }, [{ fp8Bk: 0 }]);
await fp8Case(`none ${big[0]}x${big[1]}x${big[2] - 1} (K%4!=0)`, { M: big[0], N: big[1], K: big[2] - 1 }, [{ fp8Bk: 0 }]);
await fp8Case(`none ${big[0]}x${big[1]}x${big[2]} wgrad bRows1`, { M: big[0], N: big[1], K: big[2], bRows: 1 }, [{ fp8Bk: 0 }]);
if (!quick) {
  await fp8Case('none 4096x7168x16384', { M: 4096, N: 7168, K: 16384 }, [{ fp8Bk: 0 }]);
  await fp8Case('none 128x4096x7168', { M: 128, N: 4096, K: 7168 }, [{ fp8Bk: 0 }]);
  await fp8Case('none 64x4096x7168', { M: 64, N: 4096, K: 7168 }, [{ fp8Bk: 0 }]);
  // contiguous: 4 groups of 1024 rows, N=4096, K=7168
  const rg = Array.from({ length: 4096 }, (_, i) => i >> 10);
  await fp8Case('contiguous G4 Msum4096 N4096 K7168', { M: 4096, N: 4096, K: 7168, G: 4, grouping: 'contiguous', rowGroups: rg }, [{ fp8Bk: 0 }]);
  // masked: 8 groups, Mmax 512, half the rows valid (flops counted over valid rows)
  await fp8Case('masked G8 Mmax512 (256 valid) N4096 K7168', { M: 8 * 512, Mmax: 512, N: 4096, K: 7168, G: 8, grouping: 'masked', rowGroups: new Array(8).fill(256), flopsRows: 8 * 256 }, [{ fp8Bk: 0 }]);
}
GEMM_TUNING.fp8Bk = 0;

// matmul and transpose
{
  const [M, N, K] = quick ? [512, 512, 512] : [4096, 4096, 4096];
  const af = be.fromHost(new Float32Array(M * K).map(() => rand() - 0.5), 'f32', [M, K]);
  const bf = be.fromHost(new Float32Array(K * N).map(() => rand() - 0.5), 'f32', [K, N]);
  const ab = be.fromHost(new Uint16Array(M * K).map(() => 0x3f00 + Math.floor(rand() * 255)), 'bf16', [M, K]);
  const bb = be.fromHost(new Uint16Array(K * N).map(() => 0x3f00 + Math.floor(rand() * 255)), 'bf16', [N, K]);
  const of = be.empty('f32', [M, N]);
  const ob = be.empty('bf16', [M, N]);
  await time(`matmul f32 ${M}x${N}x${K} NN`, 2 * M * N * K, () => be.gemm.matmul(af, bf, false, false, null, of));
  await time(`matmul f32 ${M}x${N}x${K} TN`, 2 * M * N * K, () => be.gemm.matmul(af, bf, true, false, null, of));
  await time(`matmul bf16 ${M}x${N}x${K} NT -> bf16`, 2 * M * N * K, () => be.gemm.matmul(ab, bb, false, true, null, ob));
  const x = be.fromHost(new Float32Array(M * K), 'f32', [M, K]);
  const xt = be.empty('f32', [K, M]);
  await time(`transpose f32 ${M}x${K} (GB/s as TFLOP/s·1000)`, 8 * M * K / 1000, () => be.gemm.transpose(x, xt));
  for (const t of [af, bf, ab, bb, of, ob, x, xt]) t.dispose();
}

// ---- subgroup-matrix int8 probe
const configs = info.subgroupMatrixConfigs ?? [];
const i8 = configs.find((c) => c.componentType === 'i8' && c.resultComponentType === 'i32' && c.M === 16 && c.N === 16 && c.K === 32);
if (!i8 || !be.features.has('chromium-experimental-subgroup-matrix')) {
  console.log('subgroup matrices: no i8 16x16x32 config on this adapter; probe skipped');
} else {
  // One subgroup (32 invocations) per workgroup computes a 64×64 tile of out = a·bᵀ from 4×4
  // result matrices, loading operands straight from storage (a row-major, b row-major = bᵀ col-major).
  registerShaders({
    'probe/i8_mma.wgsl': `
enable chromium_experimental_subgroup_matrix;
struct P { M: u32, N: u32, K: u32, tilesN: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<i32>;
@group(0) @binding(2) var<storage, read> b: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<i32>;
@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wgi = wg.x + wg.y * nwg.x;
  let m0 = (wgi / p.tilesN) * 64u;
  let n0 = (wgi % p.tilesN) * 64u;
  var acc: array<subgroup_matrix_result<i32, 16, 16>, 16>;
  for (var k = 0u; k < p.K; k = k + 32u) {
    var l: array<subgroup_matrix_left<i8, 32, 16>, 4>;
    var r: array<subgroup_matrix_right<i8, 16, 32>, 4>;
    for (var i = 0u; i < 4u; i = i + 1u) {
      l[i] = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&a, (m0 + 16u * i) * p.K + k, false, p.K);
      r[i] = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&b, (n0 + 16u * i) * p.K + k, true, p.K);
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
      for (var j = 0u; j < 4u; j = j + 1u) {
        acc[i * 4u + j] = subgroupMatrixMultiplyAccumulate(l[i], r[j], acc[i * 4u + j]);
      }
    }
  }
  for (var i = 0u; i < 4u; i = i + 1u) {
    for (var j = 0u; j < 4u; j = j + 1u) {
      subgroupMatrixStore(&out, (m0 + 16u * i) * p.N + n0 + 16u * j, acc[i * 4u + j], false, p.N);
    }
  }
}`,
  });
  const [M, N, K] = quick ? [256, 256, 512] : [4096, 4096, 7168];
  const ai = new Uint8Array(M * K).map(() => Math.floor(rand() * 256));
  const bi = new Uint8Array(N * K).map(() => Math.floor(rand() * 256));
  const ta = be.fromHost(ai, 'u8', [M, K]);
  const tb = be.fromHost(bi, 'u8', [N, K]);
  const to = be.empty('i32', [M, N]);
  const device = be.device;
  device.pushErrorScope('validation');
  const { shaderSource } = await import('../dist/src/webgpu/shaders.js');
  const module = device.createShaderModule({ code: shaderSource(['probe/i8_mma.wgsl']) });
  const msgs = (await module.getCompilationInfo()).messages.map((m) => m.message);
  if (msgs.length) console.log('probe compile:', msgs.join(' | ').slice(0, 800));
  const pipe = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const err = await device.popErrorScope();
  if (err) {
    console.log(`probe pipeline failed: ${err.message.slice(0, 800)}`);
  } else {
    const tilesN = N / 64;
    const ub = device.createBuffer({ size: 16, usage: 0x40 | 0x08 });
    device.queue.writeBuffer(ub, 0, new Uint32Array([M, N, K, tilesN]));
    const bg = device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [ub, be.storageOf(ta).buffer, be.storageOf(tb).buffer, be.storageOf(to).buffer].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const times = [];
    const qs = device.features.has('timestamp-query') ? device.createQuerySet({ type: 'timestamp', count: 2 }) : null;
    const qb = qs ? device.createBuffer({ size: 16, usage: 0x200 | 0x04 }) : null;
    const rb = qs ? device.createBuffer({ size: 16, usage: 0x01 | 0x08 }) : null;
    for (let rep = 0; rep < 8; rep++) {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups((M / 64) * tilesN);
      pass.end();
      if (qs) {
        enc.resolveQuerySet(qs, 0, 2, qb, 0);
        enc.copyBufferToBuffer(qb, 0, rb, 0, 16);
      }
      const t0 = performance.now();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      let ms = performance.now() - t0;
      if (rb) {
        await rb.mapAsync(1);
        const q = new BigUint64Array(rb.getMappedRange().slice(0));
        rb.unmap();
        ms = Number(q[1] - q[0]) / 1e6;
      }
      times.push(ms);
    }
    times.sort((x, y) => x - y);
    const ms = times[times.length >> 1];
    const got = new Int32Array((await be.read(to)).buffer);
    const s8 = (v) => (v << 24) >> 24;
    let bad = 0;
    for (let t = 0; t < 64; t++) {
      const m = Math.floor(rand() * M);
      const n = Math.floor(rand() * N);
      let ref = 0;
      for (let k = 0; k < K; k++) ref += s8(ai[m * K + k]) * s8(bi[n * K + k]);
      if (got[m * N + n] !== ref) {
        if (bad < 3) console.log(`probe mismatch at (${m}, ${n}): got ${got[m * N + n]}, want ${ref}`);
        bad++;
      }
    }
    console.log(`subgroup-matrix i8 GEMM ${M}x${N}x${K}: ${ms.toFixed(3)} ms, ${((2 * M * N * K) / (ms * 1e9)).toFixed(1)} TOP/s, ${bad}/64 sampled elements wrong`);
  }
}

console.log('\n--- summary (TFLOP/s = 2MNK/t, GPU timer) ---');
console.log(`FP32 FMA ceiling (same run): ${ceil.fp32Tflops.toFixed(1)} TFLOP/s`);
for (const r of rows) console.log(`${r.name.padEnd(70)} ${r.ms.toFixed(3).padStart(9)} ms ${r.tflops.toFixed(1).padStart(7)} ${r.src}`);

// Same kernel with Dawn's robustness transform off (bounds clamping of every array access), to see
// what the clamps cost on this GPU (informational: the backend keeps Dawn's defaults).
if (!quick && process.env.NO_ROBUST !== '0') {
  try {
    const { createWebGPUBackend } = await import('../dist/src/webgpu/backend.js');
    const be2 = await createWebGPUBackend({ flags: ['enable-dawn-features=allow_unsafe_apis,disable_robustness', 'disable-dawn-features=timestamp_quantization'] });
    const [M, N, K] = [4096, 4096, 7168];
    const KB = K / 128;
    const a = be2.fromHost(randCodes(M * K), 'fp8e4m3', [M, K]);
    const b = be2.fromHost(randCodes(N * K), 'fp8e4m3', [N, K]);
    const sa = be2.fromHost(new Float32Array(M * KB).fill(1), 'f32', [M, KB]);
    const sb = be2.fromHost(new Float32Array(32 * KB).fill(1), 'f32', [32, KB]);
    const out = be2.empty('bf16', [M, N]);
    const args = { a, aScales: sa, b, bScales: sb, bBlockRows: 128, grouping: 'none', rowGroups: null, M, N, K, G: 1, Mmax: M, c: null, out };
    const t = await be2.timeGpu(() => be2.gemm.fp8(args), 10, { warmup: 2 });
    console.log(`fp8 none 4096x4096x7168 bf16, disable_robustness: ${t.ms.toFixed(3)} ms ${((2 * M * N * K) / (t.ms * 1e9)).toFixed(1)} TFLOP/s (${t.source})`);
    be2.destroy();
  } catch (e) {
    console.log(`disable_robustness run failed: ${String(e.message).slice(0, 200)}`);
  }
}
await shutdown();
