// VLA-Adapter's native step (binding.vlaStep, CPU) against the independent float64 PyTorch
// composition of the upstream equations (test/helpers/vla_reference.py) on tiny directories
// that torch itself wrote (make_tiny_vla.py): both losses and every gradient tensor (each
// tower's LoRA, the projector's, the decoder's, the queries, the proprio projector, the
// head) to 1e-4 relative, under CRaFT and the baseline, with the ablation options. Skipped,
// with the reason, when no python3 has torch (.ci/run installs Debian's python3-torch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { binding } from '../dist/native.js';
import { relErr } from './helpers/close.mjs';
import { findTorchPython } from './helpers/torch-python.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { makeTinyVla, packBatch, packFrozen, packTrainable, runReference, vlaConfigOf } from './helpers/vla-setup.mjs';

const py = findTorchPython();
const skip = py.reason ? `${py.reason}: the float64 reference runs in torch` : false;
const TOL = 1e-4;

const set = (a) => new binding.TensorSet({ device: 'cpu', sizes: [a.length], data: a });
const f64 = (t) => (t.dtype === 'F64' ? t.data : Float64Array.from(t.data));

/** Runs vlaStep and the reference on one configuration; compares losses and every gradient. */
function compare(t, dir, over, refOptions, mode = 'craft') {
  const config = vlaConfigOf(dir, over);
  const { tensors, params, anchor } = packTrainable(dir, config);
  const frozen = packFrozen(dir, config);
  const b = packBatch(dir, config);
  const n = params.length;
  const gAct = new Float32Array(n), gRet = new Float32Array(n);
  const r = binding.vlaStep({
    config, mode, params: set(params), anchor: set(anchor), gAct: set(gAct), gRet: mode === 'craft' ? set(gRet) : null, frozen,
    pixels: b.pixels, inputIds: b.inputIds, proprio: config.proprioDim > 0 ? b.proprio : null, actions: b.actions,
    noise: refOptions.head_noise === 'batch' ? b.noise : null, batch: b.batch, accumulate: false, scale: 1,
  });
  const ref = runReference(py.python, dir, { ...refOptions, mode }, join(tempDir(t, 'vla-ref-'), 'out.safetensors'));
  const worst = [];
  const near = (a, e, what) => {
    const err = relErr(a, e);
    worst.push([err, what]);
    assert.ok(err <= TOL, `${what}: relative error ${err.toExponential(2)} > ${TOL}`);
  };
  near([r.actionLoss], f64(ref.action_loss), 'action loss');
  if (mode === 'craft') near([r.retentionLoss], f64(ref.retention_loss), 'retention loss');
  let o = 0, checked = 0;
  for (const d of tensors.trainable) {
    const size = d.shape.reduce((x, y) => x * y, 1);
    for (const [g, key] of mode === 'craft' ? [[gAct, 'action_grad'], [gRet, 'retention_grad']] : [[gAct, 'action_grad']]) {
      const e = ref[`${key}/${d.name}`];
      assert.ok(e, `the reference has no ${key}/${d.name}`);
      const mine = g.subarray(o, o + size), want = f64(e);
      // A gradient the loss cannot reach is exactly zero on both sides.
      if (want.every((v) => v === 0)) assert.ok(mine.every((v) => v === 0), `${key}/${d.name} should be exactly 0`);
      else near(mine, want, `${key}/${d.name}`);
      checked++;
    }
    o += size;
  }
  worst.sort((a, b2) => b2[0] - a[0]);
  t.diagnostic(`${checked} gradient tensors; worst: ${worst.slice(0, 3).map(([e, w]) => `${w} ${e.toExponential(2)}`).join(', ')}`);
  return { config, r };
}

test('the CRaFT step matches the float64 reference: both losses, every gradient kind', { skip }, (t) => {
  const dir = makeTinyVla(py.python, tempDir(t, 'vla-tiny-'));
  compare(t, dir, {}, { head_noise: 'batch', views: 2, span: 'vision', pooling: 'mean', anchor: 'concat' });
});

test('the baseline step matches the reference (action loss and gradient only)', { skip }, (t) => {
  const dir = makeTinyVla(py.python, tempDir(t, 'vla-tiny-'), { seed: 5 });
  compare(t, dir, {}, { head_noise: 'batch', views: 2 }, 'baseline');
});

test('ablations match the reference: max pooling over vision+prompt, raw_only at layer 1, aq_only, no noise', { skip }, (t) => {
  const dir = makeTinyVla(py.python, tempDir(t, 'vla-tiny-'), { seed: 9 });
  compare(t, dir, { pooling: 'max', bridgeSpan: 'vision+prompt' }, { head_noise: 'batch', pooling: 'max', span: 'vision+prompt' });
  compare(t, dir, { anchorType: 'raw_only', bridgeLayer: 1 }, { head_noise: null, anchor: 'raw_only', bridge_layer: 1 });
  compare(t, dir, { anchorType: 'aq_only', bridgeLayer: 3 }, { head_noise: 'batch', anchor: 'aq_only', bridge_layer: 3 });
});

// The real widths (issue #27's tiny models): DINOv2 ViT-L and SigLIP so400m block widths, the
// Qwen2.5-0.5B decoder width (896, 14/2 heads, MLP 4864) and so the released head's dimensions
// (hidden 896, 8 heads of 112, fc1 6272 → 896), at 28 px and one block/layer of each; bf16
// files as released checkpoints are stored.
test('at the real widths (towers 1024/1152, decoder and head 896, bf16 files) the step matches the reference', { skip }, (t) => {
  const spec = {
    towers: [{ embed_dim: 1024, depth: 2, num_heads: 16, mlp_hidden: 4096 }, { embed_dim: 1152, depth: 2, num_heads: 16, mlp_hidden: 4304 }],
    llm: { hidden: 896, layers: 1, heads: 14, kv_heads: 2, intermediate: 4864, vocab: 64 },
    batch: { n: 1, views: 2, prompt: 3 },
  };
  const dir = makeTinyVla(py.python, tempDir(t, 'vla-wide-'), { seed: 13, spec, bf16: true });
  compare(t, dir, {}, { head_noise: 'batch', views: 2 });
});
