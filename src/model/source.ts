// AdapterPolicySource: the built-in model plus its training data, in the shape of the
// Trainer's GradientSource (src/train; ARCHITECTURE.md §5): BatchSource's sampler, shares,
// validation and state over a Dataset of token features.
import { checkOptions } from '../validate.js';
import { checkDatasetFits, gatherBatch, type Dataset, type DatasetBatch } from '../data/dataset.js';
import type { AdapterPolicy } from './adapter-policy.js';
import { BatchSource, type BatchSourceOptions, type BatchSourceState } from './batch-source.js';

export interface AdapterPolicySourceOptions extends BatchSourceOptions {
  /** Validation split (for validate()). */
  val?: Dataset;
}

/** What saveState() returns: plain JSON. */
export type AdapterPolicySourceState = BatchSourceState;

const split = (ds: Dataset) => ({ size: ds.size, gather: (idx: ArrayLike<number>, reuse: DatasetBatch | undefined) => gatherBatch(ds, idx, reuse) });

export class AdapterPolicySource extends BatchSource<DatasetBatch> {
  readonly model: AdapterPolicy;
  readonly train: Dataset;
  readonly val: Dataset | undefined;

  constructor(model: AdapterPolicy, train: Dataset, options: AdapterPolicySourceOptions) {
    checkOptions(options, ['batchSize', 'seed', 'val', 'valBatchSize', 'shard']);
    checkDatasetFits(train, model.config);
    if (options.val !== undefined) checkDatasetFits(options.val, model.config);
    super(model, split(train), options.val === undefined ? undefined : split(options.val), options);
    this.model = model;
    this.train = train;
    this.val = options.val;
  }
}
