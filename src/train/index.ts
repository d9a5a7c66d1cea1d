// The training loop's public pieces (re-exported from the package root).
export { Trainer } from './trainer.js';
export type { TrainerOptions, ResolvedTrainerOptions, TrainerState, TrainerStateJson, TrainerMeters, StepResult } from './trainer.js';
export { AdamW, craftReduce } from './optimizer.js';
export type { AdamWOptions, AdamWStepOptions, AdamWState, CraftReduceResult } from './optimizer.js';
export { HostGradientSource } from './host-source.js';
export type { HostBatch, HostGradientSourceOptions } from './host-source.js';
export { learningRate, resolveSchedule } from './schedule.js';
export type { LrSchedule, LrScheduleKind } from './schedule.js';
export { dualUpdate } from './dual.js';
export { TRAINER_DEFAULTS } from './defaults.js';
export type { TrainerDefaults } from './defaults.js';
// METRIC_KEYS etc. stay inside src/train (src/run exports the file-side list at the root).
export { METRIC_KEYS, CRAFT_METRIC_KEYS, WALL_CLOCK_METRIC_KEYS, metricKeys } from './metrics.js';
export type { StepMetricKey, StepMetrics, StepMetricsSink, StepDetail } from './metrics.js';
export type { GradientSource, JsonValue, MicroBatchResult, ValidationResult } from './source.js';
export { trainerTensorGroups, trainerStateFromGroups } from './checkpoint-tensors.js';
export type { TrainerTensorGroups, TrainerTensorInput, ShapedTensor, ShapedTrainerTensorGroups } from './checkpoint-tensors.js';
