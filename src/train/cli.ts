// `hotpaths train`: flags -> a TrainConfig, the backend, a progress bar over the run, and the summary
// (held-out accuracy before and after GRPO, time, peak memory, where the report is).

import cliProgress from 'cli-progress';
import { InvalidArgumentError } from 'commander';
import { join } from 'node:path';
import type { BackendName } from '../runtime/backend.js';
import { chooseTrainBackend } from './backend.js';
import { defaultConfig, type TrainConfig } from './config.js';
import { readCheckpoint, runTraining, type RunEvent } from './loop.js';
import { measureThroughput } from './throughput.js';
import type { TaskName } from './tasks/index.js';

export interface TrainCliOptions {
  task: TaskName;
  backend: 'auto' | BackendName;
  steps?: number;
  sftSteps?: number;
  fp8?: boolean;
  out?: string;
  resume?: boolean;
  seed?: number;
  prompts?: number;
  group?: number;
  mu?: number;
  beta?: number;
  lr?: number;
  temperature?: number;
  topP?: number;
  unfusedLoss?: boolean;
  evalPrompts?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  zeroAdvantages?: boolean;
  throughput?: boolean;
  batch?: number;
  seq?: number;
  json?: boolean;
}

export function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got '${v}'`);
  return n;
}

export function numArg(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${v}'`);
  return n;
}

/** The run's config: the task's defaults with the flags applied. */
export function configFromFlags(o: TrainCliOptions): TrainConfig {
  const c = defaultConfig(o.task);
  if (o.seed !== undefined) c.seed = o.seed;
  if (o.fp8) c.fp8 = true;
  if (o.steps !== undefined) c.grpo.steps = o.steps;
  if (o.sftSteps !== undefined) c.sft.steps = o.sftSteps;
  if (o.prompts !== undefined) c.grpo.prompts = o.prompts;
  if (o.group !== undefined) c.grpo.group = o.group;
  if (o.mu !== undefined) c.grpo.mu = o.mu;
  if (o.beta !== undefined) c.grpo.beta = o.beta;
  if (o.lr !== undefined) c.grpo.lr = o.lr;
  if (o.temperature !== undefined) c.grpo.temperature = o.temperature;
  if (o.topP !== undefined) c.grpo.topP = o.topP;
  if (o.unfusedLoss) c.grpo.fusedLoss = false;
  if (o.zeroAdvantages) c.grpo.zeroAdvantages = true;
  if (o.evalPrompts !== undefined) c.evalPrompts = o.evalPrompts;
  if (o.evalEvery !== undefined) c.evalEvery = o.evalEvery;
  if (o.checkpointEvery !== undefined) c.checkpointEvery = o.checkpointEvery;
  return c;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
/** The largest loss-phase peak of the run and the largest logits size, from the GRPO metrics. */
function lossPeak(ms: Record<string, unknown>[]): { extra: number; logits: number } | null {
  const g = ms.filter((m) => m.phase === 'grpo' && typeof m.lossExtraBytes === 'number');
  if (!g.length) return null;
  return { extra: Math.max(...g.map((m) => m.lossExtraBytes as number)), logits: Math.max(...g.map((m) => m.logitsBytes as number)) };
}
const mib = (b: number | null) => (b === null ? 'n/a' : `${(b / 2 ** 20).toFixed(1)} MiB`);

export async function trainCommand(o: TrainCliOptions): Promise<number> {
  if (o.throughput) return throughputCommand(o);
  const outDir = o.out ?? join('runs', `train-${o.task}${o.fp8 ? '-fp8' : ''}`);
  const config = configFromFlags(o);
  if (o.resume) {
    const saved = readCheckpoint(outDir);
    if (!saved) throw new Error(`--resume: no checkpoint.json in ${outDir}`);
    if (!o.json) console.error(`hotpaths train: resuming ${outDir} at ${saved.state.phase} step ${saved.state.step} with its saved config${o.steps !== undefined ? ` (GRPO steps now ${o.steps})` : ''}`);
  }
  const { backend, note } = await chooseTrainBackend(o.backend);
  if (note && !o.json) console.error(`hotpaths train: ${note}`);

  const tty = process.stderr.isTTY && !o.json;
  let bar: cliProgress.SingleBar | undefined;
  let barPhase = '';
  const newBar = (phase: string, total: number, start: number, format: string) => {
    bar?.stop();
    barPhase = phase;
    if (!tty) return;
    bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true, etaBuffer: 20 }, cliProgress.Presets.shades_classic);
    bar.start(total, start, { loss: '—', reward: '—', acc: '—', kl: '—', clip: '—', tps: '—' });
  };
  const log = (line: string) => {
    if (o.json) return;
    if (bar) bar.stop(), (bar = undefined), (barPhase = '');
    console.error(line);
  };
  const onEvent = (e: RunEvent) => {
    if (e.kind === 'start') {
      const t = e.trainer;
      log(`hotpaths train: ${t.config.task} on ${backend.name} (${backend.deviceName}); ${t.model.parameterCount.toLocaleString('en')} parameters${t.config.fp8 ? ', FP8 linear layers' : ''}; output in ${outDir}`);
    } else if (e.kind === 'sft') {
      if (barPhase !== 'sft') newBar('sft', config.sft.steps, e.m.step - 1, 'warm start {bar} {value}/{total} | loss {loss} | ETA {eta_formatted}');
      bar?.update(e.m.step, { loss: e.m.loss.toFixed(3) });
      if (!tty && !o.json && (e.m.step % 25 === 0 || e.m.step === config.sft.steps)) console.error(`warm start ${e.m.step}/${config.sft.steps}: loss ${e.m.loss.toFixed(3)}`);
    } else if (e.kind === 'grpo') {
      const m = e.m;
      const total = Math.max(config.grpo.steps, m.step);
      if (barPhase !== 'grpo') newBar('grpo', total, m.step - 1, 'GRPO {bar} {value}/{total} | reward {reward} | acc {acc} | KL {kl} | clip {clip} | {tps} tok/s | ETA {eta_formatted}');
      const vals = { reward: m.reward.toFixed(3), acc: pct(m.accuracy), kl: m.kl.toFixed(4), clip: m.clipFraction.toFixed(3), tps: (m.tokens / m.seconds).toFixed(0) };
      bar?.update(m.step, vals);
      if (!tty && !o.json && (m.step % 10 === 0 || m.step === total)) console.error(`GRPO ${m.step}/${total}: reward ${vals.reward} acc ${vals.acc} KL ${vals.kl} clip ${vals.clip} ${vals.tps} tok/s`);
    } else if (e.kind === 'eval') {
      log(`held-out accuracy (${e.label}): ${pct(e.r.accuracy)} (format ${pct(e.r.format)}, ${e.r.n} prompts, greedy)`);
    }
  };

  const r = await runTraining({ config, backend, outDir, resume: !!o.resume, ...(o.resume && o.steps !== undefined ? { resumeSteps: o.steps } : {}), onEvent });
  bar?.stop();
  const summary = {
    task: r.config.task,
    backend: backend.name,
    fp8: r.config.fp8,
    fusedLoss: r.config.grpo.fusedLoss,
    heldoutBefore: r.before?.accuracy ?? null,
    heldoutAfter: r.after?.accuracy ?? null,
    formatBefore: r.before?.format ?? null,
    formatAfter: r.after?.format ?? null,
    seconds: r.seconds,
    peakBytes: r.peakBytes,
    lossPeak: lossPeak(r.metrics),
    report: r.reportPath,
    metrics: join(outDir, 'metrics.jsonl'),
  };
  if (o.json) {
    console.log(JSON.stringify(summary));
  } else {
    console.log(`held-out accuracy: ${r.before ? pct(r.before.accuracy) : 'n/a'} after the warm start -> ${r.after ? pct(r.after.accuracy) : 'n/a'} after GRPO` +
      (r.before && r.after ? ` (${r.after.accuracy >= r.before.accuracy ? '+' : ''}${(100 * (r.after.accuracy - r.before.accuracy)).toFixed(1)} points)` : ''));
    console.log(`time: ${(r.seconds / 60).toFixed(1)} min; peak tensor memory: warm start ${mib(r.peakBytes.sft)}, GRPO ${mib(r.peakBytes.grpo)} (${r.config.grpo.fusedLoss ? 'fused' : 'unfused'} loss${r.config.fp8 ? ', FP8' : ''})`);
    const lp = lossPeak(r.metrics);
    if (lp) console.log(`GRPO loss: at most ${kib(lp.extra)} above the activations (${r.config.grpo.fusedLoss ? 'grpo.fusedLossFromHidden' : 'full logits'}); the f32 logits [N, V] alone are ${kib(lp.logits)}`);
    console.log(`metrics: ${summary.metrics}${r.reportPath ? `; report: ${r.reportPath}` : ''}`);
  }
  return 0;
}

