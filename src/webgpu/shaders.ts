// WGSL sources. Kernels name shader files by their path under the package's `shaders/` folder
// (`fp8/encode.wgsl`). Sources come from, in order: the registry (`registerShaders`, for a browser
// build that inlines them), then in Node the `shaders/` folder of the package found by walking up
// from this module to the folder that holds package.json (works from src/webgpu/ under vitest and
// from dist/src/webgpu/ after tsc), else (browser, unbundled) a fetch relative to this module.
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

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

async function readShaderFile(name: string): Promise<string> {
  if (!/^[\w./-]+\.wgsl$/.test(name) || name.split('/').includes('..')) {
    throw new HotpathsError('E_ARG', `webgpu: bad shader name '${name}'`);
  }
  if (isNode()) return readShaderFileNode(name);
  // Browser without a registry entry: the package's shaders/ folder next to src/ (unbundled ESM).
  const base = new URL(import.meta.url);
  const depth = base.pathname.includes('/dist/src/') ? '../../../' : '../../';
  const res = await fetch(new URL(`${depth}shaders/${name}`, base));
  if (!res.ok) {
    throw new HotpathsError('E_BACKEND', `webgpu: shader '${name}' could not be fetched (${res.status}); register it with registerShaders()`);
  }
  return res.text();
}

// ---------------------------------------------------------------- Node only
let shaderRoot: Promise<string> | undefined;

async function readShaderFileNode(name: string): Promise<string> {
  const fsSpec = 'node:fs/promises';
  const pathSpec = 'node:path';
  const fs = (await import(/* @vite-ignore */ fsSpec)) as typeof import('node:fs/promises');
  const path = (await import(/* @vite-ignore */ pathSpec)) as typeof import('node:path');
  shaderRoot ??= findShaderRoot(fs, path);
  const file = path.join(await shaderRoot, ...name.split('/'));
  try {
    return await fs.readFile(file, 'utf8');
  } catch (cause) {
    throw new HotpathsError('E_BACKEND', `webgpu: shader file ${file} could not be read`, { cause });
  }
}

async function findShaderRoot(fs: typeof import('node:fs/promises'), path: typeof import('node:path')): Promise<string> {
  const urlSpec = 'node:url';
  const { fileURLToPath } = (await import(/* @vite-ignore */ urlSpec)) as typeof import('node:url');
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const hasPkg = await fs.stat(path.join(dir, 'package.json')).then((s) => s.isFile(), () => false);
    const hasShaders = await fs.stat(path.join(dir, 'shaders')).then((s) => s.isDirectory(), () => false);
    if (hasPkg && hasShaders) return path.join(dir, 'shaders');
    const up = path.dirname(dir);
    if (up === dir) {
      throw new HotpathsError('E_BACKEND', `webgpu: no shaders/ folder next to a package.json above ${fileURLToPath(import.meta.url)}`);
    }
    dir = up;
  }
}
// ---------------------------------------------------------------- end Node only
