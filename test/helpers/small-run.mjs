// A small, quick training run of the built-in model on the synthetic data (the session the
// CLI uses), for the checkpoint tests.
import { runTrainingSession } from '../../dist/train/session.js';
import { TRAIN_DEFAULTS } from '../../dist/train/run-config.js';
import { syntheticDataset, splitByEpisode } from '../../dist/index.js';

export const SMALL = Object.freeze({
  ...TRAIN_DEFAULTS, name: 'small', device: 'cpu', steps: 6, save_every: 3, val_every: 3, warmup: 2,
  tokens: 8, width: 32, blocks: 2, rank: 4, head_width: 24, chunk: 4, action_dims: 3, batch_size: 8,
});

export function smallRun(dir, config = {}, resume = false) {
  return runTrainingSession({ config: { ...SMALL, ...config }, dir, resume, progress: false, log: () => {} });
}

/** The run's validation split, as the session makes it. */
export function smallValSplit(config = {}) {
  const c = { ...SMALL, ...config };
  const all = syntheticDataset({ seed: c.seed, tokens: c.tokens, width: c.width, chunk: c.chunk, actionDims: c.action_dims });
  return splitByEpisode(all, { valFraction: c.val_fraction, seed: c.seed }).val;
}
