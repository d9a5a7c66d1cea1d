// The CRaFT gradient-surgery primitive (ARCHITECTURE.md §3). Per tensor i, with a = act[i] and
// r = ret[i]: d = <a,r>, q = <r,r>; on conflict (projection on and d < 0) the action
// gradient is projected off r; then out = ã + λ·r, computed as fma(c_i, r, a).
import type { RawSurgeryOptions, RawSurgeryResult, TensorSet } from '../binding.js';
import { binding } from './native.js';
import { GradSet, gradSetInternals, adoptResult } from './gradset.js';
import { CPU, parseDevice, usable, type DeviceName, type DeviceSpec } from './device.js';
import { argRangeError, argTypeError, describeValue } from './errors.js';
import { checkBoolean, checkFiniteNumber, checkKnownKeys } from './validate.js';

export interface SurgeryOptions<Out> {
  /** Weight of the retention gradient added to every tensor (finite, >= 0). Required. */
  lambda: number;
  /** Added to <r,r> in the projection's denominator (finite, > 0). Default 1e-8. */
  eps?: number | undefined;
  /** Project conflicting action gradients off the retention gradient. Default true. */
  projection?: boolean | undefined;
  /** Preallocated outputs; may be `act` itself (in place) or `ret`. */
  out?: Out | undefined;
  /**
   * Where to compute. 'auto' (default) computes where the data lives: on the CPU for
   * Float32Arrays, on the set's device for GradSets. 'cuda' with Float32Arrays stages
   * them through the GPU.
   */
  device?: DeviceSpec | undefined;
  /** Also return cos(a_i, r_i) per tensor. Default false. */
  cosines?: boolean | undefined;
}

export interface SurgeryResult<Out> {
  /** The combined gradient, one tensor per input tensor. */
  out: Out;
  /** 1 where tensor i conflicted (and was projected). */
  conflicts: Uint8Array;
  numConflicts: number;
  numTensors: number;
  /** numConflicts / numTensors, 0 when there are no tensors. */
  conflictRatio: number;
  /** Global L2 norm of every out tensor. */
  gradNorm: number;
  /** Tensors with any NaN or Inf in a or r (their results are computed anyway). */
  nonFinite: number;
  /** <a_i, r_i> per tensor. */
  dots: Float64Array;
  /** cos(a_i, r_i) per tensor (0 where either is zero), when options.cosines. */
  cosines?: Float64Array;
}

const OPTION_KEYS = ['lambda', 'eps', 'projection', 'out', 'device', 'cosines'] as const;

interface Params {
  lambda: number;
  eps: number;
  projection: boolean;
  cosines: boolean;
  device: unknown;
  out: unknown;
}

function readOptions(options: unknown): Params {
  if (options === null || typeof options !== 'object') {
    throw argTypeError(`options must be an object with at least { lambda }, got ${describeValue(options)}`);
  }
  checkKnownKeys(options, OPTION_KEYS, 'options');
  const o = options as Record<string, unknown>;
  if (o.lambda === undefined) throw argTypeError('options.lambda is required (the weight of the retention gradient)');
  return {
    lambda: checkFiniteNumber(o.lambda, 'options.lambda', { min: 0 }),
    eps: o.eps === undefined ? 1e-8 : checkFiniteNumber(o.eps, 'options.eps', { min: 0, exclusive: true }),
    projection: o.projection === undefined ? true : checkBoolean(o.projection, 'options.projection'),
    cosines: o.cosines === undefined ? false : checkBoolean(o.cosines, 'options.cosines'),
    device: o.device ?? 'auto',
    out: o.out ?? undefined,
  };
}

function tidy<Out>(raw: RawSurgeryResult<unknown>, out: Out): SurgeryResult<Out> {
  const result: SurgeryResult<Out> = {
    out,
    conflicts: raw.conflicts,
    numConflicts: raw.numConflicts,
    numTensors: raw.numTensors,
    conflictRatio: raw.conflictRatio,
    gradNorm: raw.gradNorm,
    nonFinite: raw.nonFinite,
    dots: raw.dots,
  };
  if (raw.cosines) result.cosines = raw.cosines;
  return result;
}

// ---- Float32Array[] ----

function checkArrayList(value: unknown, name: string): Float32Array[] {
  if (!Array.isArray(value)) throw argTypeError(`${name} must be an Array of Float32Array or a GradSet, got ${describeValue(value)}`);
  return value as Float32Array[];
}

function runHost(act: unknown, ret: unknown, p: Params, async: true): Promise<SurgeryResult<Float32Array[]>>;
function runHost(act: unknown, ret: unknown, p: Params, async: false): SurgeryResult<Float32Array[]>;
function runHost(act: unknown, ret: unknown, p: Params, async: boolean) {
  const a = checkArrayList(act, 'act');
  const r = checkArrayList(ret, 'ret');
  const out = p.out === undefined ? undefined : checkArrayList(p.out, 'options.out');
  const device = usable(parseDevice(p.device, 'options.device', CPU), 'options.device');
  const options = rawOptions(p, out, undefined, device.name);
  if (async) return binding.surgeryAsync(a, r, options).then((raw) => tidy(raw, raw.out));
  const raw = binding.surgery(a, r, options);
  return tidy(raw, raw.out);
}

// One object literal of fixed shape (a spread costs microseconds per call on the native side).
function rawOptions<Out>(p: Params, out: Out | undefined, sizes: ArrayLike<number> | undefined, device: DeviceName | undefined): RawSurgeryOptions<Out> {
  return { lambda: p.lambda, eps: p.eps, projection: p.projection, cosines: p.cosines, out, sizes, device };
}

// ---- GradSet ----

