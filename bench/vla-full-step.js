// One process of bench/vla.js: the full-size VLA-Adapter (VLA_BENCH.full: DINOv2 24 blocks →
// 23 computed, SigLIP 27 → 26, 24 decoder layers, 24 head blocks, vocab 151936, 2 views at
// 224 px) on random fp32 weights in memory; times `argv[3]` CRaFT training steps (Trainer.step:
// model call, fused surgery + AdamW, dual update) at batch argv[2] and prints JSON with the
// seconds per step, the resident-set high-water mark and what the weights take (its own
// process, so nothing of the parent's counts). bench/vla.js runs it with UV_THREADPOOL_SIZE=1:
// the CPU workspace is per calling thread (native/cpu/layers_cpu.cc, thread_local), and the
// Trainer's asynchronous steps land on any of libuv's pool threads, each then keeping a
// workspace of its own (one per pool thread, 4 by default).
import { Trainer } from '../dist/index.js';
import { VlaPolicy } from '../dist/model/vla/vla-policy.js';
import { FixedBatchSource, midTrainingB } from './qwen2-shapes.js';
import { VLA_BENCH, vlaBenchParts, vlaCraftStepFlops, vlaFixedBatch, vlaOptions } from './vla-shapes.js';

const [batchText, stepsText] = process.argv.slice(2);
const rss = () => process.resourceUsage().maxRSS * 1024;
const rssAtStart = rss();
const t0 = performance.now();
const parts = vlaBenchParts(VLA_BENCH.full);
const weightBytes = parts.frozen.reduce((s, g) => s + g.byteLength, 0);
const rssAfterWeights = rss();
const policy = VlaPolicy.create(parts, vlaOptions(VLA_BENCH.full));
midTrainingB(policy);
const setupS = (performance.now() - t0) / 1e3;
const rssAfterPolicy = rss();
const trainer = new Trainer(new FixedBatchSource(policy, vlaFixedBatch(policy, Number(batchText))), {
  steps: 1e6, mode: 'craft', lambda: 0.05, lambdaLr: 0.01, retentionBudget: 1e-3, lr: 1e-4, warmup: 0, log: () => {},
});
const times = [], maxRssByStep = [];
for (let i = 0; i < Number(stepsText); i++) {
  const t = performance.now();
  await trainer.step();
  times.push((performance.now() - t) / 1e3);
  maxRssByStep.push(rss());
}
console.log(JSON.stringify({
  setupS, stepS: times, maxRssByStep, rssAtStart, rssAfterWeights, rssAfterPolicy, maxRss: rss(), weightBytes,
  flops: vlaCraftStepFlops(policy.config, Number(batchText)).total, trainable: policy.params.numElements, frozenFloats: weightBytes / 4,
  rssNow: process.memoryUsage().rss, arrayBuffers: process.memoryUsage().arrayBuffers,
}));
