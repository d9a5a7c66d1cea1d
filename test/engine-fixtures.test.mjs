// Both models' CPU forward and backward against the outputs recorded in test/fixtures/engine/
// (its README.md: what is recorded, from which commit, when re-recording is allowed): every
// case's losses and gradient sets bit for bit, with 1, 2 and 3 threads and under every CPU
// instruction set the machine has (child processes with CRAFTGRAD_CPU_ISA), and a few steps of
// `craftgrad train` on both models (metrics rows, checkpoint files). A difference names the
// case, call, tensor and element where it starts, and by how much.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo, setThreads } from '../dist/index.js';
import { ALL_CASES, cleanup, compareCase, loadFixtures, runCase } from './fixtures/engine/cases.mjs';
import { CLI_RUNS, compareRun, readRun, runTrain, writeInputs } from './fixtures/engine/cli-runs.mjs';

const child = fileURLToPath(new URL('./fixtures/engine/check-child.mjs', import.meta.url));
const fixtures = loadFixtures('cpu');
const cli = JSON.parse(readFileSync(new URL('./fixtures/engine/cli.json', import.meta.url), 'utf8'));
const cpu = backendInfo().cpu;
const tmp = mkdtempSync(join(tmpdir(), 'craftgrad-engine-fixtures-'));
process.on('exit', () => { rmSync(tmp, { recursive: true, force: true }); cleanup(); });

const report = (diffs) => (diffs.length ? `${diffs.length} difference(s) from test/fixtures/engine:\n  ${diffs.join('\n  ')}` : '');

// The slow parts (child processes) start at once and run two at a time beside the in-process
// tests; each test awaits its own.
const queue = [];
let running = 0;
function limited(fn) {
  return new Promise((resolve, reject) => {
    const go = () => { running++; fn().then(resolve, reject).finally(() => { running--; queue.shift()?.(); }); };
    if (running < 2) go(); else queue.push(go);
  });
}

// A promise awaited later by its test: a failure before then is that test's, not an unhandled rejection.
function later(promise) {
  promise.catch(() => {});
  return promise;
}

function checkChild(env, threads) {
  return limited(() => new Promise((resolve, reject) => {
    execFile(process.execPath, [child, 'cpu', threads], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${JSON.stringify(env)}: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)));
    });
  }));
}

// Every instruction set other than the one this process runs, each with 1, 2 and 3 threads.
const otherIsas = cpu.available.filter((isa) => isa !== cpu.isa);
const isaRuns = new Map(otherIsas.map((isa) => [isa, later(checkChild({ CRAFTGRAD_CPU_ISA: isa }, '1,2,3'))]));

// The training runs: the recorded arguments, 2 threads (recorded with 1, generic), this machine's default ISA.
await writeInputs(join(tmp, 'in'));
const cliRuns = new Map(Object.keys(cli.runs).map((name) => [name, later(limited(() => runTrain(name, join(tmp, 'in'), join(tmp, 'out'), 2)))]));

test('the fixtures hold exactly the cases of cases.mjs and the runs of cli-runs.mjs', () => {
  assert.deepEqual([...fixtures.cases.keys()].sort(), ALL_CASES.map((c) => c.id).sort());
  assert.deepEqual(Object.keys(cli.runs).sort(), Object.keys(CLI_RUNS).sort());
  console.log(`# fixtures recorded at ${fixtures.recorded.commit} (${fixtures.recorded.date}, ${fixtures.recorded.isa}, ${fixtures.recorded.threads} thread)`);
});

for (const threads of [1, 2, 3]) {
  test(`every CPU case, bit for bit: ${threads} thread(s), ${cpu.isa}`, async () => {
    const before = backendInfo().cpu.threads;
    setThreads(threads);
    try {
      const diffs = [];
      for (const c of ALL_CASES) diffs.push(...compareCase(c.id, await runCase(c, 'cpu'), fixtures.cases.get(c.id)));
      assert.equal(backendInfo().cpu.threads, threads);
      assert.equal(diffs.length, 0, report(diffs));
    } finally {
      setThreads(before);
    }
  });
}

for (const isa of otherIsas) {
  test(`every CPU case, bit for bit: 1, 2 and 3 threads, CRAFTGRAD_CPU_ISA=${isa}`, async () => {
    const r = await isaRuns.get(isa);
    assert.equal(r.isa, isa, 'the instruction set really ran');
    assert.deepEqual(r.threads, [1, 2, 3]);
    assert.equal(r.diffs.length, 0, report(r.diffs));
  });
}

test('every instruction set the machine has was checked', () => {
  assert.deepEqual([cpu.isa, ...otherIsas].sort(), [...cpu.available].sort());
  console.log(`# instruction sets: ${cpu.available.join(', ')}`);
});

for (const name of Object.keys(cli.runs)) {
  test(`craftgrad train (${name}): metrics rows, checkpoint files and state as recorded`, async () => {
    const r = await cliRuns.get(name);
    assert.equal(r.code, 0, `craftgrad ${r.args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
    const withoutThreads = (args) => args.filter((a, i) => a !== '--threads' && args[i - 1] !== '--threads');
    const args = r.args.map((a) => a.replace(join(tmp, 'in'), '<inputs>').replace(join(tmp, 'out'), '<out>'));
    assert.deepEqual(withoutThreads(args), withoutThreads(cli.runs[name].args), 'the run\'s arguments (cli-runs.mjs) are the recorded ones, bar --threads');
    const diffs = compareRun(name, readRun(join(tmp, 'out', name)), cli.runs[name]);
    assert.equal(diffs.length, 0, report(diffs));
  });
}
