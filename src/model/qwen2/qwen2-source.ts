// Qwen2PolicySource: a Qwen2 backbone policy plus its sequence dataset, in the shape of the
// Trainer's GradientSource (ARCHITECTURE.md §5): BatchSource's sampler, shares, validation
// and state over prefix/prompt sequences. The dataset is checked against the model first
// (prefix width, token ids, P and S, K·A), each error naming the file and the field.
import { argRangeError } from '../../errors.js';
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

export class Qwen2PolicySource extends BatchSource<SequenceBatch, SequenceDataset, Qwen2Policy> {
  constructor(model: Qwen2Policy, train: SequenceDataset, options: Qwen2PolicySourceOptions) {
    super(model, train, options, { fits: (ds) => checkFits(ds, model), gather: gatherSequenceBatch });
  }
}
