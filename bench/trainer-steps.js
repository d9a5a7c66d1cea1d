// The training step a run takes (what `craftgrad train` does per step), timed for the model
// benchmarks on either device: Trainer.step over the built-in source, with the fused
// surgery + AdamW kernel, the dual update and the metrics.
import { AdapterPolicySource, Trainer } from '../dist/index.js';
import { bestTimeAsync } from '../dist/bench/timing.js';

/** Best-of-5 seconds per Trainer.step in `mode` ('craft' or 'baseline'), over runs of `steps` steps. */
export async function secondsPerTrainerStep(model, dataset, { batchSize, steps, mode }) {
  const trainer = new Trainer(new AdapterPolicySource(model, dataset, { batchSize, seed: 0 }), {
    steps: 1e6, mode, lambda: 0.05, lambdaLr: 0.01, retentionBudget: 1e-3, lr: 1e-4, warmup: 0, log: () => {},
  });
  return (await bestTimeAsync(async () => { for (let i = 0; i < steps; i++) await trainer.step(); }, { reps: 5, warmup: 1 })) / steps;
}
