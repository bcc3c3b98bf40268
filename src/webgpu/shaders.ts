// WGSL sources. Kernels name shader files by their path under the package's `shaders/` folder
// (`fp8/encode.wgsl`). Sources come from, in order: the registry (`registerShaders`: the browser
// bundle inlines every file at build time), then the reader: in Node the package's `shaders/` folder
// (set by src/webgpu/node.ts), else (browser, unbundled) a fetch relative to this module.
// Loading is async; `shaderSource` is sync over what was loaded, so launches stay synchronous.

import { HotpathsError } from '../errors.js';

const registry = new Map<string, string>();
const loading = new Map<string, Promise<string>>();

/** Adds or replaces shader sources: { 'fp8/encode.wgsl': '…' }. */
export function registerShaders(map: Readonly<Record<string, string>>): void {
  for (const [name, text] of Object.entries(map)) registry.set(name, text);
}

/** Loads the named files into the registry (each once). */
export async function loadShaders(names: readonly string[]): Promise<void> {
  await Promise.all(names.map(loadShader));
}

/** The text of one shader file, loading it if needed. */
export async function loadShader(name: string): Promise<string> {
  const have = registry.get(name);
  if (have !== undefined) return have;
  let p = loading.get(name);
  if (!p) {
    p = readShaderFile(name).then((text) => {
      registry.set(name, text);
      return text;
    });
    loading.set(name, p);
    p.catch(() => loading.delete(name));
  }
  return p;
}

/** The concatenated text of already loaded files (helpers first, kernel last). */
export function shaderSource(names: readonly string[]): string {
  return names
    .map((name) => {
      const text = registry.get(name);
      if (text === undefined) {
        throw new HotpathsError('E_BACKEND', `webgpu: shader '${name}' is not loaded (call loadShaders first or registerShaders)`);
      }
      return `// ---- ${name}\n${text}`;
    })
    .join('\n');
}

/** Where a shader missing from the registry comes from (Node: the shaders/ folder, see src/webgpu/node.ts). */
export type ShaderReader = (name: string) => Promise<string>;

let reader: ShaderReader = fetchShaderFile;

/** Replaces how shaders missing from the registry are read (src/webgpu/node.ts sets a file reader). */
export function setShaderReader(read: ShaderReader): void {
  reader = read;
}

async function readShaderFile(name: string): Promise<string> {
  if (!/^[\w./-]+\.wgsl$/.test(name) || name.split('/').includes('..')) {
    throw new HotpathsError('E_ARG', `webgpu: bad shader name '${name}'`);
  }
  return reader(name);
}

// Browser without a registry entry: the package's shaders/ folder next to src/ (unbundled ESM).
async function fetchShaderFile(name: string): Promise<string> {
  const base = new URL(import.meta.url);
  const depth = base.pathname.includes('/dist/src/') ? '../../../' : '../../';
  const res = await fetch(new URL(`${depth}shaders/${name}`, base));
  if (!res.ok) {
    throw new HotpathsError('E_BACKEND', `webgpu: shader '${name}' could not be fetched (${res.status}); register it with registerShaders()`);
  }
  return res.text();
}
