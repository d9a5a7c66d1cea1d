// AdapterPolicySource: the built-in model plus its training data, in the shape of the
// Trainer's GradientSource (src/train; ARCHITECTURE.md §5): BatchSource's sampler, shares,
// validation and state over a Dataset of token features.
import { checkDatasetFits, gatherBatch, type Dataset, type DatasetBatch } from '../data/dataset.js';
import type { AdapterPolicy } from './adapter-policy.js';
import { BatchSource, type BatchSourceOptions, type BatchSourceState } from './batch-source.js';

export interface AdapterPolicySourceOptions extends BatchSourceOptions {
  /** Validation split (for validate()). */
  val?: Dataset;
}

/** What saveState() returns: plain JSON. */
export type AdapterPolicySourceState = BatchSourceState;

export class AdapterPolicySource extends BatchSource<DatasetBatch, Dataset, AdapterPolicy> {
  constructor(model: AdapterPolicy, train: Dataset, options: AdapterPolicySourceOptions) {
    super(model, train, options, { fits: (ds) => checkDatasetFits(ds, model.config), gather: gatherBatch });
  }
}