function checkSets(act: GradSet, ret: unknown, out: unknown, deviceSpec: unknown): GradSet | undefined {
  if (!(ret instanceof GradSet)) throw argTypeError(`ret must be a GradSet like act, got ${describeValue(ret)}`);
  if (out !== undefined && !(out instanceof GradSet)) {
    throw argTypeError(`options.out must be a GradSet like act, got ${describeValue(out)}`);
  }
  for (const [name, set] of [['act', act], ['ret', ret], ['options.out', out]] as const) {
    if (set instanceof GradSet && set.disposed) throw argTypeError(`${name} is a disposed GradSet`);
  }
  const wanted = parseDevice(deviceSpec, 'options.device', parseDevice(act.device, 'act.device', CPU));
  if (wanted.name !== act.device) {
    throw argRangeError(`options.device is '${String(deviceSpec)}' but the GradSets live on ${act.device}`);
  }
  const describeMismatch = (name: string, other: GradSet) => {
    if (other.device !== act.device) return `${name} is on ${other.device} but act is on ${act.device}`;
    if (other.numTensors !== act.numTensors) return `${name} has ${other.numTensors} tensors but act has ${act.numTensors}`;
    const i = other.sizes.findIndex((n, k) => n !== act.sizes[k]);
    return `${name}[${i}] has ${other.sizes[i]} elements but act[${i}] has ${act.sizes[i]}`;
  };
  if (!act.sameLayout(ret)) throw argRangeError(describeMismatch('ret', ret));
  if (out instanceof GradSet && !act.sameLayout(out)) throw argRangeError(describeMismatch('options.out', out));
  return out as GradSet | undefined;
}

function runSets(act: GradSet, ret: unknown, p: Params, async: true): Promise<SurgeryResult<GradSet>>;
function runSets(act: GradSet, ret: unknown, p: Params, async: false): SurgeryResult<GradSet>;
function runSets(act: GradSet, ret: unknown, p: Params, async: boolean) {
  const out = checkSets(act, ret, p.out, p.device);
  const options = rawOptions(p, out ? gradSetInternals(out) : undefined, undefined, undefined);
  const a = gradSetInternals(act), r = gradSetInternals(ret as GradSet);
  const wrap = (raw: RawSurgeryResult<TensorSet>) => tidy(raw, out ?? adoptResult(act, raw.out));
  if (async) return binding.surgeryAsync(a, r, options).then(wrap);
  return wrap(binding.surgery(a, r, options));
}

// ---- public API ----

/**
 * Gradient surgery on a list of tensors (synchronous, on the calling thread plus the
 * craftgrad thread pool). `act` and `ret` are both Float32Array[] or both GradSet.
 */
export function surgery(act: readonly Float32Array[], ret: readonly Float32Array[], options: SurgeryOptions<Float32Array[]>): SurgeryResult<Float32Array[]>;
export function surgery(act: GradSet, ret: GradSet, options: SurgeryOptions<GradSet>): SurgeryResult<GradSet>;
export function surgery(act: unknown, ret: unknown, options: SurgeryOptions<unknown>): SurgeryResult<unknown> {
  const p = readOptions(options);
  return act instanceof GradSet ? runSets(act, ret, p, false) : runHost(act, ret, p, false);
}

/** The same as surgery(), computed off the main thread; resolves to the same result. */
export function surgeryAsync(act: readonly Float32Array[], ret: readonly Float32Array[], options: SurgeryOptions<Float32Array[]>): Promise<SurgeryResult<Float32Array[]>>;
export function surgeryAsync(act: GradSet, ret: GradSet, options: SurgeryOptions<GradSet>): Promise<SurgeryResult<GradSet>>;
export async function surgeryAsync(act: unknown, ret: unknown, options: SurgeryOptions<unknown>): Promise<SurgeryResult<unknown>> {
  const p = readOptions(options);
  return act instanceof GradSet ? runSets(act, ret, p, true) : runHost(act, ret, p, true);
}

function flatArgs(actFlat: unknown, retFlat: unknown, options: unknown): Params {
  const p = readOptions(options);
  for (const [name, v] of [['actFlat', actFlat], ['retFlat', retFlat], ['options.out', p.out]] as const) {
    if (v !== undefined && !(v instanceof Float32Array)) throw argTypeError(`${name} must be a Float32Array, got ${describeValue(v)}`);
  }
  const device = parseDevice(p.device, 'options.device', CPU);
  if (device.kind !== 'cpu') {
    throw argRangeError("surgeryFlat runs on the CPU; for the GPU use GradSets (options.device must be 'auto' or 'cpu')");
  }
  return p;
}

/** Surgery on one contiguous buffer per set, split into tensors by `sizes`. */
export function surgeryFlat(actFlat: Float32Array, retFlat: Float32Array, sizes: ArrayLike<number>, options: SurgeryOptions<Float32Array>): SurgeryResult<Float32Array> {
  const p = flatArgs(actFlat, retFlat, options);
  const raw = binding.surgery(actFlat, retFlat, rawOptions(p, p.out as Float32Array | undefined, sizes, undefined));
  return tidy(raw, raw.out);
}

/** surgeryFlat() off the main thread. */
export async function surgeryFlatAsync(actFlat: Float32Array, retFlat: Float32Array, sizes: ArrayLike<number>, options: SurgeryOptions<Float32Array>): Promise<SurgeryResult<Float32Array>> {
  const p = flatArgs(actFlat, retFlat, options);
  const raw = await binding.surgeryAsync(actFlat, retFlat, rawOptions(p, p.out as Float32Array | undefined, sizes, undefined));
  return tidy(raw, raw.out);
}
