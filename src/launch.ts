// `hotpaths launch --nproc N <script> [args…]`: one Node process per rank (one GPU each), for
// expert parallelism over NCCL (src/native/nccl.ts). Each rank gets HOTPATHS_RANK,
// HOTPATHS_WORLD_SIZE, HOTPATHS_LOCAL_RANK (the cuda backend opens that device) and
// HOTPATHS_NCCL_ID_FILE, a fresh file in a private temporary folder through which rank 0 hands its
// NCCL unique id to the others (they give up after --id-timeout seconds). Every line a rank prints
// comes out prefixed with "[rank] ". When one rank fails (non-zero exit or a signal), the others are
// stopped (SIGTERM, then SIGKILL after a grace period) and launch exits non-zero: a dead rank never
// leaves the rest hanging in a collective.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { HotpathsError } from './errors.js';

export interface LaunchOptions {
  /** Processes (ranks) to start. */
  nproc: number;
  /** The script each rank runs with this Node (`node script args…`). */
  script: string;
  args?: readonly string[];
  /** Seconds a rank waits for rank 0's NCCL id (HOTPATHS_NCCL_ID_TIMEOUT_S). Default 120. */
  idTimeoutS?: number;
  /** Kill every rank and fail after this many seconds; 0 = no limit (default). */
  timeoutS?: number;
  /** Seconds between SIGTERM and SIGKILL when stopping the ranks. Default 5. */
  graceS?: number;
  /** Where prefixed lines go (default: this process's stdout and stderr). */
  out?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Extra environment for every rank. */
  env?: Record<string, string>;
}

/** Runs the ranks to the end; resolves to launch's exit code (0 when every rank exited 0). */
export async function launch(opts: LaunchOptions): Promise<number> {
  const n = opts.nproc;
  if (!Number.isInteger(n) || n < 1) throw new HotpathsError('E_ARG', `launch: --nproc must be a positive integer, got ${n}`);
  const graceMs = (opts.graceS ?? 5) * 1000;
  const out = opts.out ?? ((line, stream) => (stream === 'stdout' ? process.stdout : process.stderr).write(line + '\n'));
  const dir = mkdtempSync(join(tmpdir(), 'hotpaths-launch-'));
  const script = resolve(opts.script);
  const children: ChildProcess[] = [];
  let failure: { rank: number; code: number; why: string } | undefined;
  let killTimer: NodeJS.Timeout | undefined;

  const stopAll = (why: string) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    if (!killTimer) {
      killTimer = setTimeout(() => {
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }, graceMs);
      killTimer.unref();
    }
    out(`[launch] ${why}; stopping the other ranks`, 'stderr');
  };

  const exits: Promise<void>[] = [];
  for (let rank = 0; rank < n; rank++) {
    const child = spawn(process.execPath, [script, ...(opts.args ?? [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...opts.env,
        HOTPATHS_RANK: String(rank),
        HOTPATHS_WORLD_SIZE: String(n),
        HOTPATHS_LOCAL_RANK: String(rank),
        HOTPATHS_NCCL_ID_FILE: join(dir, 'nccl-id'),
        HOTPATHS_NCCL_ID_TIMEOUT_S: String(opts.idTimeoutS ?? 120),
      },
    });
    children.push(child);
    for (const [stream, name] of [[child.stdout!, 'stdout'], [child.stderr!, 'stderr']] as const) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => out(`[${rank}] ${line}`, name));
    }
    exits.push(
      new Promise<void>((done) => {
        // 'close' comes after the process exited and its output streams ended (no line is lost)
        child.on('error', (e) => {
          if (!failure) {
            failure = { rank, code: 1, why: `rank ${rank} could not start: ${e.message}` };
            stopAll(failure.why);
          }
          done();
        });
        child.on('close', (code, signal) => {
          if ((code !== 0 || signal) && !failure) {
            failure = { rank, code: code && code > 0 ? code : 1, why: `rank ${rank} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}` };
            stopAll(failure.why);
          }
          done();
        });
      }),
    );
  }

  const onSignal = (sig: NodeJS.Signals) => {
    if (!failure) failure = { rank: -1, code: 130, why: `launch got ${sig}` };
    stopAll(`launch got ${sig}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let limit: NodeJS.Timeout | undefined;
  if (opts.timeoutS && opts.timeoutS > 0) {
    limit = setTimeout(() => {
      if (!failure) failure = { rank: -1, code: 124, why: `the ranks ran past --timeout ${opts.timeoutS} s` };
      stopAll(failure.why);
    }, opts.timeoutS * 1000);
  }
  try {
    await Promise.all(exits);
  } finally {
    if (limit) clearTimeout(limit);
    if (killTimer) clearTimeout(killTimer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    rmSync(dir, { recursive: true, force: true });
  }
  if (failure) {
    out(`[launch] failed: ${failure.why}`, 'stderr');
    return failure.code;
  }
  return 0;
}
