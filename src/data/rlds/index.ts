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
