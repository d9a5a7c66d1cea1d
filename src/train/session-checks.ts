// Checks every session model makes the same way: the split against the run's options
// (before anything is written), and the model kind a checkpoint was trained on.
import type { ResumePoint } from '../run/run-directory.js';
import type { TrainRunConfig } from './run-config.js';
import type { SessionModelContext } from './session-model.js';

/** Refused before anything is written: validation with nothing to validate on; a batch larger than the split is capped. */
export function checkSplit(c: TrainRunConfig, ctx: SessionModelContext, trainSize: number, valSize: number, what: string): TrainRunConfig {
  const name = ctx.keyName;
  if (c.val_every > 0 && valSize === 0) {
    throw new RangeError(`${name('val_every')} ${c.val_every} needs a validation split, but ${name('val_fraction')} ${c.val_fraction} ` +
      `holds out no episode of ${what}: give ${name('val_every')} 0 or a larger ${name('val_fraction')}`);
  }
  if (!ctx.resume && c.batch_size > trainSize) {
    // The sampler would draw the whole set each step anyway; config.json records what is used.
    ctx.log(`craftgrad: warning: ${name('batch_size')} ${c.batch_size} is larger than the training set (${trainSize} samples): ` +
      `using ${trainSize}, as config.json records`);
    return { ...c, batch_size: trainSize };
  }
  return c;
}

/** --shuffle-buffer orders the samples of an RLDS dataset directory: refused for any other data (`why` says what it is). */
export function refuseShuffleBuffer(c: TrainRunConfig, ctx: SessionModelContext, why: string): void {
  const n = c.shuffle_buffer ?? 0;
  if (n !== 0) throw new RangeError(`${ctx.keyName('shuffle_buffer')} ${n} applies to an RLDS dataset directory as ${ctx.keyName('data')}; ${why} (give ${ctx.keyName('shuffle_buffer')} 0 or leave it out)`);
}

/** Which model a checkpoint's state.json describes ('adapter_policy' when it predates the field). */
function checkpointKind(resumed: ResumePoint): string {
  const m = resumed.model as { kind?: unknown } | undefined;
  return m && typeof m === 'object' && typeof m.kind === 'string' ? m.kind : 'adapter_policy';
}

export function requireKind(resumed: ResumePoint, kind: string, ctx: SessionModelContext): void {
  const have = checkpointKind(resumed);
  if (have === kind) return;
  throw new RangeError(have === 'qwen2_policy' || have === 'vla_adapter'
    ? `the checkpoint was trained on a ${have === 'qwen2_policy' ? 'Qwen2' : 'VLA-Adapter'} model: resume it with ${ctx.keyName('model')} DIR (the base model's directory)`
    : `the checkpoint was trained on the built-in model: resume it without ${ctx.keyName('model')}`);
}

