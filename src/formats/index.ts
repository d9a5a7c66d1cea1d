// The public surface of the formats layer (also the package's `craftgrad/formats` entry):
// the readers and writers of the files a user exchanges with other tools. Knows nothing of
// training: datasets, checkpoints and the TensorBoard sink build on these. The checksums,
// the zip container, TFRecord framing and the header limits are internal: import them
// from their modules (formats/crc.js, zip.js, tfevents.js), as the tests do.
export { FormatError, type FormatErrorOptions } from './errors.js';
export { type DType, type Tensor, type TypedArray } from './tensor.js';
export {
  type SafetensorsInput, type SafetensorsContent, type DecodeOptions,
  encodeSafetensors, decodeSafetensors, writeSafetensorsFile, readSafetensorsFile,
} from './safetensors.js';
export { type NpyDecodeOptions, type NpyEncodeOptions, decodeNpy, encodeNpy, readNpyFile } from './npy.js';
export { type NpzDecodeOptions, type NpzEncodeOptions, decodeNpz, encodeNpz, readNpzFile, writeNpzFile } from './npz.js';
export { type SessionStatus, type TfEventsWriterOptions, type SessionLogOptions, TfEventsWriter } from './tfevents.js';
export { type TfEvent, type TfSessionLog, readTfEvents } from './tfevents-reader.js';
export {
  type TorchPtValue, type TorchPtKey, type TorchPtDecodeOptions, type TorchPtEncodeOptions, type TorchStateDictOptions,
  TORCH_PT_MAX_DEPTH, decodeTorchPt, readTorchPtFile, torchStateDict, torchTensorToF32, encodeTorchPt, writeTorchPtFile,
} from './torch-pt.js';
