// craftgrad's public API: what `import … from 'craftgrad'` gives.
//
// The rule: a symbol is exported here when a user needs it to do what the README shows:
// the surgery primitive and GradSet, the Trainer with its gradient sources, optimizer and
// schedule, the built-in model and its datasets, the run files a user writes or reads
// (metrics sinks, the conflict log, checkpoints, run directories, inspect) and the file
// formats. What only the implementation uses (repairing or truncating files after a crash,
// config hashes, checksums, shell quoting, file-name and binary-layout helpers, the native
// handles behind a GradSet) is not exported: it may change in any release, and the tests
// that exercise it import it from its own module under dist/.
//
// Groups that are public but separate have their own entry points (package.json "exports"):
//   craftgrad/formats  safetensors, npy/npz and TensorBoard event files (no native addon)
//   craftgrad/report   run reports: curves, summary table, conflict heatmaps as HTML
export { surgery, surgeryAsync, surgeryFlat, surgeryFlatAsync } from './surgery.js';
export type { SurgeryOptions, SurgeryResult } from './surgery.js';
export { GradSet } from './gradset.js';
export type { GradSetOptions } from './gradset.js';
export type { DeviceName, DeviceSpec } from './device.js';
export { backendInfo, setThreads, version } from './backend.js';
export type { BackendInfo } from './backend.js';
// Runs: metrics sinks, progress, the conflict log, checkpoints and exact resume, stop signals, inspect.
export * from './run/index.js';
// Training: the CRaFT Trainer over any GradientSource, AdamW (fused with the surgery), schedules.
export { Trainer, TRAINER_DEFAULTS, AdamW, craftReduce, HostGradientSource, learningRate, resolveSchedule, dualUpdate } from './train/index.js';
export type { TrainerDefaults } from './train/index.js';
export { trainerTensorGroups, trainerStateFromGroups } from './train/index.js';
export type { TrainerOptions, ResolvedTrainerOptions, TrainerState, TrainerStateJson, TrainerMeters, StepResult } from './train/index.js';
export type { AdamWOptions, AdamWStepOptions, AdamWState, CraftReduceResult, HostBatch, HostGradientSourceOptions } from './train/index.js';
export type { LrSchedule, LrScheduleKind, StepMetricKey, StepMetrics, StepMetricsSink, StepDetail } from './train/index.js';
export type { GradientSource, JsonValue, MicroBatchResult, ValidationResult, TrainerTensorGroups, TrainerTensorInput, ShapedTensor, ShapedTrainerTensorGroups } from './train/index.js';
export {
  AdapterPolicy, AdapterPolicySource, DEFAULT_MODEL_CONFIG, resolveModelConfig, featureWidth, trainableLayout, frozenLayout, anchorLayout,
  modelConfigFromRunConfig,
} from './model/index.js';
export type {
  AdapterPolicyConfig, AdapterPolicyOptions, AdapterPolicySourceOptions, AdapterPolicySourceState, AnchorType, Pooling, ModelBatch, GradWriteOptions, ModelLosses, TensorSpec,
  BaseWeightsOrigin, ModelDescription, RunModelKeys,
} from './model/index.js';
export {
  syntheticDataset, taskInstruction, loadDatasetFile, saveDatasetFile, datasetFromTensors, subsetDataset, nShot,
  splitByEpisode, gatherBatch, checkDatasetFits, Sampler, ShuffleBuffer, Rng,
} from './data/index.js';
export type { Dataset, DatasetBatch, SplitOptions, SyntheticOptions, SamplerOptions, SamplerState, ShuffleBufferOptions, ShuffleBufferState, RngState } from './data/index.js';
// Pretrained Qwen2 backbones with LoRA (README "Fine-tuning a Qwen2 model"): the policy and its
// source, Hugging Face directories, PEFT adapters, policy files and sequence datasets.
export {
  Qwen2Policy, Qwen2PolicySource, loadHfModel, readHfConfig, parseQwen2Config, QWEN2_LINEARS, baseModelRecord, baseModelMismatch,
  writePeftAdapter, readPeftAdapter, writePolicyFile, readPolicyFile,
} from './model/index.js';
export type {
  Qwen2PolicyOptions, Qwen2PolicySourceOptions, Qwen2Batch, Qwen2Config, Qwen2Linear, HfModel, HfWeightFile, BaseModelRecord,
  LoraAdapter, LoraPair, PeftAdapterRead, ReadPeftOptions, PolicyShape, PolicyWeights,
} from './model/index.js';
export {
  loadSequenceDatasetFile, saveSequenceDatasetFile, sequenceDatasetFromTensors, gatherSequenceBatch, subsetSequenceDataset,
  nShotSequence, splitSequenceByEpisode, checkSequenceDatasetFits,
} from './data/sequence-dataset.js';
export type { SequenceDataset, SequenceBatch, SequenceModelLimits } from './data/sequence-dataset.js';
// File formats (the same group as craftgrad/formats): safetensors, npy/npz, TensorBoard event files.
export * from './formats/index.js';

// Compile-time check (emits nothing): the built-in model's source satisfies the Trainer's contract.
import type { GradientSource as TrainerGradientSource } from './train/index.js';
import type { AdapterPolicySource as BuiltInSource } from './model/index.js';
type AssertGradientSource<T extends TrainerGradientSource> = T;
export type BuiltInGradientSource = AssertGradientSource<BuiltInSource>;
import type { Qwen2PolicySource as BackboneSource } from './model/index.js';
export type Qwen2GradientSource = AssertGradientSource<BackboneSource>;
