// The README's Python snippet (docs/examples/forward_from_checkpoint.py, quoted verbatim)
// rebuilds the built-in model's forward from a checkpoint with numpy only: its action
// predictions give the action loss AdapterPolicy.fromCheckpoint(...).evaluate() gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdapterPolicy, encodeNpy, gatherBatch } from '../dist/index.js';
import { smallRun, smallValSplit } from './helpers/small-run.mjs';
import { tempDir } from './helpers/temp-dir.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SCRIPT = join(root, 'docs', 'examples', 'forward_from_checkpoint.py');
const MARKER = '<!-- quoted from docs/examples/forward_from_checkpoint.py (test/checkpoint-python.test.mjs checks it) -->';

test('the README quotes docs/examples/forward_from_checkpoint.py exactly', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(MARKER);
  assert.ok(at >= 0, 'README.md has the marker before the snippet');
  const block = /^```python\n([\s\S]*?)^```$/m.exec(readme.slice(at + MARKER.length));
  assert.ok(block, 'a python block follows the marker');
  assert.equal(block[1], readFileSync(SCRIPT, 'utf8'));
});

// The first interpreter with numpy: PYTHON, python3 on the PATH, then Debian's (which
// .ci/run gives python3-numpy when the PATH's python3 has none).
const PYTHONS = [...new Set([process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean))];
const python = PYTHONS.find((p) => spawnSync(p, ['-c', 'import numpy']).status === 0);

function numpyMissing() {
  return python ? undefined : `none of ${PYTHONS.join(', ')} can import numpy`;
}

const CONFIGS = [
  {},                                                                            // concat, mean pooling
  { pooling: 'max', anchor_type: 'raw_only', blocks: 3, bridge_block: 2 },
  { anchor_type: 'aq_only', blocks: 3, bridge_block: 1, alpha: 8 },
];

for (const config of CONFIGS) {
  test(`the Python forward predicts what AdapterPolicy does (${JSON.stringify(config)})`, async (t) => {
    const missing = numpyMissing();
    if (missing) {
      console.log(`# skipped: ${missing}`);
      t.skip(missing);
      return;
    }
    const dir = tempDir(t, 'craftgrad-pyforward-');
    const outcome = await smallRun(join(dir, 'run'), config);
    const model = await AdapterPolicy.fromCheckpoint(outcome.lastCheckpoint);
    const c = model.config;
    const batch = gatherBatch(smallValSplit(config), [0, 1, 2, 3, 4]);
    writeFileSync(join(dir, 'tokens.npy'), encodeNpy({ dtype: 'F32', shape: [batch.size, c.tokens, c.width], data: batch.tokens }));

    const out = execFileSync(python, [SCRIPT, outcome.lastCheckpoint, join(dir, 'tokens.npy')], { encoding: 'utf8' });
    const pred = JSON.parse(out);
    assert.equal(pred.length, batch.size);
    assert.ok(pred.every((s) => s.length === c.chunk && s.every((k) => k.length === c.actionDims)));
    const flat = pred.flat(2);
    const l1 = flat.reduce((s, p, i) => s + Math.abs(p - batch.actions[i]), 0) / flat.length;
    const want = model.evaluate(batch).actionLoss;
    assert.ok(Math.abs(l1 - want) <= 1e-5 * Math.abs(want), `python's action loss ${l1} vs AdapterPolicy's ${want}`);
    // Sharper: with Python's predictions as the targets, AdapterPolicy's L1 loss is the mean
    // difference between the two predictions, which must be float32 rounding.
    const gap = model.evaluate({ tokens: batch.tokens, actions: Float32Array.from(flat), size: batch.size }).actionLoss;
    const scale = flat.reduce((s, p) => s + Math.abs(p), 0) / flat.length;
    assert.ok(gap <= 1e-5 * scale, `predictions differ by ${gap} on average (mean |prediction| ${scale})`);
    console.log(`mean |python - AdapterPolicy| = ${gap.toExponential(2)} (mean |prediction| ${scale.toExponential(2)})`);
  });
}
