// scripts/device/summary.mjs (the table session.sh prints last) on the bf16 steps of
// `session.sh bf16` (#29): each row reads its own step's part of the shared bench.log, the
// attention marked NOT MEASURED when the build had no bf16 attention, the step-argument
// fallback and a --tiny rehearsal flagged. The log lines are the formats bench/bf16-cuda.js,
// bench/qwen2-cuda.js and bench/vla-cuda.js print (synthetic figures: nothing here is a
// measurement).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers/temp-dir.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function summary(log, steps) {
  const out = tempDir(test, 'craftgrad-summary-');
  writeFileSync(join(out, 'bench.log'), log);
  writeFileSync(join(out, 'steps.tsv'), steps.map((s) => s.join('\t')).join('\n') + '\n');
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'device', 'summary.mjs'), out, join(out, 'steps.tsv')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| step')).map((l) => [l.split(' | ')[0].slice(2), l]));
}

const kernels = (attention) => [
  '=== bf16kernels (limit 60 s): node bench/bf16-cuda.js --device cuda --record',
  '- device: cuda:0 X',
  'bf16 dense peak of this run: 700.0 TFLOP/s, 8192×8192×8192 through torch.matmul bf16 (torch 2.11.0). Every large square:',
  '| all of the above, flop-weighted (total flops / total time) | 420000 | 60% | |',
  "Target (#29) products >= 60% of the measured bf16 peak at the models' shapes: not met by 3 of 47 products (a 10%; b 20%; c 30%).",
  ...attention,
].join('\n');

test('summary: the bf16 kernels row (peak, products, attention measured or not)', () => {
  const measured = summary(kernels(['Target (#29) within 1.3× of flash (ours / flash time): met by all 4 shapes compared.']), [['bf16kernels', '0', '50']]);
  assert.match(measured.bf16kernels, /\| ok \| 50 \| bf16 peak 700\.0 TFLOP\/s \(8192×8192×8192, torch\.matmul\); step products 60% of it \(flop-weighted\); >= 60%: not met by 3 of 47 products; attention <= 1\.3× flash: met by all 4 shapes compared \|/);
  const refused = summary(kernels(["Fused bf16 attention against flash: NOT MEASURED: this build's attention ignores precision 'bf16'."]), [['bf16kernels', '3', '40']]);
  assert.match(refused.bf16kernels, /FAILED \(exit 3\).*attention <= 1\.3× flash: attention NOT MEASURED \(see bench\.log\)/);
  assert.doesNotMatch(refused.bf16kernels, /REHEARSAL/);
});

test('summary: the two bf16 step rows read their own step, and say how bf16 was asked for', () => {
  const log = [
    kernels([]),
    '=== qwen2bf16 (limit 120 s): node bench/qwen2.js --device cuda --precision bf16 --batch 8 --record',
    "- precision bf16, asked for through step-call arguments (precision: 'bf16' added to each step call by the benchmark: ...)",
    "Targets (#29): CRaFT step >= 1.5x PyTorch bf16: 1.10x (not met); peak memory <= PyTorch's: 0.80× (met).",
    '=== vlabf16 (limit 140 s): node bench/vla.js --device cuda --precision bf16 --batch 8 --steps 1 --record',
    '- REHEARSAL (--tiny): tiny widths on this device',
    "- precision: the policy's option precision: 'bf16' (bf16 frozen weights where the build has them)",
    "Targets (#29): CRaFT step >= 1.5x PyTorch bf16: 2.00x (met); peak memory <= PyTorch's: not measured.",
  ].join('\n');
  const rows = summary(log, [['bf16kernels', '0', '50'], ['qwen2bf16', '0', '90'], ['vlabf16', '124', '140']]);
  assert.match(rows.qwen2bf16, /1\.10x \(not met\); peak memory <= PyTorch's: 0\.80× \(met\)\. \[bf16 through step-call arguments: no policy option in this build\] \|$/);
  assert.doesNotMatch(rows.qwen2bf16, /REHEARSAL|2\.00x/);
  assert.match(rows.vlabf16, /\| TIMED OUT \| 140 \| REHEARSAL \(--tiny, figures mean nothing\): CRaFT step >= 1\.5x PyTorch bf16: 2\.00x \(met\)/);
  assert.doesNotMatch(rows.vlabf16, /step-call arguments/);
});
