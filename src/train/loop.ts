// loop: a whole run — warm start, held-out accuracy, GRPO, held-out accuracy again, the report — with
// metrics appended as JSONL and checkpoints that --resume continues from exactly (the same weights,
// optimizer moments, gate biases, RNG streams and step counters, so the same metrics follow).
//
// Files in the output folder:
//   metrics.jsonl                 one record per step ({phase: 'sft' | 'grpo' | 'eval', …})
//   checkpoint.json               config, trainer state, held-out results so far, the tensors' file name
//   checkpoint-<phase>-<step>.safetensors   weights, Adam moments, gate biases (and the reference model)
//   report.html                   curves and the before/after accuracy (report.ts)

import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../runtime/backend.js';
import type { TrainConfig } from './config.js';
import { readSafetensors, removeIfExists, writeFileAtomic, writeSafetensors, type StTensor } from './checkpoint.js';
import { MetricsLog, type MetricRecord } from './metrics.js';
import { writeReport } from './report.js';
import { Trainer, type EvalResult, type GrpoMetrics, type SftMetrics, type TrainerState } from './trainer.js';

export type RunEvent =
  | { kind: 'start'; trainer: Trainer; resumed: boolean }
  | { kind: 'sft'; m: SftMetrics }
  | { kind: 'eval'; label: string; r: EvalResult }
  | { kind: 'grpo'; m: GrpoMetrics }
  | { kind: 'checkpoint'; path: string };

export interface RunOptions {
  config: TrainConfig;
  backend: Backend;
  outDir: string;
  /** Continue from outDir's checkpoint (its config replaces `config`). */
  resume?: boolean;
  /** With resume: run this many GRPO steps in all instead of the saved config's (to extend a finished run, say). */
  resumeSteps?: number;
  /** Progress; returning 'stop' ends the run at once, like a kill (tests use it). */
  onEvent?: (e: RunEvent) => void | 'stop';
  /** Write report.html at the end (default true). */
  report?: boolean;
}

export interface RunResult {
  stopped: boolean;
  before: EvalResult | null;
  after: EvalResult | null;
  metrics: MetricRecord[];
  /** Peak tensor bytes (Backend.memoryStats) during the warm start and during GRPO (this process only). */
  peakBytes: { sft: number | null; grpo: number | null };
  /** Wall seconds over all the run's processes (resumes add up). */
  seconds: number;
  reportPath: string | null;
  config: TrainConfig;
}

interface CheckpointFile {
  format: 'hotpaths-train-checkpoint';
  version: 1;
  config: TrainConfig;
  state: TrainerState;
  tensors: string;
  metricsCount: number;
  before: EvalResult | null;
  seconds: number;
  peakBytes: RunResult['peakBytes'];
}

const CHECKPOINT = 'checkpoint.json';

/** Reads outDir's checkpoint.json, or null when there is none. */
export function readCheckpoint(outDir: string): CheckpointFile | null {
  const p = join(outDir, CHECKPOINT);
  if (!existsSync(p)) return null;
  const c = JSON.parse(readFileSync(p, 'utf8')) as CheckpointFile;
  if (c.format !== 'hotpaths-train-checkpoint' || c.version !== 1) throw new Error(`checkpoint: ${p} is not a hotpaths training checkpoint (version 1)`);
  return c;
}

