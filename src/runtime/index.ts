// The Node entry's runtime: the browser-safe registry (./core.ts) with all four backends. The native
// ones load the addon; webgpu gets Dawn through the `webgpu` package and reads shaders from the
// package's shaders/ folder (src/webgpu/node.ts). A browser build imports ./core.ts instead (src/web.ts).

import { HotpathsError } from '../errors.js';
import { addonStatus, loadAddon } from '../native/addon.js';
import { createCpuBackend } from '../native/cpu.js';
import { createCudaBackend } from '../native/cuda.js';
import { createNcclGroup } from '../native/nccl.js';
import { setNcclGroupFactory } from '../ops/moe.js';
import { createReferenceBackend } from '../reference/backend.js';
import { setBackendFactories } from './core.js';

setBackendFactories({
  reference: () => createReferenceBackend(),
  cpu: () => {
    const addon = loadAddon();
    if (!addon) throw new HotpathsError('E_BACKEND', `cpu backend unavailable: ${addonStatus()}`);
    return createCpuBackend(addon);
  },
  cuda: () => {
    const addon = loadAddon();
    if (!addon) throw new HotpathsError('E_BACKEND', `cuda backend unavailable: ${addonStatus()}`);
    if (!addon.buildInfo().cuda) throw new HotpathsError('E_BACKEND', 'cuda backend unavailable: the addon was built without CUDA (no CUDA compiler found at install time)');
    if (addon.cudaDeviceCount() === 0) throw new HotpathsError('E_BACKEND', 'cuda backend unavailable: no CUDA device answers (no NVIDIA driver or GPU on this machine)');
    return createCudaBackend(addon);
  },
  webgpu: async (opts) => {
    const { createWebGPUBackend } = await import('../webgpu/backend.js');
    const { createNodeGpu, useShaderFolder } = await import('../webgpu/node.js');
    useShaderFolder();
    return createWebGPUBackend({ ...opts, createGpu: createNodeGpu });
  },
});

// moe.ncclGroup() reaches the NCCL group through this hook, so that src/ops/moe.ts has no Node import
setNcclGroupFactory(createNcclGroup);

export * from './core.js';
