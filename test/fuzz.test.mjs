// The bounded fuzz run of `npm test` (#30): every reader of untrusted bytes and every native
// entry point that takes bytes or shapes, with fixed seeds (deterministic), each target in a
// child process watched for crashes, hangs (a per-case time limit) and peak memory; then the
// committed regression inputs (test/fuzz/regressions/<target>/*.bin) and the fast-check
// seed/path pairs that once found a bug (regressions/replay.json). The longer run with random
// seeds is `npm run fuzz` (test/fuzz/run.mjs); docs/ARCHITECTURE.md §9 describes both.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runFuzz } from './fuzz/run.mjs';
import { targets, regressionFiles } from './fuzz/targets.mjs';

// Cases per target: a few hundred for the fast readers, fewer where a case writes a
// directory or runs a model step. About a minute on two cores in all (bench/RESULTS.md).
const RUNS = { default: 200, 'checkpoint-manifest': 100, 'checkpoint-state': 100, 'checkpoint-model': 100, 'checkpoint-base': 100, 'native-vla': 300, 'native-qwen2': 500, 'native-sets': 500, 'native-images': 500 };
const SEED = 20250630;

const explain = (r) => `${r.kind}: ${r.detail}\n  replay: ${r.replay}${r.report?.failure?.counterexample ? `\n  counterexample: ${r.report.failure.counterexample}` : ''}${r.stderr ? `\n${r.stderr.slice(-2000)}` : ''}`;

for (const t of targets) {
  const runs = RUNS[t.name] ?? RUNS.default;
  test(`fuzz ${t.name}: ${runs} cases, seed ${SEED} (${t.covers})`, async () => {
    const r = await runFuzz({ target: t.name, seed: SEED, runs });
    assert.ok(r.ok, explain(r));
    assert.equal(r.report.cases, runs);
    // Most cases are broken inputs that must be refused; some must still get through.
    assert.ok(r.report.errors > 0, 'no case was refused: the mutations do not reach the reader');
  });
  if (regressionFiles(t.name).length > 0) {
    test(`fuzz ${t.name}: the committed regression inputs`, async () => {
      const r = await runFuzz({ target: t.name, files: true });
      assert.ok(r.ok, explain(r));
      assert.equal(r.report.cases, regressionFiles(t.name).length);
    });
  }
}

test('fuzz: the seed/path cases that once found a bug (regressions/replay.json)', async () => {
  const list = JSON.parse(readFileSync(new URL('./fuzz/regressions/replay.json', import.meta.url), 'utf8'));
  for (const c of list) {
    const r = await runFuzz({ target: c.target, seed: c.seed, path: c.path, runs: 1 });
    assert.ok(r.ok, `${c.found}\n${explain(r)}`);
  }
});

test('fuzz harness: a crash, a hang, memory past the bound and a foreign TypeError are each reported with the case', async () => {
  const env = { CRAFTGRAD_FUZZ_SELF_TEST: '1' };
  const crash = await runFuzz({ target: 'self-test-crash', seed: 1, runs: 50, env });
  assert.equal(crash.kind, 'crash', explain(crash));
  assert.match(crash.replay, /--seed 1 --path \d+/);
  const hang = await runFuzz({ target: 'self-test-hang', seed: 1, runs: 50, caseTimeoutMs: 1500, env });
  assert.equal(hang.kind, 'hang', explain(hang));
  assert.match(hang.replay, /--seed 1 --path \d+/);
  const memory = await runFuzz({ target: 'self-test-memory', seed: 1, runs: 50, env });
  assert.equal(memory.kind, 'failure', explain(memory));
  assert.match(memory.detail, /memory past the bound/);
  const foreign = await runFuzz({ target: 'self-test-foreign', seed: 1, runs: 50, env });
  assert.equal(foreign.kind, 'failure', explain(foreign));
  assert.match(foreign.detail, /threw TypeError, not FormatError/);
});
