// The run layer: metrics sinks, progress display, checkpoints, resume, stop signals, inspect.
export { METRIC_KEYS, CRAFT_KEYS, WALL_CLOCK_KEYS, MultiSink, checkMetricsRow } from './metrics.js';
export type { MetricKey, MetricsRow, MetricsSink } from './metrics.js';
export { JsonlSink, jsonlLine, truncateJsonl } from './jsonl-sink.js';
export type { MetricsFileOptions } from './jsonl-sink.js';
export { CsvSink, CSV_HEADER, csvLine, truncateCsv } from './csv-sink.js';
export { TensorBoardSink } from './tensorboard-sink.js';
export type { TensorBoardSinkOptions } from './tensorboard-sink.js';
export { ProgressReporter } from './progress.js';
export type { ProgressOptions } from './progress.js';
export { formatStepLine } from './progress-format.js';
export {
  RUN_SCHEMA_VERSION, RESUME_MUTABLE_KEYS, configHash, diffConfigs, checkResumeConfig, readConfigFile, writeConfigFile,
} from './config.js';
export type { RunConfig, ConfigFile, ConfigDifference } from './config.js';
export { stepDirName, parseStepDirName } from './checkpoint-layout.js';
export type { CheckpointTensor, TensorGroups, Manifest, ManifestEntry, StateFile } from './checkpoint-layout.js';
export { writeCheckpoint, pruneCheckpoints, checkJsonValue } from './checkpoint-write.js';
export type { WriteCheckpointOptions } from './checkpoint-write.js';
export { checkCheckpoint, findLatestCheckpoint, listCheckpointDirs, loadCheckpoint } from './checkpoint-read.js';
export type { CheckpointCheck, LatestCheckpoint, LoadedCheckpoint } from './checkpoint-read.js';
export { RunDirectory, RUN_FILES, repairCheckpointsDir, float32Groups } from './run-directory.js';
export type { RunDirectoryOptions, ResumePoint } from './run-directory.js';
export { installStopHandlers, resumeCommand, shellQuote, SIGNAL_EXIT_CODES } from './signals.js';
export type { StopHandlers, StopHandlerOptions } from './signals.js';
export { inspect, formatInspection } from './inspect.js';
export type { Inspection, CheckpointInspection, RunInspection } from './inspect.js';
export { RunError } from './run-error.js';
export type { RunErrorOptions } from './run-error.js';
