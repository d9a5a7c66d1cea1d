// The learning rate as a pure function of the optimizer step (ARCHITECTURE.md §5): a resumed run
// needs no scheduler state, only the step number.
import { argRangeError, argTypeError, checkFiniteNumber, checkKnownKeys, describeValue } from '../errors.js';

/** How the learning rate evolves after the warmup. */
export type LrScheduleKind = 'constant' | 'multistep' | 'cosine';

/** A learning-rate schedule. */
export interface LrSchedule {
  /** The peak learning rate (finite, >= 0). */
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

function checkStepCount(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw argRangeError(`${name} must be a non-negative integer, got ${describeValue(v)}`);
  }
  return v;
}

/** Validates a schedule and fills in its defaults. Throws TypeError/RangeError naming the field. */
export function resolveSchedule(s: LrSchedule, name = 'schedule'): Required<LrSchedule> {
  if (s === null || typeof s !== 'object') throw argTypeError(`${name} must be an object, got ${describeValue(s)}`);
  checkKnownKeys(s, KEYS, name);
  const lr = checkFiniteNumber(s.lr, `${name}.lr`, 0, true);
  const kind = s.kind ?? 'constant';
  if (kind !== 'constant' && kind !== 'multistep' && kind !== 'cosine') {
    throw argRangeError(`${name}.kind must be 'constant', 'multistep' or 'cosine', got ${describeValue(kind)}`);
  }
  const warmup = checkStepCount(s.warmup ?? 0, `${name}.warmup`);
  const decayAfter = Array.from(s.decayAfter ?? [], (d, i) => checkStepCount(d, `${name}.decayAfter[${i}]`));
  const minLr = checkFiniteNumber(s.minLr ?? 0, `${name}.minLr`, 0, true);
  if (minLr > lr) throw argRangeError(`${name}.minLr (${minLr}) must not exceed ${name}.lr (${lr})`);
  const totalSteps = checkStepCount(s.totalSteps ?? 0, `${name}.totalSteps`);
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
  checkStepCount(step, 'step');
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
