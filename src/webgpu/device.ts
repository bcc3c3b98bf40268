// WebGPU device acquisition. Uses a caller's GPUDevice as is, or creates one: through `createGpu`
// when given (Node: the `webgpu` package, src/webgpu/node.ts), else through `navigator.gpu`. Nothing
// here imports Node modules, so the browser bundle carries this file as is.

import { HotpathsError } from '../errors.js';

/** GPUBufferUsage / GPUMapMode values (fixed by the spec; Node has no such globals). */
export const BufferUsage = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
  QUERY_RESOLVE: 0x0200,
} as const;
export const MapMode = { READ: 0x1, WRITE: 0x2 } as const;

/** Features requested when the adapter has them. */
export const WANTED_FEATURES = ['subgroups', 'timestamp-query', 'shader-f16', 'chromium-experimental-subgroup-matrix'] as const;
/** Limits requested at the adapter's maximum. */
export const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxStorageBuffersPerShaderStage',
] as const;

/** Dawn toggles used when this module creates the device in Node (subgroup matrices need the first). */
// timestamp_quantization (on by default) rounds timestamps down to 2^16 ns, which makes kernels
// under a millisecond unmeasurable: seen on the H100 as every time a multiple of 65.5 µs.
export const DEFAULT_DAWN_FLAGS = ['enable-dawn-features=allow_unsafe_apis', 'disable-dawn-features=timestamp_quantization'];

export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  subgroupMatrixConfigs?: SubgroupMatrixConfig[];
  /** A CPU implementation (lavapipe, llvmpipe, SwiftShader) or an adapter flagged as fallback. */
  isSoftware: boolean;
}

export interface AcquireOptions {
  /** A caller's device: used as is and never destroyed by hotpaths. */
  device?: GPUDevice;
  /** Dawn flags for `create()` in Node (default: DEFAULT_DAWN_FLAGS). */
  flags?: string[];
  /** Makes the GPU object (Node: createNodeGpu from src/webgpu/node.ts); default: navigator.gpu. */
  createGpu?: (flags: string[]) => Promise<GPU>;
  powerPreference?: GPUPowerPreference;
}

export interface AcquiredDevice {
  device: GPUDevice;
  adapterInfo: AdapterSummary;
  /** The device's features (what kernels may use), as plain strings. */
  features: ReadonlySet<string>;
  /** True when hotpaths created the device (and so destroys it in destroy()). */
  ownDevice: boolean;
  /** Destroys the device when hotpaths created it and drops the references that keep Dawn alive. */
  destroy(): void;
}

const SOFTWARE_NAMES = /lavapipe|llvmpipe|swiftshader|softpipe|basic render driver/i;

/** Plain-object summary of an adapter's (or device's) GPUAdapterInfo. */
export function summarizeAdapterInfo(info: GPUAdapterInfo | undefined): AdapterSummary {
  const i = (info ?? {}) as Partial<GPUAdapterInfo> & { subgroupMatrixConfigs?: unknown; isFallbackAdapter?: boolean };
  const summary: AdapterSummary = {
    vendor: i.vendor ?? '',
    architecture: i.architecture ?? '',
    device: i.device ?? '',
    description: i.description ?? '',
    isSoftware: false,
  };
  if (typeof i.subgroupMinSize === 'number') summary.subgroupMinSize = i.subgroupMinSize;
  if (typeof i.subgroupMaxSize === 'number') summary.subgroupMaxSize = i.subgroupMaxSize;
  const configs = i.subgroupMatrixConfigs;
  if (configs && typeof (configs as Iterable<unknown>)[Symbol.iterator] === 'function') {
    summary.subgroupMatrixConfigs = [...(configs as Iterable<Record<string, unknown>>)].map((c) => ({
      componentType: String(c.componentType),
      resultComponentType: String(c.resultComponentType),
      M: Number(c.M),
      N: Number(c.N),
      K: Number(c.K),
    }));
  }
  const names = `${summary.vendor} ${summary.architecture} ${summary.device} ${summary.description}`;
  summary.isSoftware = i.isFallbackAdapter === true || SOFTWARE_NAMES.test(names);
  return summary;
}

/** A GPUDevice: the caller's, or a new one with the features and limits hotpaths wants. */
export async function acquireDevice(opts: AcquireOptions = {}): Promise<AcquiredDevice> {
  if (opts.device) {
    const device = opts.device;
    return {
      device,
      adapterInfo: summarizeAdapterInfo((device as { adapterInfo?: GPUAdapterInfo }).adapterInfo),
      features: new Set([...device.features] as string[]),
      ownDevice: false,
      destroy() {
        /* the caller's device: never destroyed here */
      },
    };
  }

  let gpu: GPU | undefined;
  if (opts.createGpu) {
    gpu = await opts.createGpu(opts.flags ?? DEFAULT_DAWN_FLAGS);
  } else {
    gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (!gpu) {
      throw new HotpathsError('E_BACKEND', 'webgpu backend: navigator.gpu is missing (this browser has no WebGPU, or the page is not a secure context)');
    }
  }

  const adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
  if (!adapter) {
    throw new HotpathsError(
      'E_BACKEND',
      'webgpu backend: no WebGPU adapter; on Linux without a GPU install Mesa lavapipe (apt install mesa-vulkan-drivers)',
    );
  }

  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  const adapterLimits = adapter.limits as unknown as Record<string, number | undefined>;
  for (const k of WANTED_LIMITS) {
    const v = adapterLimits[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }

  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  } catch (cause) {
    throw new HotpathsError('E_BACKEND', `webgpu backend: requestDevice failed: ${String(cause)}`, { cause });
  }

  let destroyed = false;
  return {
    device,
    adapterInfo: summarizeAdapterInfo(adapter.info),
    features: new Set([...device.features] as string[]),
    ownDevice: true,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      device.destroy();
      // Dawn's instance lives as long as the GPU object is referenced: let it go.
      gpu = undefined;
    },
  };
}
