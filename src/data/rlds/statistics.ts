// Dataset statistics and BOUNDS_Q99 normalisation, as OpenVLA-OFT computes, saves, reads and
// applies them (openvla-oft 213c5ff, prismatic/vla/datasets/rlds/utils/data_utils.py and
// rlds/dataset.py; VLA-Adapter's copies are identical). The arithmetic is upstream's, step by
// step: float32 where numpy / TensorFlow work in float32, float64 where they work in float64.
import { writeFile } from 'node:fs/promises';
import { FormatError } from '../../formats/errors.js';
import { readTextFile } from '../../formats/fileio.js';
import type { StandardEpisode } from './transforms.js';

/** One array's statistics, per dim (data_utils.py:232-248); `mask` as save_dataset_statistics writes it for actions. */
export interface ArrayStatistics {
  mean: number[];
  std: number[];
  max: number[];
  min: number[];
  q01: number[];
  q99: number[];
  /** true = normalised. Upstream adds it to `action` only (dataset.py:224-231). */
  mask?: boolean[];
}

/** One dataset's entry of dataset_statistics.json. */
export interface DatasetStatistics {
  action: ArrayStatistics;
  proprio: ArrayStatistics;
  num_transitions: number;
  num_trajectories: number;
}

const STAT_KEYS = ['mean', 'std', 'max', 'min', 'q01', 'q99'] as const;

/**
 * np.quantile(x, q, axis=0) with the default method 'linear', as numpy 1.x computes it
 * (upstream pins tensorflow 2.15, which needs numpy < 2: pyproject.toml:52): virtual index
 * (n − 1)·q in float64, a = x[floor], b = x[floor + 1] (the last element when the index reaches
 * n − 1), diff = b − a in float32, then in float64 a + diff·γ, or b − diff·(1 − γ) when γ ≥ 0.5
 * (numpy's _lerp). `sorted` holds one column in ascending order. numpy ≥ 2 called with a Python
 * float q rounds the lerp to float32 instead (its weak-scalar rule); with q as np.float64 it
 * matches this.
 */
export function quantileLinear(sorted: Float32Array, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('quantile of an empty column');
  const vi = (n - 1) * q;
  let prev = Math.floor(vi), next = prev + 1;
  if (vi >= n - 1) prev = next = n - 1;
  const a = sorted[prev]!, b = sorted[next]!;
  const gamma = vi - Math.floor(vi);
  const diff = Math.fround(b - a);
  return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
}

/**
 * Statistics of N rows of width D (row-major float32), as get_dataset_statistics computes
 * them on the concatenated transitions (data_utils.py:231-248): mean and std as numpy does for
 * float32 (a float32 running sum down axis 0, divided by N in float32; std = sqrt(mean((x −
 * mean)²)) all in float32, ddof 0), max, min, and q01/q99 by quantileLinear.
 */
export function arrayStatistics(rows: Float32Array, N: number, D: number): ArrayStatistics {
  if (N < 1 || rows.length !== N * D) throw new RangeError(`arrayStatistics needs N ≥ 1 rows of ${D} values, got ${rows.length} values for N = ${N}`);
  const f = Math.fround;
  const sum = new Float32Array(D), max = new Float32Array(D).fill(-Infinity), min = new Float32Array(D).fill(Infinity);
  for (let i = 0; i < N; i++) {
    for (let d = 0; d < D; d++) {
      const v = rows[i * D + d]!;
      sum[d] = sum[d]! + v;
      if (v > max[d]!) max[d] = v;
      if (v < min[d]!) min[d] = v;
    }
  }
  const fN = f(N);
  const mean = sum.map((s) => f(s / fN));
  const sq = new Float32Array(D);
  for (let i = 0; i < N; i++) {
    for (let d = 0; d < D; d++) {
      const x = f(rows[i * D + d]! - mean[d]!);
      sq[d] = sq[d]! + f(x * x);
    }
  }
  const std = sq.map((s) => f(Math.sqrt(f(s / fN))));
  const col = new Float32Array(N);
  const q01: number[] = [], q99: number[] = [];
  for (let d = 0; d < D; d++) {
    for (let i = 0; i < N; i++) col[i] = rows[i * D + d]!;
    col.sort();
    q01.push(quantileLinear(col, 0.01));
    q99.push(quantileLinear(col, 0.99));
  }
  return { mean: Array.from(mean), std: Array.from(std), max: Array.from(max), min: Array.from(min), q01, q99 };
}

