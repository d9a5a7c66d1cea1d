// The fp32 peak bench/model.js divides by: measured with the instruction set in use
// (CRAFTGRAD_CPU_ISA included), and a peak that was not measured never yields a
// percentage or a target reported as met (bench/peak-verdict.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { backendInfo } from '../dist/index.js';
import { ofPeak, peakTargetVerdict } from '../bench/peak-verdict.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const available = backendInfo().cpu.available;

/** binding.bench.fmaPeakGflops (a repository build's) and the active ISA in a child started with CRAFTGRAD_CPU_ISA=isa. */
function peakWith(isa) {
  const script = "const { binding } = await import('./dist/native.js'); const { backendInfo } = await import('./dist/index.js');" +
    'console.log(JSON.stringify({ isa: backendInfo().cpu.isa, peak: binding.bench.fmaPeakGflops(0.1) }));';
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, CRAFTGRAD_CPU_ISA: isa } });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

for (const isa of ['avx2', 'avx512']) {
  test(`the fp32 peak is measured with ${isa} code when ${isa} is in use`, (t) => {
    if (!available.includes(isa)) {
      t.skip(`this CPU or build has no ${isa} kernels (available: ${available.join(', ')})`);
      return;
    }
    const { isa: active, peak } = peakWith(isa);
    assert.equal(active, isa);
    assert.ok(Number.isFinite(peak) && peak > 0, `peak with ${isa}: ${peak} GFLOP/s`);
  });
}

test('the generic kernels have no peak probe: 0, which the bench reports as not measured', () => {
  const { isa, peak } = peakWith('generic');
  assert.equal(isa, 'generic');
  assert.equal(peak, 0);
});

test('a peak of 0 or NaN is "not measured": no percentage, no target stated as met', () => {
  const rows = [{ label: 'block forward  h·W_effᵀ', gflops: 50 }, { label: 'LoRA h·Aᵀ', gflops: 5 }];
  for (const peak of [0, NaN, Infinity, -1]) {
    const verdict = peakTargetVerdict(rows, peak);
    assert.match(verdict, /not measured/);
    assert.doesNotMatch(verdict, /\bmet by\b|Infinity%|NaN%/);
    assert.equal(ofPeak(50, peak), 'not measured');
  }
});

test('with a valid peak the verdict names the products below the target', () => {
  const rows = [{ label: 'block forward  h·W_effᵀ', gflops: 50 }, { label: 'LoRA   h·Aᵀ', gflops: 5 }];
  assert.equal(peakTargetVerdict(rows, 100), 'matrix products >= 40% of the fp32 peak: not met by LoRA h·Aᵀ.');
  assert.equal(peakTargetVerdict(rows.slice(0, 1), 100), 'matrix products >= 40% of the fp32 peak: met by every product.');
  assert.equal(ofPeak(50, 100), '50%');
});
