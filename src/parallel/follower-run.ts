// What a rank other than 0 has in place of the run directory: nothing on disk. Rank 0
// alone writes config.json, metrics, TensorBoard events, the conflict log, checkpoints and
// the report; the others compute the same steps and keep nothing (README "Multi-process
// training"). The members are the ones runTrainingSession uses.
import { join } from 'node:path';
import { RUN_FILES } from '../run/run-directory.js';

export class FollowerRun {
  readonly resumed = undefined;
  /** Set by startRanks (src/parallel/sync.ts) to the step rank 0 resumed from. */
  startStep = 0;
  readonly checkpointsDir: string;
  readonly metricsSink = { write: (): void => {} };

  constructor(readonly dir: string) {
    this.checkpointsDir = join(dir, RUN_FILES.checkpoints);
  }

  begin(): void {}
  /** Never: rank 0 saves. */
  checkpointDue(): boolean {
    return false;
  }
  /** Never called (runTrainingSession saves on rank 0 only): a follower that tried would be a bug. */
  saveCheckpoint(): Promise<string> {
    return Promise.reject(new Error('craftgrad: internal error: a rank other than 0 tried to save a checkpoint'));
  }
  close(): void {}
}