/** `hotpaths train --throughput`: the model's training tokens/s on a fixed batch (no task, no sampling). */
async function throughputCommand(o: TrainCliOptions): Promise<number> {
  const c = configFromFlags(o);
  const B = o.batch ?? 128;
  const T = o.seq ?? 48;
  const model = { ...c.model, maxSeq: Math.max(c.model.maxSeq, T) };
  const { backend, note } = await chooseTrainBackend(o.backend);
  if (note && !o.json) console.error(`hotpaths train: ${note}`);
  const steps = o.steps ?? 10;
  const r = await measureThroughput(backend, { model, B, T, steps, fp8: c.fp8, lr: c.sft.lr, seed: c.seed, adam: c.adam, clipNorm: c.clipNorm });
  const out = {
    backend: backend.name, device: backend.deviceName, fp8: c.fp8, B, T, parameters: r.parameters,
    tokensPerSec: r.tokensPerSec, msPerStep: r.msPerStep, peakBytes: r.peakBytes,
    // what bench/peers/torch_train.py reads on stdin to run the same model and step in PyTorch
    peerInput: { model, B, T, steps, lr: c.sft.lr, clipNorm: c.clipNorm, weightDecay: c.adam.weightDecay, seed: c.seed },
  };
  if (o.json) console.log(JSON.stringify(out));
  else {
    console.log(`training throughput on ${backend.name} (${backend.deviceName}), ${r.parameters.toLocaleString('en')} parameters${c.fp8 ? ', FP8 linear layers' : ''}, batch ${B} x ${T} tokens:`);
    console.log(`  ${r.tokensPerSec.toFixed(0)} tokens/s (${r.msPerStep.toFixed(1)} ms per step, median of ${steps}); peak tensor memory ${mib(r.peakBytes)}`);
    console.log(`  PyTorch eager, same model and batch: hotpaths train --throughput --json | jq .peerInput | python3 bench/peers/torch_train.py`);
  }
  return 0;
}
