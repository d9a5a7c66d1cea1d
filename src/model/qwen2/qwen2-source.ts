// Qwen2PolicySource: a Qwen2 backbone policy plus its sequence dataset, in the shape of the
// Trainer's GradientSource (ARCHITECTURE.md §5): BatchSource's sampler, shares, validation
// and state over prefix/prompt sequences. The dataset is checked against the model first
// (prefix width, token ids, P and S, K·A), each error naming the file and the field.
import { argRangeError } from '../../errors.js';
import { checkOptions } from '../../validate.js';
import { checkSequenceDatasetFits, gatherSequenceBatch, type SequenceBatch, type SequenceDataset } from '../../data/sequence-dataset.js';
import { BatchSource, type BatchSourceOptions } from '../batch-source.js';
import type { Qwen2Policy } from './qwen2-policy.js';

export interface Qwen2PolicySourceOptions extends BatchSourceOptions {
  /** Validation split (for validate()). */
  val?: SequenceDataset;
}

function checkFits(ds: SequenceDataset, model: Qwen2Policy): void {
  const c = model.config;
  checkSequenceDatasetFits(ds, { hiddenSize: c.hiddenSize, vocabSize: c.vocabSize, chunk: c.queries, actionDims: c.actionDims });
  for (const [field, have, want, what] of [
    ['prefix', ds.prefixTokens, c.prefixTokens, 'prefix vectors per sample (P)'],
    ['input_ids', ds.promptTokens, c.promptTokens, 'prompt tokens per sample (S)'],
  ] as const) {
    if (have !== want) throw argRangeError(`${ds.source} (${field}): has ${have} ${what} but the policy was made for ${want}`);
  }
}

const split = (ds: SequenceDataset) => ({
  size: ds.size,
  gather: (idx: ArrayLike<number>, reuse: SequenceBatch | undefined) => gatherSequenceBatch(ds, idx, reuse),
});

export class Qwen2PolicySource extends BatchSource<SequenceBatch> {
  readonly model: Qwen2Policy;
  readonly train: SequenceDataset;
  readonly val: SequenceDataset | undefined;

  constructor(model: Qwen2Policy, train: SequenceDataset, options: Qwen2PolicySourceOptions) {
    checkOptions(options, ['batchSize', 'seed', 'val', 'valBatchSize', 'shard']);
    checkFits(train, model);
    if (options.val !== undefined) checkFits(options.val, model);
    super(model, split(train), options.val === undefined ? undefined : split(options.val), options);
    this.model = model;
    this.train = train;
    this.val = options.val;
  }
}
