// The learning rate as a pure function of the optimizer step (ARCHITECTURE.md §5): a resumed run
// needs no scheduler state, only the step number.
import { argRangeError } from '../errors.js';
import { checkChoice, checkFiniteNumber, checkInteger, checkOptions } from '../validate.js';

/** How the learning rate evolves after the warmup. */
export type LrScheduleKind = 'constant' | 'multistep' | 'cosine';

/** A learning-rate schedule. */
export interface LrSchedule {
  /** The peak learning rate (finite, > 0, as the options table's lr). */
  lr: number;
  /** After the warmup: 'constant' (default), 'multistep' or 'cosine'. */
  kind?: LrScheduleKind;
  /** Linear warmup from 0.1·lr to lr over this many steps (default 0: none). */
  warmup?: number;
  /** multistep: the learning rate is multiplied by 0.1 from each of these steps on. */
  decayAfter?: readonly number[];
  /** cosine: the learning rate at the end (default 0). */
  minLr?: number;
  /** cosine: the step at which the learning rate reaches minLr (the run's length). */
  totalSteps?: number;
}

const KEYS = ['lr', 'kind', 'warmup', 'decayAfter', 'minLr', 'totalSteps'] as const;

const KINDS: readonly LrScheduleKind[] = ['constant', 'multistep', 'cosine'];

/** Validates a schedule and fills in its defaults. Throws TypeError/RangeError naming the field. */
export function resolveSchedule(s: LrSchedule, name = 'schedule'): Required<LrSchedule> {
  checkOptions(s, KEYS, name);
  const lr = checkFiniteNumber(s.lr, `${name}.lr`, { min: 0, exclusive: true });
  const kind = checkChoice(s.kind ?? 'constant', `${name}.kind`, KINDS);
  const warmup = checkInteger(s.warmup ?? 0, `${name}.warmup`, 0);
  const decayAfter = Array.from(s.decayAfter ?? [], (d, i) => checkInteger(d, `${name}.decayAfter[${i}]`, 0));
  const minLr = checkFiniteNumber(s.minLr ?? 0, `${name}.minLr`, { min: 0 });
  if (minLr > lr) throw argRangeError(`${name}.minLr (${minLr}) must not exceed ${name}.lr (${lr})`);
  const totalSteps = checkInteger(s.totalSteps ?? 0, `${name}.totalSteps`, 0);
  if (kind === 'cosine' && totalSteps <= warmup) {
    throw argRangeError(`${name}.totalSteps (${totalSteps}) must exceed ${name}.warmup (${warmup}) for a cosine schedule`);
  }
  return { lr, kind, warmup, decayAfter, minLr, totalSteps };
}

/**
 * The learning rate of optimizer step `step` (0-based: the first step is 0).
 * Warmup: lr·(0.1 + 0.9·step/warmup) for step < warmup. Then constant: lr; multistep:
 * lr·0.1^(number of decayAfter entries <= step); cosine: minLr + (lr − minLr)·(1 + cos(π·p))/2
 * with p = (step − warmup)/(totalSteps − warmup), clamped to [0, 1].
 */
export function learningRate(step: number, schedule: LrSchedule): number {
  const s = resolveSchedule(schedule);
  checkInteger(step, 'step', 0);
  if (step < s.warmup) return s.lr * (0.1 + (0.9 * step) / s.warmup);
  switch (s.kind) {
    case 'constant':
      return s.lr;
    case 'multistep': {
      let lr = s.lr;
      for (const d of s.decayAfter) if (step >= d) lr *= 0.1;
      return lr;
    }
    case 'cosine': {
      const p = Math.min(1, Math.max(0, (step - s.warmup) / (s.totalSteps - s.warmup)));
      return s.minLr + ((s.lr - s.minLr) * (1 + Math.cos(Math.PI * p))) / 2;
    }
  }
}
