// VlaPolicySource: a VLA-Adapter policy plus its dataset, in the shape of the Trainer's
// GradientSource (ARCHITECTURE.md §5): BatchSource's sampler, shares, validation and state.
// Each batch's pixels are normalised as upstream's processor does (the directory's
// preprocessor constants), and it carries the head's input perturbation of its draw.
import { checkVlaDatasetFits, gatherVlaBatch, type PixelNormalization, type VlaBatch, type VlaDataset } from '../../data/vla-dataset.js';
import { BatchSource, type BatchSourceOptions } from '../batch-source.js';
import type { VlaPolicy } from './vla-policy.js';

export interface VlaPolicySourceOptions extends BatchSourceOptions {
  /** Validation split (for validate()). */
  val?: VlaDataset;
  /** Each tower's pixel normalisation (preprocessor_config.json's tvf_normalize_params). */
  normalization: readonly [PixelNormalization, PixelNormalization];
}

export class VlaPolicySource extends BatchSource<VlaBatch, VlaDataset, VlaPolicy> {
  constructor(model: VlaPolicy, train: VlaDataset, options: VlaPolicySourceOptions) {
    const { normalization, ...rest } = options;
    const c = model.config;
    const limits = {
      views: c.views, imageSize: c.towers[0].imageSize, inputIds: c.inputIds, vocabSize: c.vocabSize, chunk: c.chunk,
      actionDims: c.actionDims, proprioDim: c.proprioDim,
    };
    super(model, train, rest, {
      fits: (ds) => checkVlaDatasetFits(ds, limits),
      gather: (ds, idx, reuse, draw) => {
        const b = gatherVlaBatch(ds, normalization, idx, reuse);
        b.noise = model.headNoise(draw);
        return b;
      },
    });
  }
}
