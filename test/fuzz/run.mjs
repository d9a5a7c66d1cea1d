#!/usr/bin/env node
// The fuzz driver: runs each target in a child process (child.mjs) and watches it, so a
// native crash, an abort or a hang is caught and reported with the seed and case that
// caused it. A case that makes no progress for `caseTimeoutMs` is a hang.
//
// As a library: runFuzz({ target, seed, runs }) (test/fuzz.test.mjs: fixed seeds, bounded).
// As a command (npm run fuzz): random seeds over every target, round robin, until the time
// is up; prints cases per second per target and, for any failure, the command replaying it.
//   npm run fuzz -- [--minutes M (or FUZZ_MINUTES; default 5)] [--target a,b] [--runs N per child]
//                   [--seed S --path P (replay one case)] [--list]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));

/**
 * Runs `runs` cases of `target` from `seed` (or one case: `path`; or the regression files:
 * `files`) in a child. Resolves { ok, kind: 'ok' | 'failure' | 'crash' | 'hang' | 'error', report, detail, replay }.
 */
export function runFuzz({ target, seed = 1, runs = 100, path, files = false, caseTimeoutMs = 20_000, setupTimeoutMs = 120_000, env = {} }) {
  const tmp = mkdtempSync(join(tmpdir(), `craftgrad-fuzz-${target}-`));
  const progress = join(tmp, 'progress');
  const args = JSON.stringify({ target, seed, runs, path, files, work: join(tmp, 'work'), progress });
  const replay = files ? `node test/fuzz/run.mjs --target ${target} --files` : `node test/fuzz/run.mjs --target ${target} --seed ${seed}${path !== undefined ? ` --path ${path}` : ''} --runs ${runs}`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD, args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-20_000)));
    const readProgress = () => { try { return readFileSync(progress, 'utf8').trim(); } catch { return ''; } };
    let last = '', since = Date.now(), hung;
    const timer = setInterval(() => {
      const now = readProgress();
      if (now !== last) { last = now; since = Date.now(); return; }
      const limit = now === '' ? setupTimeoutMs : caseTimeoutMs;
      if (Date.now() - since > limit) { hung = now; child.kill('SIGKILL'); }
    }, 100);
    child.on('close', (code, signal) => {
      clearInterval(timer);
      const at = readProgress();
      rmSync(tmp, { recursive: true, force: true });
      // The case index counts from the replayed path when one was given.
      const caseRef = /^\d+$/.test(at) ? { seed, path: path !== undefined ? String(path) : at } : { at };
      const caseReplay = caseRef.path !== undefined ? `node test/fuzz/run.mjs --target ${target} --seed ${seed} --path ${caseRef.path}` : replay;
      if (hung !== undefined) {
        return resolve({ ok: false, kind: 'hang', detail: `no progress for ${caseTimeoutMs} ms in case ${JSON.stringify(caseRef)}`, ...caseRef, replay: caseReplay, stderr: err });
      }
      if (signal !== null || code !== 0) {
        return resolve({ ok: false, kind: signal ? 'crash' : 'error', detail: `child ${signal ? `killed by ${signal}` : `exited with ${code}`} in case ${JSON.stringify(caseRef)}`, ...caseRef, replay: caseReplay, stderr: err });
      }
      let report;
      try { report = JSON.parse(out.trim().split('\n').pop()); } catch { return resolve({ ok: false, kind: 'error', detail: `no report:\n${out}\n${err}`, replay }); }
      if (report.failure) {
        const f = report.failure;
        const again = f.path !== undefined ? `node test/fuzz/run.mjs --target ${target} --seed ${f.seed} --path ${f.path}` : replay;
        return resolve({ ok: false, kind: 'failure', report, detail: f.error, replay: again });
      }
      resolve({ ok: true, kind: 'ok', report, replay });
    });
  });
}

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'`);
    const key = a.slice(2);
    if (key === 'files' || key === 'list') o[key] = true;
    else o[key] = argv[++i];
  }
  return o;
}

async function main() {
  const { targets } = await import('./targets.mjs');
  const o = parseArgs(process.argv.slice(2));
  if (o.list) {
    for (const t of targets) console.log(`${t.name.padEnd(22)} ${t.covers}`);
    return;
  }
  const names = o.target ? o.target.split(',') : targets.map((t) => t.name);
  const runs = Number(o.runs ?? 300);
  if (o.seed !== undefined || o.files) {
    // Replay: one child per target, the given seed (and path).
    let bad = 0;
    for (const target of names) {
      const r = await runFuzz({ target, seed: Number(o.seed ?? 1), runs: o.path !== undefined ? 1 : runs, path: o.path, files: o.files });
      console.log(`${target}: ${r.kind}${r.report ? ` (${r.report.cases} cases, ${r.report.casesPerSecond.toFixed(1)}/s)` : ''}${r.ok ? '' : `\n  ${r.detail}\n  counterexample: ${r.report?.failure?.counterexample ?? ''}\n  input: ${r.report?.failure?.input?.base64 ?? ''}\n  replay: ${r.replay}`}`);
      if (!r.ok) { bad++; if (r.stderr) console.log(r.stderr.slice(-3000)); }
    }
    process.exitCode = bad ? 1 : 0;
    return;
  }
  const minutes = Number(o.minutes ?? process.env.FUZZ_MINUTES ?? 5);
  const end = Date.now() + minutes * 60_000;
  const stats = new Map(names.map((n) => [n, { cases: 0, seconds: 0, children: 0, peakRssMiB: 0 }]));
  const failures = [];
  console.log(`fuzzing ${names.length} targets for ${minutes} min, ${runs} cases per child, random seeds`);
  for (let round = 0; Date.now() < end; round++) {
    for (const target of names) {
      if (Date.now() >= end) break;
      const seed = (Math.random() * 2 ** 31) | 0;
      const r = await runFuzz({ target, seed, runs });
      const s = stats.get(target);
      s.children++;
      if (r.report) { s.cases += r.report.cases; s.seconds += r.report.seconds; s.peakRssMiB = Math.max(s.peakRssMiB, r.report.peakRssMiB); }
      if (!r.ok) {
        failures.push({ target, seed, ...r });
        console.log(`FAIL ${target} seed ${seed}: ${r.kind}: ${r.detail}\n  replay: ${r.replay}`);
        if (r.report?.failure?.input?.base64) console.log(`  input (base64): ${r.report.failure.input.base64.slice(0, 4000)}`);
      }
    }
  }
  console.log('\ntarget                  cases   cases/s  peak RSS MiB');
  for (const [n, s] of stats) console.log(`${n.padEnd(22)} ${String(s.cases).padStart(7)} ${(s.cases / (s.seconds || 1)).toFixed(1).padStart(9)} ${s.peakRssMiB.toFixed(0).padStart(12)}`);
  console.log(failures.length ? `\n${failures.length} failure(s); replay each with the command above` : '\nno failures');
  process.exitCode = failures.length ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
