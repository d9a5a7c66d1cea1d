// craftgrad's public API.
export { surgery, surgeryAsync, surgeryFlat, surgeryFlatAsync } from './surgery.js';
export type { SurgeryOptions, SurgeryResult } from './surgery.js';
export { GradSet } from './gradset.js';
export type { GradSetOptions } from './gradset.js';
export type { DeviceName, DeviceSpec } from './device.js';
export { backendInfo, setThreads, version } from './backend.js';
export type { BackendInfo } from './backend.js';
// Per-tensor conflict flags of each logged step (conflicts.json + conflicts.bin in a run directory).
export { ConflictLogWriter, readConflictLog, parseConflictLogHeader, conflictRecordBytes, CONFLICT_LOG_FORMAT, CONFLICT_LOG_VERSION } from './run/conflict-log.js';
export type { ConflictLog, ConflictLogHeader, ConflictLogWriterOptions } from './run/conflict-log.js';
// Run reports (craftgrad report): curves, summary table and conflict heatmaps as one HTML file.
export * from './report/index.js';
// Runs: metrics sinks, progress, checkpoints and exact resume, stop signals, inspect.
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
  splitByEpisode, gatherBatch, checkDatasetFits, Sampler, Rng,
} from './data/index.js';
export type { Dataset, DatasetBatch, SplitOptions, SyntheticOptions, SamplerOptions, SamplerState, RngState } from './data/index.js';

// Compile-time check (emits nothing): the built-in model's source satisfies the Trainer's contract.
import type { GradientSource as TrainerGradientSource } from './train/index.js';
import type { AdapterPolicySource as BuiltInSource } from './model/index.js';
type AssertGradientSource<T extends TrainerGradientSource> = T;
export type BuiltInGradientSource = AssertGradientSource<BuiltInSource>;
// File formats: safetensors, npy/npz, TensorBoard event files (reader and writer).
export * from './formats/index.js';
