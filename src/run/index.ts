// The public surface of the run layer (re-exported from the package root): metrics sinks,
// progress display, the conflict log, checkpoints and exact resume, stop signals, inspect.
// What only the run layer itself uses (truncating a metrics file after a crash, repairing
// a checkpoints directory, config hashes and diffs, shell quoting, file-name helpers, the
// conflict log's binary layout) is internal: import it from its module, as the tests do.
export { METRIC_KEYS, MultiSink } from './metrics.js';
export type { MetricKey, MetricsRow, MetricsSink } from './metrics.js';
export { JsonlSink } from './jsonl-sink.js';
export type { MetricsFileOptions } from './jsonl-sink.js';
export { CsvSink } from './csv-sink.js';
export { TensorBoardSink } from './tensorboard-sink.js';
export type { TensorBoardSinkOptions } from './tensorboard-sink.js';
export { ProgressReporter } from './progress.js';
export type { ProgressOptions } from './progress.js';
// Per-tensor conflict flags of each logged step (conflicts.json + conflicts.bin in a run directory).
export { ConflictLogWriter, readConflictLog } from './conflict-log.js';
export type { ConflictLog, ConflictLogHeader, ConflictLogWriterOptions } from './conflict-log.js';
export { readConfigFile } from './config.js';
export type { RunConfig, ConfigFile } from './config.js';
export type { CheckpointTensor, TensorGroups, Manifest, ManifestEntry, StateFile } from './checkpoint-layout.js';
export { writeCheckpoint } from './checkpoint-write.js';
export type { WriteCheckpointOptions } from './checkpoint-write.js';
export { checkCheckpoint, findLatestCheckpoint, loadCheckpoint } from './checkpoint-read.js';
export type { CheckpointCheck, LatestCheckpoint, LoadedCheckpoint } from './checkpoint-read.js';
export { RunDirectory } from './run-directory.js';
export type { RunDirectoryOptions, ResumePoint } from './run-directory.js';
export { installStopHandlers } from './signals.js';
export type { StopHandlers, StopHandlerOptions } from './signals.js';
export { inspect, formatInspection } from './inspect.js';
export type { Inspection, CheckpointInspection, RunInspection } from './inspect.js';
export { RunError } from './run-error.js';
export type { RunErrorOptions } from './run-error.js';
