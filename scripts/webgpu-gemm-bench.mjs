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
const TUNING_DEFAULTS = { ...GEMM_TUNING };
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
    Object.assign(GEMM_TUNING, TUNING_DEFAULTS, v);
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
  const splitVariants = [{ fp8Splits: 0 }, { fp8Splits: 1 }, { fp8Splits: 4 }];
  await fp8Case('none 128x4096x7168', { M: 128, N: 4096, K: 7168 }, splitVariants);
  await fp8Case('none 64x4096x7168', { M: 64, N: 4096, K: 7168 }, splitVariants);
  await fp8Case('none 128x7168x2048', { M: 128, N: 7168, K: 2048 }, [{ fp8Splits: 0 }]);
  // contiguous: 4 groups of 1024 rows, N=4096, K=7168
  const rg = Array.from({ length: 4096 }, (_, i) => i >> 10);
  await fp8Case('contiguous G4 Msum4096 N4096 K7168', { M: 4096, N: 4096, K: 7168, G: 4, grouping: 'contiguous', rowGroups: rg }, [{ fp8Bk: 0 }]);
  // masked: 8 groups, Mmax 512, half the rows valid (flops counted over valid rows)
  await fp8Case('masked G8 Mmax512 (256 valid) N4096 K7168', { M: 8 * 512, Mmax: 512, N: 4096, K: 7168, G: 8, grouping: 'masked', rowGroups: new Array(8).fill(256), flopsRows: 8 * 256 }, [{ fp8Bk: 0 }]);
}
Object.assign(GEMM_TUNING, TUNING_DEFAULTS);

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
  // Probe 2: 4 subgroups per workgroup share a 128×128 tile; each K step of 32 stages 128 rows of a
  // and of b (32 bytes each) in workgroup memory with a 48-byte row stride (the 16-byte row pieces of
  // 8 consecutive rows then fall in distinct banks); each subgroup multiplies its 64×64 quarter.
  registerShaders({
    'probe/i8_mma_staged.wgsl': `
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
struct P { M: u32, N: u32, K: u32, tilesN: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<i32>;
const STRIDE: u32 = 48u; // bytes per staged row
var<workgroup> As: array<i32, 1536>;
var<workgroup> Bs: array<i32, 1536>;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wgi = wg.x + wg.y * nwg.x;
  let m0 = (wgi / p.tilesN) * 128u;
  let n0 = (wgi % p.tilesN) * 128u;
  let sg = lid / 32u;
  let sm = (sg / 2u) * 64u;
  let sn = (sg % 2u) * 64u;
  let kw = p.K / 4u;
  var acc: array<subgroup_matrix_result<i32, 16, 16>, 16>;
  for (var k = 0u; k < p.K; k = k + 32u) {
    for (var w = 0u; w < 8u; w = w + 1u) {
      As[lid * 12u + w] = bitcast<i32>(a[(m0 + lid) * kw + k / 4u + w]);
      Bs[lid * 12u + w] = bitcast<i32>(b[(n0 + lid) * kw + k / 4u + w]);
    }
    workgroupBarrier();
    var l: array<subgroup_matrix_left<i8, 32, 16>, 4>;
    var r: array<subgroup_matrix_right<i8, 16, 32>, 4>;
    for (var i = 0u; i < 4u; i = i + 1u) {
      l[i] = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&As, (sm + 16u * i) * STRIDE, false, STRIDE);
      r[i] = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&Bs, (sn + 16u * i) * STRIDE, true, STRIDE);
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
      for (var j = 0u; j < 4u; j = j + 1u) {
        acc[i * 4u + j] = subgroupMatrixMultiplyAccumulate(l[i], r[j], acc[i * 4u + j]);
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i = i + 1u) {
    for (var j = 0u; j < 4u; j = j + 1u) {
      subgroupMatrixStore(&out, (m0 + sm + 16u * i) * p.N + n0 + sn + 16u * j, acc[i * 4u + j], false, p.N);
    }
  }
}`,
  });
  const { shaderSource } = await import('../dist/src/webgpu/shaders.js');
  for (const probe of [{ file: 'probe/i8_mma.wgsl', tile: 64 }, { file: 'probe/i8_mma_staged.wgsl', tile: 128 }]) {
    try {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code: shaderSource([probe.file]) });
  const msgs = (await module.getCompilationInfo()).messages.map((m) => m.message);
  if (msgs.length) console.log(`${probe.file} compile:`, msgs.join(' | ').slice(0, 800));
  const pipe = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const err = await device.popErrorScope();
  if (err) {
    console.log(`${probe.file} pipeline failed: ${err.message.slice(0, 800)}`);
  } else {
    const tilesN = N / probe.tile;
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
      pass.dispatchWorkgroups((M / probe.tile) * tilesN);
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
    console.log(`subgroup-matrix i8 GEMM (${probe.file}) ${M}x${N}x${K}: ${ms.toFixed(3)} ms, ${((2 * M * N * K) / (ms * 1e9)).toFixed(1)} TOP/s, ${bad}/64 sampled elements wrong`);
  }
    } catch (e) {
      console.log(`${probe.file} failed: ${String(e.message).slice(0, 300)}`);
    }
  }
}

console.log('\n--- summary (TFLOP/s = 2MNK/t, GPU timer) ---');
console.log(`FP32 FMA ceiling (same run): ${ceil.fp32Tflops.toFixed(1)} TFLOP/s`);
for (const r of rows) console.log(`${r.name.padEnd(70)} ${r.ms.toFixed(3).padStart(9)} ms ${r.tflops.toFixed(1).padStart(7)} ${r.src}`);

await shutdown();
