// Thousands of random malformed calls in a child process: it may throw JS errors, but it
// must never die from a signal (a native crash) nor exit abnormally. fuzz-child.mjs calls
// the public API and every raw export with random arguments; fuzz-mutate-child.mjs corrupts
// valid model and optimizer calls one argument at a time, to get past the first checks.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./helpers/fuzz-child.mjs', import.meta.url));
const mutateChild = fileURLToPath(new URL('./helpers/fuzz-mutate-child.mjs', import.meta.url));

for (const seed of [1, 2, 3]) {
  test(`fuzz seed ${seed}: 4000 malformed calls never crash the process`, () => {
    const r = spawnSync(process.execPath, [child, String(seed), '4000'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.signal, null, `killed by ${r.signal}\n${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    const { calls, threw, ok } = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(calls, 4000);
    assert.ok(threw > 1000, `most calls are malformed and must throw (threw ${threw})`);
    assert.ok(ok > 50, `some calls are valid and must succeed (ok ${ok})`);
  });
}

for (const seed of [1, 2]) {
  test(`mutation fuzz seed ${seed}: 2000 corrupted model and optimizer calls never crash the process`, () => {
    const r = spawnSync(process.execPath, [mutateChild, String(seed), '2000'], { encoding: 'utf8', timeout: 180_000 });
    assert.equal(r.signal, null, `killed by ${r.signal}\n${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    const { calls, threw, ok } = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(calls, 2000);
    assert.ok(threw > 1000, `most corrupted calls must throw (threw ${threw})`);
    assert.ok(ok > 20, `some calls stay valid and must succeed (ok ${ok})`);
  });
}