export async function runTraining(opts: RunOptions): Promise<RunResult> {
  const t0 = performance.now();
  const { backend, outDir } = opts;
  mkdirSync(outDir, { recursive: true });
  const saved = opts.resume ? readCheckpoint(outDir) : null;
  if (opts.resume && !saved) throw new Error(`--resume: no ${CHECKPOINT} in ${outDir}`);
  const config: TrainConfig = saved ? { ...saved.config, grpo: { ...saved.config.grpo, steps: opts.resumeSteps ?? saved.config.grpo.steps } } : opts.config;
  const trainer = new Trainer(backend, config);
  let before: EvalResult | null = saved?.before ?? null;
  let after: EvalResult | null = null;
  const peakBytes: RunResult['peakBytes'] = saved?.peakBytes ?? { sft: null, grpo: null };
  const secondsBefore = saved?.seconds ?? 0;
  if (saved) {
    const { tensors } = readSafetensors(join(outDir, saved.tensors));
    trainer.importState(saved.state, (name) => tensors.get(name)?.data as Float32Array | undefined);
    if (trainer.phase === 'done' && trainer.step < config.grpo.steps) trainer.phase = 'grpo'; // a finished run given more steps
  }
  const metrics = new MetricsLog(join(outDir, 'metrics.jsonl'), { keep: saved?.metricsCount ?? 0 });
  const emit = (e: RunEvent) => opts.onEvent?.(e) === 'stop';
  const elapsed = () => secondsBefore + (performance.now() - t0) / 1000;
  const result = (stopped: boolean, reportPath: string | null): RunResult => ({ stopped, before, after, metrics: metrics.records, peakBytes, seconds: elapsed(), reportPath, config });

  const checkpoint = async () => {
    const { state, tensors } = trainer.exportState();
    const file = `checkpoint-${state.phase}-${state.step}.safetensors`;
    const st = new Map<string, StTensor>();
    for (const [name, t] of tensors) st.set(name, { dtype: 'F32', shape: [...t.shape], data: (await t.read()) as Float32Array });
    writeSafetensors(join(outDir, file), st, { format: 'hotpaths-train', phase: state.phase, step: String(state.step) });
    const ck: CheckpointFile = { format: 'hotpaths-train-checkpoint', version: 1, config, state, tensors: file, metricsCount: metrics.records.length, before, seconds: elapsed(), peakBytes };
    writeFileAtomic(join(outDir, CHECKPOINT), JSON.stringify(ck, null, 1));
    // the JSON names the new tensors file only once both are on disk; older ones can go
    for (const f of readdirSync(outDir)) if (/^checkpoint-.*\.safetensors$/.test(f) && f !== file) removeIfExists(join(outDir, f));
    emit({ kind: 'checkpoint', path: join(outDir, file) });
  };

  try {
    if (emit({ kind: 'start', trainer, resumed: !!saved })) return result(true, null);
    trainer.resetPeak();
    // warm start
    while (trainer.phase === 'sft' && trainer.step < config.sft.steps) {
      const m = await trainer.sftStep();
      metrics.append({ ...m });
      if (config.checkpointEvery > 0 && trainer.step % config.checkpointEvery === 0 && trainer.step < config.sft.steps) await checkpoint();
      if (emit({ kind: 'sft', m })) return result(true, null);
    }
    if (trainer.phase === 'sft') {
      peakBytes.sft = trainer.peakBytes();
      before = await trainer.evaluate();
      metrics.append({ phase: 'eval', label: 'warm-start', step: 0, accuracy: before.accuracy, format: before.format, n: before.n });
      if (emit({ kind: 'eval', label: 'warm-start', r: before })) return result(true, null);
      trainer.startGrpo();
      await checkpoint();
    }
    trainer.resetPeak();
    // GRPO
    while (trainer.phase === 'grpo' && trainer.step < config.grpo.steps) {
      const m = await trainer.grpoStep();
      metrics.append({ ...m });
      if (config.evalEvery > 0 && trainer.step % config.evalEvery === 0 && trainer.step < config.grpo.steps) {
        const r = await trainer.evaluate();
        metrics.append({ phase: 'eval', label: `grpo-${trainer.step}`, step: trainer.step, accuracy: r.accuracy, format: r.format, n: r.n });
        emit({ kind: 'eval', label: `grpo-${trainer.step}`, r });
      }
      if (config.checkpointEvery > 0 && trainer.step % config.checkpointEvery === 0) await checkpoint();
      if (emit({ kind: 'grpo', m })) return result(true, null);
    }
    if (trainer.phase === 'grpo') {
      peakBytes.grpo = Math.max(peakBytes.grpo ?? 0, trainer.peakBytes() ?? 0) || null;
      after = await trainer.evaluate();
      metrics.append({ phase: 'eval', label: 'final', step: trainer.step, accuracy: after.accuracy, format: after.format, n: after.n });
      emit({ kind: 'eval', label: 'final', r: after });
      trainer.phase = 'done';
      await checkpoint();
    } else {
      after = await trainer.evaluate(); // a finished run resumed: evaluate again for the summary
    }
    let reportPath: string | null = null;
    if (opts.report ?? true) {
      reportPath = join(outDir, 'report.html');
      writeReport(reportPath, { config, metrics: metrics.records, before, after, peakBytes, seconds: elapsed(), device: `${backend.name} (${backend.deviceName})`, parameters: trainer.model.parameterCount });
    }
    return result(false, reportPath);
  } finally {
    trainer.dispose();
  }
}
