// The argument checks of the whole API, in one place: an options object and its known keys,
// integers in a range, finite numbers, booleans, choices. Each throws a TypeError (wrong
// type) or RangeError (wrong value) from errors.ts whose message names the argument as the
// caller gives it (`options.batchSize`, `config.rank`) and says what was expected and what
// came, so that every layer words the same check the same way. No native code: the
// addon-free entry points (craftgrad/report) may use it.
import { argRangeError, argTypeError, describeValue } from './errors.js';

/** The most CPU threads the kernels take (the native pool's own limit, native/core/thread_pool.cc). */
export const MAX_THREADS = 1024;

/** `value` itself when it is a non-null object (an Array counts); TypeError naming it otherwise. */
export function checkObject<T extends object = Record<string, unknown>>(value: unknown, name: string): T {
  if (value === null || typeof value !== 'object') throw argTypeError(`${name} must be an object, got ${describeValue(value)}`);
  return value as T;
}

/** Rejects option names that are not known, so a typo is an error rather than ignored. */
export function checkKnownKeys(options: object, known: readonly string[], name: string): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw argTypeError(`${name} has an unknown option '${key}' (known: ${known.join(', ')})`);
    }
  }
}

/** `value` when it is given (not undefined); TypeError "`name` is required" otherwise. */
export function checkPresent<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw argTypeError(`${name} is required`);
  return value;
}

/** An options object whose keys are all in `known` (checkObject, then checkKnownKeys). */
export function checkOptions<T extends object>(value: T, known: readonly string[], name = 'options'): T {
  checkKnownKeys(checkObject<T>(value, name), known, name);
  return value;
}

/** How an integer's range reads in a message. */
function integerRange(min: number, max: number | undefined): string {
  if (max !== undefined) return `an integer from ${min} to ${max}`;
  if (min === 0) return 'a non-negative integer';
  if (min === 1) return 'a positive integer';
  return `an integer >= ${min}`;
}

/**
 * `value` when it is a safe integer from `min` to `max` (no upper bound when absent);
 * otherwise a RangeError naming it and the range ("a positive integer", "an integer from
 * 1 to 1024", ...).
 */
export function checkInteger(value: unknown, name: string, min = 0, max?: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || (max !== undefined && value > max)) {
    throw argRangeError(`${name} must be ${integerRange(min, max)}, got ${describeValue(value)}`);
  }
  return value;
}

/** Limits of {@link checkFiniteNumber}. */
export interface NumberLimits {
  /** The least value (inclusive unless `exclusive`). */
  min?: number | undefined;
  /** The value must be above `min`, not equal to it. */
  exclusive?: boolean | undefined;
  /** The value must be below this. */
  below?: number | undefined;
}

/**
 * `value` when it is a finite number within `limits`: TypeError when it is not a number,
 * RangeError when it is not finite or out of range ("a finite number > 0", "< 1").
 */
export function checkFiniteNumber(value: unknown, name: string, limits: NumberLimits = {}): number {
  if (typeof value !== 'number') throw argTypeError(`${name} must be a number, got ${describeValue(value)}`);
  const { min, exclusive = false, below } = limits;
  const ok = Number.isFinite(value) && (min === undefined || (exclusive ? value > min : value >= min));
  if (!ok) throw argRangeError(`${name} must be a finite number${min === undefined ? '' : ` ${exclusive ? '>' : '>='} ${min}`}, got ${value}`);
  if (below !== undefined && !(value < below)) throw argRangeError(`${name} must be < ${below}, got ${value}`);
  return value;
}

/** `value` when it is a boolean; TypeError otherwise. */
export function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw argTypeError(`${name} must be a boolean, got ${describeValue(value)}`);
  return value;
}

/** `value` when it is one of `choices`; RangeError listing them otherwise. */
export function checkChoice<T extends string>(value: unknown, name: string, choices: readonly T[]): T {
  if (!choices.includes(value as T)) throw argRangeError(`${name} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describeValue(value)}`);
  return value as T;
}

/** A CPU thread count: an integer from 1 to {@link MAX_THREADS}. */
export function checkThreadCount(value: unknown, name: string): number {
  return checkInteger(value, name, 1, MAX_THREADS);
}
