// Public surface of the formats layer. Knows nothing of training: datasets, checkpoints
// and the TensorBoard sink build on these.
export { FormatError, type FormatErrorOptions } from './errors.js';
export {
  type DType, type Tensor, type TypedArray,
  DTYPE_ARRAY, dtypeSize, isDType, numel,
} from './tensor.js';
export { crc32, crc32c, crcImplementation } from './crc.js';
export {
  SAFETENSORS_MAX_HEADER,
  type SafetensorsInput, type SafetensorsContent, type DecodeOptions,
  encodeSafetensors, decodeSafetensors, writeSafetensorsFile, readSafetensorsFile,
} from './safetensors.js';
export { type NpyDecodeOptions, type NpyEncodeOptions, decodeNpy, encodeNpy, readNpyFile } from './npy.js';
export { type NpzDecodeOptions, type NpzEncodeOptions, decodeNpz, encodeNpz, readNpzFile, writeNpzFile } from './npz.js';
export { type ZipEntry, type ZipReadOptions, type ZipWriteOptions, readZip, writeZip } from './zip.js';
export {
  type SessionStatus, type TfEventsWriterOptions, type SessionLogOptions,
  SESSION_STATUS, FILE_VERSION, TfEventsWriter, maskCrc, frameRecord,
} from './tfevents.js';
export { type TfEvent, type TfSessionLog, readTfEvents } from './tfevents-reader.js';
