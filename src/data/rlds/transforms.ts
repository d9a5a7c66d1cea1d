// From an RLDS episode as the reader decodes it (per-step arrays) to the standardised
// trajectory upstream's pipeline works on: LIBERO's per-dataset transform and the proprio
// concatenation, as OpenVLA-OFT does them (VLA-Adapter's copy of prismatic/vla/datasets/rlds
// is identical for LIBERO). Paths are in moojink/openvla-oft at 213c5ff unless they say
// otherwise; docs/ARCHITECTURE.md §4f is the map.
import { FormatError } from '../../formats/errors.js';

/** One episode as the RLDS reader hands it over: row-major per-step arrays, steps ascending. */
export interface RldsEpisode {
  /** Steps T (the length of `steps/action`). */
  readonly steps: number;
  /** `steps/observation/state`, T × stateDim float32. */
  readonly state: Float32Array;
  readonly stateDim: number;
  /** `steps/action`, T × actionDim float32. */
  readonly action: Float32Array;
  readonly actionDim: number;
  /** `steps/language_instruction` per step (T strings), or one string for every step. */
  readonly language: readonly string[] | string;
  /** Where the episode came from, for errors: e.g. `shard libero_spatial-train.tfrecord-00000-of-00016, record 3`. */
  readonly where?: string;
}

/** An episode after the per-dataset transform and restructure (dataset.py:131-200). */
export interface StandardEpisode {
  readonly steps: number;
  /** T × actionDim float32, in the dataset's action encoding after the standardize_fn. */
  readonly action: Float32Array;
  readonly actionDim: number;
  /** T × proprioDim float32 (observation/proprio). */
  readonly proprio: Float32Array;
  readonly proprioDim: number;
  /** The instruction of each step, as stored (not lower-cased). */
  readonly language: readonly string[];
}

/** What a dataset's upstream configuration fixes (constants.py, configs.py, materialize.py, datasets.py). */
export interface RldsDatasetSpec {
  /** Upstream's name for the per-dataset transform and configuration. */
  readonly kind: 'libero';
  /** Action dims after the transform (ACTION_DIM). */
  readonly actionDim: number;
  /** Proprio dims after the transform (PROPRIO_DIM). */
  readonly proprioDim: number;
  /** Actions per chunk (NUM_ACTIONS_CHUNK): window_size 1 + future_action_window_size chunk − 1. */
  readonly chunk: number;
  /** window_size (datasets.py:132, VLA-Adapter datasets.py:185). */
  readonly windowSize: number;
  /** future_action_window_size = NUM_ACTIONS_CHUNK − 1 (datasets.py:133). */
  readonly futureWindow: number;
  /** action_normalization_mask: true = normalised (materialize.py:37-39, EEF_POS). */
  readonly actionMask: readonly boolean[];
  /** ACTION_PROPRIO_NORMALIZATION_TYPE (constants.py:26-31). */
  readonly normalization: 'bounds_q99';
}

/**
 * LIBERO (`libero_{spatial,object,goal,10}_no_noops`, `libero_4_task_suites_no_noops`):
 * constants.py:26-31 (chunk 8, action 7, proprio 8, BOUNDS_Q99); configs.py:645-679 (state_obs_keys
 * ["EEF_state", "gripper_state"], EEF_POS actions); materialize.py:37-39 (the gripper, last action
 * dim, is absolute and not normalised); datasets.py:130-136 (window 1, future 7).
 */
export const LIBERO: RldsDatasetSpec = Object.freeze({
  kind: 'libero',
  actionDim: 7,
  proprioDim: 8,
  chunk: 8,
  windowSize: 1,
  futureWindow: 7,
  actionMask: Object.freeze([true, true, true, true, true, true, false]),
  normalization: 'bounds_q99',
});

function episodeName(ep: RldsEpisode, index: number): string {
  return ep.where !== undefined ? `episode ${index} (${ep.where})` : `episode ${index}`;
}

function fail(ep: RldsEpisode, index: number, field: string, detail: string): never {
  throw new FormatError('rlds', `${episodeName(ep, index)}: ${detail}`, { field });
}

/** The instruction of every step as an array of T strings. */
export function stepInstructions(ep: RldsEpisode): readonly string[] {
  return typeof ep.language === 'string' ? Array.from({ length: ep.steps }, () => ep.language as string) : ep.language;
}

/**
 * Checks an episode before anything is computed from it: at least one step, array lengths
 * that agree with T and the widths, finite actions and states. `index` is the episode's place
 * in the dataset's record order; every error names it and the step.
 */
