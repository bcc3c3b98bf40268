#!/usr/bin/env node
// hotpaths command line: `info`, `bench`, `train`, `launch`.

import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { addonStatus, loadAddon } from './native/addon.js';
import { BACKEND_NAMES, type BackendName } from './runtime/backend.js';
import { init, probeBackend, shutdown, type BackendProbe } from './runtime/index.js';
import { packageVersion } from './util/paths.js';
import { FAMILIES, formatTable, runBench, type Family } from '../bench/index.js';
import { fp8Cases } from '../bench/fp8.bench.js';
import { gemmCases } from '../bench/gemm.bench.js';
import { logprobCases } from '../bench/logprob.bench.js';
import { nnCases } from '../bench/nn.bench.js';
import { TASK_NAMES } from './train/tasks/index.js';
import { intArg, numArg, trainCommand, type TrainCliOptions } from './train/cli.js';
import { moeCases } from '../bench/moe.bench.js';

const program = new Command();
program.name('hotpaths').description('Kernels for the hot paths of LLM training, on reference, cpu, webgpu and cuda backends.').version(packageVersion());
// options after a subcommand belong to it (`launch` hands everything after the script to the script)
program.enablePositionalOptions();

program
  .command('info')
  .description('version, backends found and skipped (with reasons), devices and features, addon build flags')
  .option('--json', 'print one JSON object')
  .action(async (opts: { json?: boolean }) => {
    const addon = loadAddon();
    const build = addon ? addon.buildInfo() : undefined;
    const probes: (BackendProbe & { details?: Record<string, unknown> })[] = [];
    for (const name of [...BACKEND_NAMES].reverse()) {
      const p = await probeBackend(name);
      const details = p.ok ? (await import('./runtime/index.js').then((m) => m.getBackend(name))).details : undefined;
      probes.push({ ...p, ...(details ? { details } : {}) });
    }
    const auto = await init({ backend: 'auto', verbose: false });
    const report = {
      version: packageVersion(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      addon: build ? { built: true, ...build } : { built: false, reason: addonStatus() },
      backends: probes,
      auto: { picked: auto.name, skipped: auto.selection.skipped },
    };
    if (opts.json) {
      console.log(JSON.stringify(report, null, 2));
      return;
    }
    console.log(`hotpaths ${report.version}  (node ${report.node}, ${report.platform})`);
    console.log(build ? `addon: built — cpu ${build.simd}, ${build.threads} threads; cuda ${build.cuda ? `yes (CUDA ${build.cudaVersion}, archs ${build.cudaArchs})` : 'no'}; ${build.compiler}` : `addon: not built — ${addonStatus()}`);
    console.log('backends:');
    for (const p of probes) {
      console.log(`  ${p.name.padEnd(10)} ${p.ok ? 'ok     ' : 'skipped'} ${p.reason}`);
      if (p.details) for (const [k, v] of Object.entries(p.details)) console.log(`  ${''.padEnd(18)} ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    }
    console.log(`auto picks: ${auto.name}${auto.selection.skipped.length ? ` (skipped: ${auto.selection.skipped.map((s) => s.name).join(', ')})` : ''}`);
  });

program
  .command('bench')
  .description('run benchmarks: time, GB/s or TFLOP/s, fraction of the measured ceiling, and a peer from the same run')
  .argument('[families...]', `families to run (${FAMILIES.join(', ')}); all when none given`)
  .addOption(new Option('--backend <name>', 'backend to benchmark (default: what auto picks)').choices([...BACKEND_NAMES]))
  .option('--json', 'print one JSON record per measurement')
  .option('--quick', 'smaller shapes and fewer samples (smoke runs, software adapters)')
  .option('--remeasure', 'measure the ceilings again instead of using the cached ones')
  .action(async (families: string[], opts: { backend?: BackendName; json?: boolean; quick?: boolean; remeasure?: boolean }) => {
    for (const f of families) {
      if (!(FAMILIES as readonly string[]).includes(f)) program.error(`hotpaths bench: unknown family '${f}'; expected one of ${FAMILIES.join(', ')}`);
    }
    const backend = opts.backend ?? (await init({ backend: 'auto', verbose: !opts.json })).name;
    const chosen = (families.length ? families : [...FAMILIES]) as Family[];
    const count: Record<Family, () => number> = {
      fp8: () => fp8Cases(!!opts.quick).length,
      gemm: () => gemmCases(backend, !!opts.quick).length,
      logprob: () => logprobCases(backend, !!opts.quick).length,
      grpo: () => 1, // one shape per backend (bench/grpo.cases.ts; it needs the backend object to size it)
      nn: () => nnCases(backend, !!opts.quick).length,
      moe: () => moeCases(backend, !!opts.quick).length,
    };
    const total = chosen.reduce((n, f) => n + count[f](), 0);
    const bar = process.stderr.isTTY && !opts.json ? new cliProgress.SingleBar({ format: 'bench {bar} {value}/{total} {op}', stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
    bar?.start(total, 0, { op: '' });
    const results = await runBench({
      families: chosen,
      backend,
      quick: !!opts.quick,
      remeasure: !!opts.remeasure,
      log: (l) => (bar ? undefined : process.stderr.write(`bench: ${l}\n`)),
      onMeasurement: (m) => {
        if (opts.json) console.log(JSON.stringify(m));
        else if (bar) bar.increment(1, { op: `${m.family} ${m.op}` });
        else process.stderr.write(`bench: ${m.family} ${m.op} ${m.shape}: ${m.ms.toFixed(3)} ms\n`);
      },
    });
    bar?.stop();
    if (!opts.json) console.log(formatTable(results));
  });

program
  .command('train')
  .description('GRPO-train a small MoE transformer on a verifiable task: a short supervised warm start, then GRPO with rule-based rewards; prints held-out accuracy before and after and writes metrics, checkpoints and an HTML report')
  .addOption(new Option('--task <name>', 'task').choices([...TASK_NAMES]).default('arithmetic'))
  .addOption(new Option('--backend <name>', 'backend (default: the best one with every family the trainer needs)').choices(['auto', ...BACKEND_NAMES]).default('auto'))
  .option('--steps <n>', 'GRPO steps', intArg)
  .option('--sft-steps <n>', 'warm-start (SFT) steps', intArg)
  .option('--fp8', 'run the linear layers through FP8 block-scaled GEMM (f32 master weights)')
  .option('--out <dir>', 'output folder (metrics.jsonl, checkpoints, report.html)')
  .option('--resume', 'continue from the checkpoint in --out (same config, same RNG streams)')
  .option('--seed <n>', 'seed of every random stream', intArg)
  .option('--prompts <n>', 'prompts per GRPO step', intArg)
  .option('--group <n>', 'completions per prompt (G)', intArg)
  .option('--mu <n>', 'optimizer steps per batch of samples (μ)', intArg)
  .option('--beta <x>', 'KL weight to the warm-start model (0 skips the reference model)', numArg)
  .option('--lr <x>', 'GRPO learning rate', numArg)
  .option('--temperature <x>', 'sampling temperature', numArg)
  .option('--top-p <x>', 'nucleus sampling mass', numArg)
  .option('--unfused-loss', 'compute the GRPO loss through full [N, V] logits instead of grpo.fusedLossFromHidden (memory comparison)')
  .option('--eval-prompts <n>', 'held-out prompts for the before/after accuracy', intArg)
  .option('--eval-every <n>', 'also measure held-out accuracy every n GRPO steps', intArg)
  .option('--checkpoint-every <n>', 'checkpoint every n steps', intArg)
  .option('--zero-advantages', 'control run: advantages set to 0 (no reward signal)')
  .option('--throughput', 'measure training tokens/s of the model alone (forward, backward, AdamW on a fixed random batch) instead of training; compare with bench/peers/torch_train.py')
  .option('--batch <n>', 'sequences per step for --throughput (default 128)', intArg)
  .option('--seq <n>', 'tokens per sequence for --throughput (default 48)', intArg)
  .option('--json', 'print one JSON summary at the end instead of text')
  .action(async (opts: TrainCliOptions) => {
    process.exitCode = await trainCommand(opts);
  });

program
  .command('launch')
  .description('run <script> in N Node processes, one GPU each (HOTPATHS_RANK, HOTPATHS_WORLD_SIZE, HOTPATHS_LOCAL_RANK; rank 0 shares the NCCL id), output prefixed with [rank]; one failed rank stops the others')
  .requiredOption('--nproc <n>', 'processes (ranks) to start')
  .option('--id-timeout <seconds>', "how long ranks wait for rank 0's NCCL id", '120')
  .option('--timeout <seconds>', 'stop every rank and fail after this long (0: no limit)', '0')
  .argument('<script>', 'the script each rank runs (node <script> [args…])')
  .argument('[args...]', 'arguments for the script')
  .passThroughOptions()
  .action(async (script: string, args: string[], opts: { nproc: string; idTimeout: string; timeout: string }) => {
    const num = (v: string, name: string, min: number) => {
      const x = Number(v);
      if (!Number.isFinite(x) || x < min) program.error(`hotpaths launch: ${name} must be a number ≥ ${min}, got '${v}'`);
      return x;
    };
    const nproc = num(opts.nproc, '--nproc', 1);
    if (!Number.isInteger(nproc)) program.error(`hotpaths launch: --nproc must be an integer, got '${opts.nproc}'`);
    const { launch } = await import('./launch.js');
    process.exitCode = await launch({ nproc, script, args, idTimeoutS: num(opts.idTimeout, '--id-timeout', 1), timeoutS: num(opts.timeout, '--timeout', 0) });
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const err = e as { code?: string; message?: string };
  console.error(`hotpaths: ${err.code ? `[${err.code}] ` : ''}${err.message ?? String(e)}`);
  process.exitCode = 1;
} finally {
  await shutdown();
}
