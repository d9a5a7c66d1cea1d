// Samples from RLDS robot datasets as OpenVLA-OFT / VLA-Adapter form them (issue #28):
// per-dataset transforms, action chunks, statistics and BOUNDS_Q99 normalisation, prompts.
export {
  type RldsEpisode, type StandardEpisode, type RldsDatasetSpec, LIBERO,
  checkEpisode, liberoDatasetTransform, standardizeEpisode, stepInstructions,
} from './transforms.js';
export { type ChunkIndices, chunkActObsIndices, gatherRows } from './chunks.js';
export {
  type ArrayStatistics, type DatasetStatistics, type StatisticsExpectation, StatisticsAccumulator,
  quantileLinear, arrayStatistics, computeDatasetStatistics, pythonFloatRepr, datasetStatisticsJson,
  writeDatasetStatistics, parseDatasetStatistics, readDatasetStatistics, normalizeBoundsQ99,
} from './statistics.js';
export {
  type PromptTokenizer, NUM_ACTION_TOKENS, QWEN_SYSTEM_PROMPT, vlaAdapterPromptText, loadPromptTokenizer,
  actionTokenBeginIdx, actionPlaceholderId, promptInputIds,
} from './prompt.js';
export {
  type RldsSampleOptions, type RldsSamples, type InputIdLayout,
  buildRldsSamples, subsetRldsSamples, splitRldsSamples, shotsPerTask, layoutInputIds,
} from './samples.js';
