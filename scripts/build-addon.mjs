#!/usr/bin/env node
// Builds the native addon build/Release/hotpaths.node with cmake-js. `npm install` runs it; so does
// `npm run build:addon` (with --strict).
//
// The CPU part is always built; the CUDA part when CMake finds nvcc and HOTPATHS_NO_CUDA is not set.
// If a build with CUDA fails, it retries once without CUDA. Afterwards it loads the addon in a child
// process to check it, and writes build/addon-status.json = { ok, cuda, reason?, log? } for the
// loader in src/native/.
//
// Without --strict a failed build prints one message and exits 0: the package still works through
// its reference and WebGPU backends. With --strict it exits 1.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');
const buildDir = path.join(root, 'build');
const statusPath = path.join(buildDir, 'addon-status.json');
const addonPath = path.join(buildDir, 'Release', 'hotpaths.node');
const LOG_TAIL_CHARS = 6000;
const started = Date.now();

function envFlag(env, name) {
  const v = env[name];
  return v !== undefined && v !== '' && v !== '0';
}

/** The full path of an executable found on PATH, or null. */
function findOnPath(name) {
  const exts = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE').split(';') : [''];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const file = path.join(dir, name + ext);
      try {
        fs.accessSync(file, fs.constants.X_OK);
        if (fs.statSync(file).isFile()) return file;
      } catch {
        // not here
      }
    }
  }
  return null;
}

function writeStatus(status) {
  fs.mkdirSync(buildDir, { recursive: true });
  const tmp = `${statusPath}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(status, null, 2) + '\n');
  fs.renameSync(tmp, statusPath);
}

function finish(status) {
  writeStatus(status);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (status.ok) {
    const cuda = status.cuda ? 'with CUDA' : `without CUDA (${status.reason})`;
    console.log(`hotpaths: native addon built ${cuda} in ${seconds} s -> ${path.relative(root, addonPath)}`);
    process.exit(0);
  }
  console.error(
    `hotpaths: native addon not built (${status.reason}); the reference and webgpu backends still work. ` +
      'Install cmake and g++ then run `npm run build:addon`.',
  );
  process.exit(strict ? 1 : 0);
}

/** The most telling line of a failed build's output. */
function reasonFromLog(log, code) {
  const lines = log.split(/\r?\n/).map((l) => l.trim());
  for (let i = 0; i < lines.length; i++) {
    if (/^CMake Error/.test(lines[i])) {
      const next = lines.slice(i + 1).find((l) => l !== '');
      const what = next && !/^CMake Error/.test(next) ? `: ${next}` : '';
      return `CMake error${what}`.slice(0, 300);
    }
  }
  const compilerError = lines.find((l) => /(^|\s|:)(fatal )?error( [A-Z]?\d+)?:/i.test(l));
  if (compilerError) return compilerError.slice(0, 300);
  return `cmake-js exited with code ${code}`;
}

/** Runs cmake-js with the given arguments, streaming its output; resolves to { code, log }. */
function runCmakeJs(cmakeJs, args, env) {
  return new Promise((resolve) => {
    let log = '';
    const keep = (chunk) => {
      log += chunk.toString();
      if (log.length > 4 * LOG_TAIL_CHARS) log = log.slice(-2 * LOG_TAIL_CHARS);
    };
    const child = spawn(process.execPath, [cmakeJs, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      keep(chunk);
    });
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      keep(chunk);
    });
    child.on('error', (err) => resolve({ code: -1, log: log + `\n${err.message}` }));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), log }));
  });
}

/** Configure, then build. Resolves to { ok, reason?, log }. */
async function build(cmakeJs, env) {
  const parallel = String(typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
  const configure = await runCmakeJs(cmakeJs, ['configure'], env);
  if (configure.code !== 0) return { ok: false, reason: reasonFromLog(configure.log, configure.code), log: configure.log };
  const compile = await runCmakeJs(cmakeJs, ['build', '--parallel', parallel], env);
  if (compile.code !== 0) return { ok: false, reason: reasonFromLog(compile.log, compile.code), log: compile.log };
  if (!fs.existsSync(addonPath)) return { ok: false, reason: `the build did not produce ${addonPath}`, log: compile.log };
  return { ok: true, log: compile.log };
}

/** Loads the built addon in a child process; returns its buildInfo() or { error }. */
function loadAddon() {
  const script = 'const a = require(process.argv[1]); process.stdout.write(JSON.stringify(a.buildInfo()));';
  const r = spawnSync(process.execPath, ['-e', script, addonPath], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(0, 3).join(' ') };
  try {
    return JSON.parse(r.stdout);
  } catch {
    return { error: `unexpected buildInfo output: ${r.stdout.slice(0, 200)}` };
  }
}

async function main() {
  // a failed build must not leave an old addon behind: status and binary always agree
  fs.rmSync(addonPath, { force: true });
  if (!findOnPath('cmake')) finish({ ok: false, cuda: false, reason: 'cmake not found on PATH' });
  const cxx = process.env.CXX || ['c++', 'g++', 'clang++'].find((c) => findOnPath(c));
  if (!cxx) finish({ ok: false, cuda: false, reason: 'no C++ compiler found (g++ or clang++)' });

  let cmakeJs;
  try {
    cmakeJs = createRequire(path.join(root, 'package.json')).resolve('cmake-js/bin/cmake-js');
  } catch {
    finish({ ok: false, cuda: false, reason: 'the cmake-js package is missing (run npm install)' });
  }

  fs.mkdirSync(buildDir, { recursive: true });
  const env = { ...process.env };
  const noCudaAsked = envFlag(env, 'HOTPATHS_NO_CUDA');

  let result = await build(cmakeJs, env);
  let cudaFailure = null;
  if (!result.ok && !noCudaAsked) {
    cudaFailure = result.reason;
    console.error(`hotpaths: the build with CUDA failed (${cudaFailure}); retrying once without CUDA (HOTPATHS_NO_CUDA=1)`);
    // start the retry from a fresh configure
    fs.rmSync(path.join(buildDir, 'CMakeCache.txt'), { force: true });
    fs.rmSync(path.join(buildDir, 'CMakeFiles'), { recursive: true, force: true });
    result = await build(cmakeJs, { ...env, HOTPATHS_NO_CUDA: '1' });
  }
  if (!result.ok) {
    finish({ ok: false, cuda: false, reason: result.reason, log: result.log.slice(-LOG_TAIL_CHARS) });
  }

  const info = loadAddon();
  if (info.error) {
    fs.rmSync(addonPath, { force: true });
    finish({ ok: false, cuda: false, reason: `built, but the addon does not load: ${info.error}`, log: result.log.slice(-LOG_TAIL_CHARS) });
  }
  const status = { ok: true, cuda: info.cuda === true };
  if (!status.cuda) {
    if (cudaFailure) status.reason = `the CUDA part failed to build: ${cudaFailure}`;
    else if (noCudaAsked) status.reason = 'HOTPATHS_NO_CUDA is set';
    else status.reason = 'no CUDA compiler (nvcc) found';
  }
  finish(status);
}

main().catch((err) => finish({ ok: false, cuda: false, reason: `build script error: ${err?.message ?? err}` }));
