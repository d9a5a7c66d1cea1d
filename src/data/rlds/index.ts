// Robot datasets in the RLDS format as TFDS stores them (docs/ARCHITECTURE.md §4f): TFRecord
// framing, tf.train.Example, and the TFDS directory with its episodes streamed in record order.
export {
  type TfRecordReadOptions, type TfRecordEntry, TfRecordFormatError, TfRecordWriter,
  TFRECORD_HEADER_BYTES, TFRECORD_FOOTER_BYTES, TFRECORD_MAX_RECORD_BYTES,
  readTfRecords, readTfRecordAt, encodeTfRecord, writeTfRecordFile,
} from './tfrecord.js';
export { type ExampleFeature, type ExampleFeatures, ExampleDecodeError, decodeExample, encodeExample } from './example.js';
export {
  type TfdsSplit, type RldsFeatureType, type RldsFeatureSpec, type UnsupportedFeature, type RldsArray, type RldsValue,
  type RldsEpisode, type ReadEpisodesOptions, DEFAULT_FILEPATH_TEMPLATE, TfdsDataset, openTfdsDataset, shardRelativePath,
} from './tfds.js';
// Samples from them as OpenVLA-OFT / VLA-Adapter form them (issue #28):
// per-dataset transforms, action chunks, statistics and BOUNDS_Q99 normalisation, prompts.
export {
  type RldsEpisode as RldsEpisodeArrays, type StandardEpisode, type RldsDatasetSpec, LIBERO,
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
export { readPadTokenId } from './pad-token.js';
export {
  type RldsSampleOptions, type RldsSamples, type InputIdLayout,
  buildRldsSamples, subsetRldsSamples, splitRldsSamples, shotsPerTask, layoutInputIds,
} from './samples.js';
