// A VLA-Adapter policy on random in-memory weights (no directory): VlaModelParts whose frozen
// groups are sized by binding.vlaTensors, for the tests that need the model's arithmetic but
// not its files (determinism across threads and ISAs, the CUDA emulator against the CPU).
import { binding } from '../../dist/native.js';
import { VlaPolicy } from '../../dist/model/vla/vla-policy.js';
import { randn, rng } from './random.mjs';

/** Tiny shapes: DINOv2-like tower (registers, LayerScale) and SigLIP-like tower, 28 px, D=64. */
export function tinyVlaParts({ seed = 1, image = 28, hidden = 64, layers = 3, queries = 4 } = {}) {
  const towers = [
    { embedDim: 32, depth: 3, numHeads: 4, mlpHidden: 64, patchSize: 14, imageSize: image, classToken: 1, regTokens: 4, layerScale: true, layerNormEps: 1e-6 },
    { embedDim: 48, depth: 3, numHeads: 4, mlpHidden: 80, patchSize: 14, imageSize: image, classToken: 0, regTokens: 0, layerScale: false, layerNormEps: 1e-6 },
  ];
  const llm = { hiddenSize: hidden, numLayers: layers, numHeads: 4, numKvHeads: 2, intermediateSize: 96, vocabSize: 64, rmsNormEps: 1e-6, ropeTheta: 1e6 };
  const probe = binding.vlaTensors({
    towers, views: 2, projectorHidden: 320, ...llm, inputIds: 8, queries, rank: 2, alpha: 4, headBlocks: layers, chunk: 8, actionDims: 7,
    proprioDim: 8, bridgeLayer: 2, bridgeSpan: 'vision', pooling: 'mean', anchorType: 'concat',
  });
  const rand = rng(seed);
  // Norm-like groups would want 1s; random N(0, 0.05) plus 1 on every value keeps signals O(1)
  // through LayerNorm/RMSNorm weights and is harmless for the products (it only shifts them).
  const frozen = probe.frozen.map((g) => {
    const v = randn(g.shape.reduce((a, b) => a * b, 1), rand, 0.05);
    return v;
  });
  return { dir: '(random)', towers, projectorHidden: 320, llm, frozen, initial: {}, queries };
}

/** A policy on tinyVlaParts, its random LoRA B (so every path carries gradient) and a batch. */
export function tinyVlaPolicy({ seed = 1, batch = 2, device = 'cpu', ...opts } = {}) {
  const parts = tinyVlaParts({ seed });
  const policy = VlaPolicy.create(parts, { rank: 2, inputIds: 8, seed, device, ...opts });
  const rand = rng(seed + 100);
  const flat = policy.params.toFlat();
  for (let i = 0; i < flat.length; i++) if (flat[i] === 0) flat[i] = 0.05 * (rand() - 0.5);
  policy.params.set(flat);
  const c = policy.config, H = c.towers[0].imageSize;
  const pixels = randn(batch * c.views * 6 * H * H, rand, 1);
  const inputIds = Int32Array.from({ length: batch * c.inputIds }, () => Math.floor(rand() * c.vocabSize));
  const proprio = randn(batch * c.proprioDim, rand, 0.5);
  const actions = Float32Array.from({ length: batch * c.chunk * c.actionDims }, () => 2 * rand() - 1);
  const noise = policy.headNoise('train:0:0');
  return { policy, batch: { pixels, inputIds, proprio, actions, noise, size: batch } };
}
