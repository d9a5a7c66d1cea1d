// One process of bench/qwen2.js: loads the Qwen2 directory argv[2], times `argv[4]` CRaFT
// training steps (Trainer.step: model call, fused surgery + AdamW, dual update) at batch
// argv[3] and prints JSON with the load time, the seconds per step and the process's
// resident-set high-water mark (its own process, so the writer of the directory does not count).
import { Trainer } from '../dist/index.js';
import { Qwen2Policy } from '../dist/model/qwen2/index.js';
import { FixedBatchSource, fixedBatch, midTrainingB, policyOptions } from './qwen2-shapes.js';

const [dir, batchText, stepsText] = process.argv.slice(2);
const t0 = performance.now();
const policy = await Qwen2Policy.fromHfDirectory(dir, policyOptions());
const loadS = (performance.now() - t0) / 1e3;
const rssAfterLoad = process.resourceUsage().maxRSS * 1024;
midTrainingB(policy);
const trainer = new Trainer(new FixedBatchSource(policy, fixedBatch(policy, Number(batchText))), {
  steps: 1e6, mode: 'craft', lambda: 0.05, lambdaLr: 0.01, retentionBudget: 1e-3, lr: 1e-4, warmup: 0, log: () => {},
});
const times = [];
for (let i = 0; i < Number(stepsText); i++) {
  const t = performance.now();
  await trainer.step();
  times.push((performance.now() - t) / 1e3);
}
console.log(JSON.stringify({ loadS, stepS: times, rssAfterLoad, maxRss: process.resourceUsage().maxRSS * 1024, trainable: policy.params.numElements }));
