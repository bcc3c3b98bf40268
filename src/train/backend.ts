// Which backend trains: the best one that has every family the trainer calls (gemm, logprob, grpo,
// nn, moe). Kernel families reach the backends one at a time (nn and moe came to reference and cpu
// first), so `auto` walks cuda > webgpu > cpu > reference and says in one line what it passed over.

import type { Backend, BackendName } from '../runtime/backend.js';
import { getBackend, probeBackend } from '../runtime/index.js';

const FAMILIES = ['gemm', 'logprob', 'grpo', 'nn', 'moe'] as const;

/** The families `b` lacks for training. */
export function missingFamilies(b: Backend): string[] {
  return FAMILIES.filter((f) => !b[f]);
}

export async function chooseTrainBackend(want: 'auto' | BackendName): Promise<{ backend: Backend; note: string | null }> {
  if (want !== 'auto') {
    const b = await getBackend(want);
    const miss = missingFamilies(b);
    if (miss.length) throw new Error(`--backend ${want}: it has no ${miss.join(', ')} kernels yet; try --backend cpu`);
    return { backend: b, note: null };
  }
  const passed: string[] = [];
  for (const name of ['cuda', 'webgpu', 'cpu', 'reference'] as const) {
    const p = await probeBackend(name);
    if (!p.ok) {
      passed.push(`${name}: ${p.reason}`);
      continue;
    }
    const b = await getBackend(name);
    const miss = missingFamilies(b);
    if (miss.length) {
      passed.push(`${name} lacks ${miss.join('/')}`);
      continue;
    }
    if (name === 'webgpu' && b.details?.software === true) {
      passed.push('webgpu: a software adapter (slower than cpu)');
      continue;
    }
    return { backend: b, note: passed.length ? `training on ${name} (${passed.join('; ')})` : null };
  }
  throw new Error('no backend has every kernel family the trainer needs');
}
