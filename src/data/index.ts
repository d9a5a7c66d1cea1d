// Datasets for the built-in model: the synthetic default, files, splits and the sampler.
export type { Dataset, DatasetBatch, SplitOptions } from './dataset.js';
export { subsetDataset, nShot, splitByEpisode, gatherBatch, checkDatasetFits, nShotIndices, splitIndicesByEpisode } from './dataset.js';
export type { EpisodeIndex } from './dataset.js';
export { syntheticDataset, taskInstruction, OBJECTS, GOALS, type SyntheticOptions } from './synthetic.js';
export { loadDatasetFile, saveDatasetFile, datasetFromTensors } from './files.js';
export { Sampler, type SamplerOptions, type SamplerState } from './sampler.js';
export { ShuffleBuffer, type ShuffleBufferOptions, type ShuffleBufferState } from './shuffle-buffer.js';
export { Rng, type RngState } from './rng.js';
export {
  type SequenceDataset, type SequenceModelLimits, type SequenceBatch,
  sequenceDatasetFromTensors, loadSequenceDatasetFile, saveSequenceDatasetFile, checkSequenceDatasetFits,
  gatherSequenceBatch, subsetSequenceDataset, nShotSequence, splitSequenceByEpisode,
} from './sequence-dataset.js';