/**
 * Collects the transitions of every episode (all of them, labelled or not: upstream computes
 * the statistics on split "all" before any filter, dataset.py:208-221) and computes the
 * statistics at the end. Memory: 4·(actionDim + proprioDim) bytes per transition.
 */
export class StatisticsAccumulator {
  private actionParts: Float32Array[] = [];
  private proprioParts: Float32Array[] = [];
  private transitions = 0;
  private trajectories = 0;
  private dims: [number, number] | null = null;

  add(ep: StandardEpisode): void {
    if (this.dims === null) this.dims = [ep.actionDim, ep.proprioDim];
    else if (this.dims[0] !== ep.actionDim || this.dims[1] !== ep.proprioDim) {
      throw new RangeError(`every episode must have the same widths: action ${this.dims[0]}, proprio ${this.dims[1]}; got ${ep.actionDim} and ${ep.proprioDim}`);
    }
    this.actionParts.push(ep.action);
    this.proprioParts.push(ep.proprio);
    this.transitions += ep.steps;
    this.trajectories += 1;
  }

  finish(): DatasetStatistics {
    if (this.dims === null || this.transitions === 0) throw new RangeError('no transitions to compute dataset statistics from');
    const join = (parts: Float32Array[], D: number): Float32Array => {
      const out = new Float32Array(this.transitions * D);
      let o = 0;
      for (const p of parts) { out.set(p, o); o += p.length; }
      return out;
    };
    const [A, P] = this.dims;
    return {
      action: arrayStatistics(join(this.actionParts, A), this.transitions, A),
      proprio: arrayStatistics(join(this.proprioParts, P), this.transitions, P),
      num_transitions: this.transitions,
      num_trajectories: this.trajectories,
    };
  }
}

/** The statistics of standardised episodes (get_dataset_statistics without the cache). */
export function computeDatasetStatistics(episodes: Iterable<StandardEpisode>): DatasetStatistics {
  const acc = new StatisticsAccumulator();
  for (const ep of episodes) acc.add(ep);
  return acc.finish();
}

// --- dataset_statistics.json ---------------------------------------------------------------

/** A number as Python's repr(float) writes it (json.dump uses float.__repr__). */
export function pythonFloatRepr(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expStr] = x.toExponential().split('e') as [string, string];
  const e = Number(expStr);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${neg ? '-' : ''}${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  let s: string;
  if (e < 0) s = `0.${'0'.repeat(-e - 1)}${digits}`;
  else if (digits.length <= e + 1) s = `${digits}${'0'.repeat(e + 1 - digits.length)}.0`;
  else s = `${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
  return `${neg ? '-' : ''}${s}`;
}

type Json = number | boolean | string | null | Json[] | { [k: string]: Json };

/** json.dumps(value, indent=2) for what statistics files hold (integers as ints, other numbers as floats). */
function pythonJson(v: Json, ints: ReadonlySet<string>, key: string, depth: number): string {
  const pad = '  '.repeat(depth + 1), end = '  '.repeat(depth);
  if (typeof v === 'number') return ints.has(key) ? String(v) : pythonFloatRepr(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (v === null) return 'null';
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => pad + pythonJson(x, ints, '', depth + 1)).join(',\n')}\n${end}]`;
  }
  const keys = Object.keys(v);
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${pad}${pythonJson(k, ints, '', 0)}: ${pythonJson(v[k]!, ints, k, depth + 1)}`).join(',\n')}\n${end}}`;
}

function orderedStats(s: ArrayStatistics): { [k: string]: Json } {
  const o: { [k: string]: Json } = {};
  for (const k of STAT_KEYS) o[k] = s[k];
  if (s.mask !== undefined) o.mask = s.mask;
  return o;
}

