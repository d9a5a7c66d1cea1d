// VLA-Adapter checkpoint directories in and out (docs/VLA-ADAPTER.md "Files";
// docs/ARCHITECTURE.md "VLA-Adapter files"): config and preprocessor, the frozen groups in
// native/core/vla_desc.cc's layout, the head/proprio .pt files, the Prismatic base VLM,
// and what every checkpoint writes (PEFT adapter, .pt files, queries, statistics, merged model).
export {
  type VitTowerConfig, type VlaModelConfig, type TowerNormalize, KNOWN_TIMM_TOWERS,
  parseVlaConfig, parseVlaPreprocessor, vlaRawModelConfig, towerPatches,
} from './config.js';
export {
  VLA_TOWERS, type VlaTowerName, type FrozenTensorSpec, type FrozenGroupSpec, type FrozenGroup, ACTION_QUERIES,
  towerPrefix, vitBlockTensors, vlaFrozenLayout, vlaLmHead, attnPoolTensors, vlaUncomputedTensors, allocateVlaFrozen,
} from './weights.js';
export { type F32Tensor, tensorToF32, f32ToDType } from './float.js';
export { type PtKey, type PtValue, type TorchPtIo, defaultTorchPtIo, ptStateDict } from './torch-pt-io.js';
export {
  HEAD_BLOCK_LINEARS, ACTION_HEAD_PREFIX, PROPRIO_PREFIX, DDP_PREFIX, type HeadShape, type VlaHeadFiles, type ReadHeadOptions,
  actionHeadStateDict, proprioStateDict, headTrainableSpecs, isFilmGen, readVlaHeadFiles,
} from './head-files.js';
export {
  PREPROCESSOR_FILE, DATASET_STATISTICS_FILE, DEFAULT_ACTION_QUERIES, PRISMATIC_RENAMES, type DatasetStatistics, type VlaBase,
  type VlaDirectory, type PrismaticBase, type LoadVlaOptions, type LoadPrismaticOptions,
  readVlaConfigFiles, readDatasetStatistics, loadVlaDirectory, renamePrismaticKey, loadPrismaticBase, isVlaModelDirectory, isPrismaticBaseDirectory,
} from './directory.js';
export {
  LORA_ADAPTER_DIR, ACTION_QUERIES_FILE, MERGED_AUX_FILES, DATASET_STATISTICS_PLACEHOLDER,
  type VlaLoraModule, type VlaAdapterOptions, type VlaHeadState, type VlaCheckpointOutputs, type MergedExportOptions,
  vlaLoraModules, vlaLoraName, vlaPeftTargetModules, initUntrainedLora, vlaPeftTensors, writeVlaLoraAdapter, initFilmGen,
  vlaHeadStateDicts, actionHeadFileName, proprioFileName, writeVlaHeadFiles, writeActionQueries, writeDatasetStatistics,
  writeVlaCheckpointOutputs, exportMergedVla,
} from './outputs.js';
export { type VlaPeftRead, readVlaPeftAdapter } from './peft-in.js';
export {
  VlaPolicy, type VlaPolicyOptions, type VlaModelParts, type VlaBridgeSpan, VLA_BRIDGE_SPANS, initialVlaParams,
} from './vla-policy.js';
export { VlaPolicySource, type VlaPolicySourceOptions } from './vla-source.js';
