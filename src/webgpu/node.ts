// The Node-only half of the WebGPU backend: Dawn's GPU object from the `webgpu` package, and shader
// sources read from the package's shaders/ folder. Only src/runtime/index.ts imports this file, so
// the browser entry (src/web.ts) never reaches fs, path or the `webgpu` package.

import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HotpathsError } from '../errors.js';
import { setShaderReader } from './shaders.js';

/** Loads the `webgpu` package (Dawn's node bindings) and creates its GPU object with `flags`. */
export async function createNodeGpu(flags: string[]): Promise<GPU> {
  let mod: { create(flags: string[]): GPU };
  try {
    mod = (await import('webgpu')) as typeof mod;
  } catch (cause) {
    throw new HotpathsError(
      'E_BACKEND',
      "webgpu backend: the 'webgpu' package (Dawn for Node) failed to load; install it with `npm install webgpu`",
      { cause },
    );
  }
  return mod.create(flags);
}

let shaderRoot: Promise<string> | undefined;

/** Makes shaders load from the package's shaders/ folder (found by walking up to package.json). */
export function useShaderFolder(): void {
  setShaderReader(async (name) => {
    shaderRoot ??= findShaderRoot();
    const file = join(await shaderRoot, ...name.split('/'));
    try {
      return await readFile(file, 'utf8');
    } catch (cause) {
      throw new HotpathsError('E_BACKEND', `webgpu: shader file ${file} could not be read`, { cause });
    }
  });
}

// Works from src/webgpu/ under vitest and from dist/src/webgpu/ after tsc.
async function findShaderRoot(): Promise<string> {
  const isDir = (p: string) => stat(p).then((s) => s.isDirectory(), () => false);
  const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if ((await isFile(join(dir, 'package.json'))) && (await isDir(join(dir, 'shaders')))) return join(dir, 'shaders');
    const up = dirname(dir);
    if (up === dir) {
      throw new HotpathsError('E_BACKEND', `webgpu: no shaders/ folder next to a package.json above ${fileURLToPath(import.meta.url)}`);
    }
    dir = up;
  }
}