export function checkEpisode(ep: RldsEpisode, index: number): void {
  if (ep === null || typeof ep !== 'object') throw new TypeError(`episode ${index} must be an object, got ${ep === null ? 'null' : typeof ep}`);
  const T = ep.steps;
  if (!Number.isInteger(T) || T < 0) fail(ep, index, 'steps', `step count must be a non-negative integer, got ${String(T)}`);
  if (T === 0) fail(ep, index, 'steps', 'is empty (no steps)');
  if (!Number.isInteger(ep.actionDim) || ep.actionDim < 1) fail(ep, index, 'steps/action', `action width must be a positive integer, got ${String(ep.actionDim)}`);
  if (!Number.isInteger(ep.stateDim) || ep.stateDim < 1) fail(ep, index, 'steps/observation/state', `state width must be a positive integer, got ${String(ep.stateDim)}`);
  if (!(ep.action instanceof Float32Array) || ep.action.length !== T * ep.actionDim) {
    fail(ep, index, 'steps/action', `must hold ${T} × ${ep.actionDim} float32 values, got ${ep.action instanceof Float32Array ? ep.action.length : typeof ep.action}`);
  }
  if (!(ep.state instanceof Float32Array) || ep.state.length !== T * ep.stateDim) {
    fail(ep, index, 'steps/observation/state', `must hold ${T} × ${ep.stateDim} float32 values, got ${ep.state instanceof Float32Array ? ep.state.length : typeof ep.state}`);
  }
  if (typeof ep.language !== 'string') {
    if (!Array.isArray(ep.language) || ep.language.length !== T) {
      fail(ep, index, 'steps/language_instruction', `must hold ${T} strings (one per step), got ${Array.isArray(ep.language) ? ep.language.length : typeof ep.language}`);
    }
    for (let t = 0; t < T; t++) if (typeof ep.language[t] !== 'string') fail(ep, index, 'steps/language_instruction', `step ${t}: not a string`);
  }
  for (let i = 0; i < ep.action.length; i++) {
    const v = ep.action[i]!;
    if (!Number.isFinite(v)) fail(ep, index, 'steps/action', `step ${Math.floor(i / ep.actionDim)}: action[${i % ep.actionDim}] is ${v} (actions must be finite)`);
  }
  for (let i = 0; i < ep.state.length; i++) {
    const v = ep.state[i]!;
    if (!Number.isFinite(v)) fail(ep, index, 'steps/observation/state', `step ${Math.floor(i / ep.stateDim)}: state[${i % ep.stateDim}] is ${v} (states must be finite)`);
  }
}

/**
 * libero_dataset_transform (oxe/transforms.py:827-841) followed by restructure's proprio
 * (dataset.py:157-168):
 * - action = [action[:, :6], 1 − clip(action[:, -1:], 0, 1)] (invert_gripper_actions,
 *   utils/data_utils.py:128-129), in float32 as tf.clip_by_value and `1 - x` compute it: the
 *   gripper goes from −1 open … +1 close to +1 open … 0 close;
 * - proprio = concat(EEF_state = state[:, :6], gripper_state = state[:, -2:]) cast to float32
 *   (configs.py:648 state_obs_keys). Python slicing: with an 8-dim state (LIBERO's) this is the
 *   whole state; a narrower state gives min(6, D) + min(2, D) values, as upstream would.
 * The action width must be at least 7 (upstream keeps dims :6 and the last one).
 */
export function liberoDatasetTransform(ep: RldsEpisode, index = 0): StandardEpisode {
  checkEpisode(ep, index);
  const T = ep.steps, A = ep.actionDim, S = ep.stateDim;
  if (A < 7) fail(ep, index, 'steps/action', `LIBERO's transform keeps action[:, :6] and the gripper action[:, -1]: needs at least 7 dims, got ${A}`);
  const action = new Float32Array(T * 7);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < 6; d++) action[t * 7 + d] = ep.action[t * A + d]!;
    const g = ep.action[t * A + A - 1]!;
    const clipped = g < 0 ? 0 : g > 1 ? 1 : g;
    action[t * 7 + 6] = Math.fround(1 - clipped);
  }
  const eef = Math.min(6, S), grip = Math.min(2, S), P = eef + grip;
  const proprio = new Float32Array(T * P);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < eef; d++) proprio[t * P + d] = ep.state[t * S + d]!;
    for (let d = 0; d < grip; d++) proprio[t * P + eef + d] = ep.state[t * S + S - grip + d]!;
  }
  return { steps: T, action, actionDim: 7, proprio, proprioDim: P, language: stepInstructions(ep) };
}

/** The per-dataset transform of a spec (only LIBERO today). */
export function standardizeEpisode(spec: RldsDatasetSpec, ep: RldsEpisode, index = 0): StandardEpisode {
  if (spec.kind === 'libero') return liberoDatasetTransform(ep, index);
  throw new RangeError(`unknown RLDS dataset kind '${String((spec as { kind: unknown }).kind)}'`);
}