/**
 * dataset_statistics.json as save_dataset_statistics writes it (data_utils.py:265-284):
 * {name: {action: {mean, std, max, min, q01, q99, mask}, proprio: {mean, std, max, min, q01,
 * q99}, num_transitions, num_trajectories}}, json.dump(indent=2) with Python's float repr, keys
 * in upstream's order (the statistics' order, data_utils.py:232-250, the action mask added
 * last, dataset.py:231). Pass the action mask the run normalised with (LIBERO.actionMask).
 */
export function datasetStatisticsJson(entries: Record<string, DatasetStatistics>): string {
  const root: { [k: string]: Json } = {};
  for (const [name, s] of Object.entries(entries)) {
    root[name] = {
      action: orderedStats(s.action),
      proprio: orderedStats(s.proprio),
      num_transitions: s.num_transitions,
      num_trajectories: s.num_trajectories,
    };
  }
  return pythonJson(root, new Set(['num_transitions', 'num_trajectories']), '', 0);
}

/** Writes dataset_statistics.json (see datasetStatisticsJson). */
export async function writeDatasetStatistics(path: string, entries: Record<string, DatasetStatistics>): Promise<void> {
  await writeFile(path, datasetStatisticsJson(entries));
}

export interface StatisticsExpectation {
  /** The dataset's name (the builder's), to pick its entry from a file with several. */
  name?: string;
  actionDim: number;
  proprioDim: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Checks parsed statistics JSON and returns the dataset's entry. Takes upstream's two layouts:
 * the run's dataset_statistics.json ({name: {...}}, data_utils.py:265-284), choosing `name`'s
 * entry or the only one, and a single dataset's dict ({action, proprio, …}) as
 * make_dataset_from_rlds reads a `dataset_statistics` path (dataset.py:205-207). Each array must
 * have the width the transform gives; q01/q99/min/max are required (BOUNDS_Q99 and the
 * min == max rule read them), mean/std checked when present, counts optional. Every error is
 * one line naming the file and the field.
 */
export function parseDatasetStatistics(json: unknown, file: string, want: StatisticsExpectation): DatasetStatistics & { name: string | null } {
  const fail = (field: string, detail: string): never => { throw new FormatError('dataset_statistics', detail, { file, field }); };
  if (!isObject(json)) return fail('(top level)', 'must be a JSON object');
  let entry: Record<string, unknown>, name: string | null = null, prefix = '';
  if (isObject(json.action)) entry = json;
  else {
    const names = Object.keys(json);
    if (want.name !== undefined && Object.prototype.hasOwnProperty.call(json, want.name)) name = want.name;
    else if (names.length === 1) name = names[0]!;
    else {
      return fail('(top level)', names.length === 0 ? 'holds no dataset entry'
        : `holds entries for ${names.map((n) => `'${n}'`).join(', ')}${want.name !== undefined ? ` but none for '${want.name}'` : '; name the dataset'}`);
    }
    const e = json[name];
    if (!isObject(e)) return fail(name, 'must be an object with action and proprio statistics');
    entry = e;
    prefix = `${name}.`;
  }
  const arrayStats = (key: 'action' | 'proprio', dim: number, what: string): ArrayStatistics => {
    const s = entry[key];
    if (!isObject(s)) return fail(`${prefix}${key}`, `missing (the ${key} statistics)`);
    const out: Partial<ArrayStatistics> = {};
    for (const k of STAT_KEYS) {
      const v = s[k];
      const field = `${prefix}${key}.${k}`;
      if (v === undefined) {
        if (k === 'mean' || k === 'std') continue;
        return fail(field, 'missing');
      }
      if (!Array.isArray(v)) return fail(field, `must be a list of ${dim} numbers`);
      if (v.length !== dim) return fail(field, `has ${v.length} values but ${what} has ${dim} dims: statistics for other dimensions`);
      v.forEach((x, i) => { if (typeof x !== 'number' || !Number.isFinite(x)) fail(field, `entry ${i} is ${JSON.stringify(x)}, not a finite number`); });
      out[k] = v as number[];
    }
    if (s.mask !== undefined) {
      const field = `${prefix}${key}.mask`;
      if (!Array.isArray(s.mask) || s.mask.length !== dim) fail(field, `must be a list of ${dim} booleans`);
      (s.mask as unknown[]).forEach((x, i) => { if (typeof x !== 'boolean') fail(field, `entry ${i} is ${JSON.stringify(x)}, not a boolean`); });
      out.mask = s.mask as boolean[];
    }
    out.mean ??= [];
    out.std ??= [];
    return out as ArrayStatistics;
  };
  const action = arrayStats('action', want.actionDim, 'the action');
  const proprio = arrayStats('proprio', want.proprioDim, 'the proprio state');
  const count = (k: 'num_transitions' | 'num_trajectories'): number => {
    const v = entry[k];
    if (v === undefined) return -1;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return fail(`${prefix}${k}`, `must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v;
  };
  return { name, action, proprio, num_transitions: count('num_transitions'), num_trajectories: count('num_trajectories') };
}

/** Reads a statistics file (--stats FILE); see parseDatasetStatistics. */
export async function readDatasetStatistics(path: string, want: StatisticsExpectation): Promise<DatasetStatistics & { name: string | null }> {
  let text: string;
  try {
    text = await readTextFile(path, 'dataset_statistics');
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError('dataset_statistics', `cannot read: ${(e as Error).message}`, { file: path, cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError('dataset_statistics', `not JSON: ${(e as Error).message}`, { file: path, field: '(top level)', cause: e });
  }
  return parseDatasetStatistics(json, path, want);
}

// --- normalisation -------------------------------------------------------------------------

/**
 * BOUNDS_Q99 normalisation of `values` (rows of width `dim`) in place, as
 * normalize_action_and_proprio applies it inside tf.data (data_utils.py:67-90):
 *   x' = mask ? clip(2·(x − q01) / (q99 − q01 + 1e-8) − 1, −1, 1) : x
 * then x' = 0 on every dim whose min == max (:86-90; masked or not). The statistics come as
 * float64 numpy arrays (dataset.py:222) and meet a float32 tensor: TF casts each to float32,
 * so x − q01 is float32 with q01 rounded to float32, while the denominator q99 − q01 + 1e-8 is
 * numpy float64 arithmetic rounded to float32 once; 2·(…), the division and − 1 are float32.
 * q99 == q01 on a normalised dim gives ±1 (−1 at x == q01) unless min == max.
 * `mask` defaults to all true (proprio: dataset.py:75 `.get("mask", ones)`).
 */
export function normalizeBoundsQ99(values: Float32Array, dim: number, stats: ArrayStatistics, mask?: readonly boolean[]): Float32Array {
  const f = Math.fround;
  if (values.length % dim !== 0) throw new RangeError(`values (${values.length}) is not a whole number of rows of ${dim}`);
  for (const k of ['q01', 'q99', 'min', 'max'] as const) {
    if (stats[k].length !== dim) throw new RangeError(`statistics ${k} has ${stats[k].length} dims, values have ${dim}`);
  }
  const m = mask ?? stats.mask;
  if (m !== undefined && m.length !== dim) throw new RangeError(`mask has ${m.length} dims, values have ${dim}`);
  const low = stats.q01.map((v) => f(v));
  const den = stats.q99.map((h, d) => f(h - stats.q01[d]! + 1e-8));
  const zero = stats.min.map((lo, d) => lo === stats.max[d]);
  for (let i = 0; i < values.length; i += dim) {
    for (let d = 0; d < dim; d++) {
      let x = values[i + d]!;
      if (m === undefined || m[d]) {
        const y = f(f(f(2 * f(x - low[d]!)) / den[d]!) - 1);
        x = y < -1 ? -1 : y > 1 ? 1 : y;
      }
      if (zero[d]) x = 0;
      values[i + d] = x;
    }
  }
  return values;
}
