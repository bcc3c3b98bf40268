// Isolates why the WebGPU fp8 kernels stream below the copy rate: times, on a raw Dawn device with
// timestamp queries, (A) a vec4 copy, (B) u32 -> vec4 expansion with no math, (C) the same with the
// fp8 decode codec, (D) 4 vec4 -> 4 u32 packing with no math, (E) the same with the fp8 encode codec.
// n = 4096·7168 elements, as the fp8 benchmarks. Usage: node scripts/webgpu-stream-probe.mjs
import { readFileSync } from 'node:fs';
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create(['enable-dawn-features=allow_unsafe_apis', 'disable-dawn-features=timestamp_quantization']);
const adapter = await gpu.requestAdapter();
const device = await adapter.requestDevice({ requiredFeatures: ['timestamp-query'], requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize } });
const codec = readFileSync(new URL('../shaders/fp8/codec.wgsl', import.meta.url), 'utf8');
const n = Number(process.env.N ?? 4096 * 7168);
const words = n / 4;
const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const big = (bytes) => device.createBuffer({ size: bytes, usage: S });
const f32buf = big(n * 4), f32out = big(n * 4), u8buf = big(n), u8out = big(n);
device.queue.writeBuffer(f32buf, 0, new Float32Array(n).map((_, i) => Math.sin(i)));
device.queue.writeBuffer(u8buf, 0, new Uint8Array(n).map((_, i) => (i * 37) & 0x7f));
const head = `@group(0) @binding(0) var<storage, read> src: array<SRC>; @group(0) @binding(1) var<storage, read_write> dst: array<DST>;
fn gid(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wg.x + wg.y * nwg.x) * 256u + lid; }`;
const main = (body) => `@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) { let i = gid(wg, nwg, lid); ${body} }`;
const kernels = {
  'A copy vec4 (f32 -> f32)': { src: 'vec4<u32>', dst: 'vec4<u32>', items: n / 4, bytes: n * 8, a: f32buf, b: f32out, body: 'if (i < arrayLength(&dst)) { dst[i] = src[i]; }' },
  'B expand u32 -> vec4 (no math)': { src: 'u32', dst: 'vec4<u32>', items: words, bytes: n * 5, a: u8buf, b: f32out, body: 'if (i < arrayLength(&src)) { let c = src[i]; dst[i] = vec4<u32>(c & 255u, (c >> 8u) & 255u, (c >> 16u) & 255u, c >> 24u); }' },
  'C expand + fp8 decode': { src: 'u32', dst: 'vec4<u32>', items: words, bytes: n * 5, a: u8buf, b: f32out, codec: true, body: 'if (i < arrayLength(&src)) { let c = src[i]; dst[i] = vec4<u32>(fp8_decode_bits(c & 255u), fp8_decode_bits((c >> 8u) & 255u), fp8_decode_bits((c >> 16u) & 255u), fp8_decode_bits(c >> 24u)); }' },
  'D pack vec4 -> u32 (no math)': { src: 'vec4<u32>', dst: 'u32', items: words, bytes: n * 5, a: f32buf, b: u8out, body: 'if (i < arrayLength(&dst)) { let v = src[i]; dst[i] = (v.x >> 24u) | ((v.y >> 24u) << 8u) | ((v.z >> 24u) << 16u) | ((v.w >> 24u) << 24u); }' },
  'E pack + fp8 encode': { src: 'vec4<u32>', dst: 'u32', items: words, bytes: n * 5, a: f32buf, b: u8out, codec: true, body: 'if (i < arrayLength(&dst)) { let v = src[i]; dst[i] = fp8_encode_bits(v.x) | (fp8_encode_bits(v.y) << 8u) | (fp8_encode_bits(v.z) << 16u) | (fp8_encode_bits(v.w) << 24u); }' },
};
const qs = device.createQuerySet({ type: 'timestamp', count: 2 });
const res = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
const rd = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
for (const [name, k] of Object.entries(kernels)) {
  const code = (k.codec ? codec : '') + head.replace('SRC', k.src).replace('DST', k.dst) + main(k.body);
  const module = device.createShaderModule({ code });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: k.a } }, { binding: 1, resource: { buffer: k.b } }] });
  const groups = Math.ceil(k.items / 256);
  const gx = Math.min(groups, 65535), gy = Math.ceil(groups / 65535);
  const times = [];
  for (let rep = 0; rep < 12; rep++) {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    pass.setPipeline(pipeline); pass.setBindGroup(0, bg); pass.dispatchWorkgroups(gx, gy); pass.end();
    enc.resolveQuerySet(qs, 0, 2, res, 0); enc.copyBufferToBuffer(res, 0, rd, 0, 16);
    device.queue.submit([enc.finish()]);
    await rd.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(rd.getMappedRange().slice(0)); rd.unmap();
    if (rep >= 2) times.push(Number(t[1] - t[0]) / 1e6);
  }
  times.sort((a, b) => a - b);
  const ms = times[times.length >> 1];
  console.log(`${name.padEnd(32)} ${ms.toFixed(4)} ms ${(k.bytes / (ms * 1e6)).toFixed(0).padStart(5)} GB/s`);
}
device.destroy();
