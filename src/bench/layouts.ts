// Tensor-size layouts shared by the benchmarks.

/**
 * VLA-adapter-like: a 24-layer Qwen2.5-0.5B-shaped backbone (hidden 896, intermediate
 * 4864, 14 query heads and 2 KV heads of 64, so k/v project to 128) with LoRA rank 64 on
 * q, k, v, o, gate, up and down; per layer, like VLA-Adapter's policy, its bridge
 * attention projections (4 × 896×896) and two 896-wide norms; and a two-layer 896-wide
 * action head. 484 tensors, about 114 M elements, sizes from 896 to 802,816.
 */
export function vlaAdapterLayout(): number[] {
  const hidden = 896, inter = 4864, kv = 128, rank = 64, layers = 24;
  const sizes: number[] = [];
  const lora = (inDim: number, outDim: number) => sizes.push(rank * inDim, outDim * rank);
  for (let l = 0; l < layers; ++l) {
    lora(hidden, hidden); // q
    lora(hidden, kv); // k
    lora(hidden, kv); // v
    lora(hidden, hidden); // o
    lora(hidden, inter); // gate
    lora(hidden, inter); // up
    lora(inter, hidden); // down
    for (let p = 0; p < 4; ++p) sizes.push(hidden * hidden); // bridge attention q, k, v, o
    sizes.push(hidden, hidden); // norms
  }
  sizes.push(hidden * hidden, hidden, hidden * hidden, hidden); // action head fc1, fc2 (+ biases)
  return sizes;
}

/** Many small tensors: `count` tensors of 1 to 4,096 elements (seeded, reproducible). */
export function manySmallLayout(count = 10000, seed = 7): number[] {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  return Array.from({ length: count }, () => 1 + Math.floor(next() * 4096));
}
