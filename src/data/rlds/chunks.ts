// Action chunks as traj_transforms.chunk_act_obs forms them (openvla-oft 213c5ff
// prismatic/vla/datasets/rlds/traj_transforms.py:14-57; VLA-Adapter's copy is identical).

/** The gather indices chunk_act_obs uses for one trajectory of T steps. */
export interface ChunkIndices {
  /** Samples the trajectory yields: effective_traj_len = T − futureWindow (:27), or 0 when that is ≤ 0. */
  readonly starts: number;
  /** starts × windowSize observation steps, floored at 0 (:28-30, :40). */
  readonly observation: Int32Array;
  /** starts × (windowSize + futureWindow) action steps, clamped to [0, T − 1] (:32-38, :42-44). */
  readonly action: Int32Array;
}

/**
 * chunk_act_obs's indices. Sample s (s = 0 … T − futureWindow − 1) is the step s: its
 * observations are steps s − windowSize + 1 … s floored at 0, its actions steps
 * s − windowSize + 1 … s + futureWindow clamped to [0, T − 1] (the clamp at the end is the
 * goal_timestep T − 1, :42-44).
 *
 * NB: upstream's effective length T − futureWindow (:27) already stops the starts where the
 * chunk would leave the episode, so with window 1 the end clamp never takes effect: an
 * episode of T steps gives T − 7 samples at LIBERO's chunk of 8 (its last 7 steps start no
 * chunk), and one of 7 steps or fewer gives none (at T < 7 tf.broadcast_to would fail on the
 * negative size; craftgrad gives no sample).
 */
export function chunkActObsIndices(T: number, windowSize: number, futureWindow: number): ChunkIndices {
  for (const [name, v, min] of [['T', T, 0], ['windowSize', windowSize, 1], ['futureWindow', futureWindow, 0]] as const) {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer ≥ ${min}, got ${String(v)}`);
  }
  const starts = Math.max(0, T - futureWindow);
  const wa = windowSize + futureWindow;
  const observation = new Int32Array(starts * windowSize), action = new Int32Array(starts * wa);
  const goal = T - 1;
  for (let s = 0; s < starts; s++) {
    for (let k = 0; k < windowSize; k++) observation[s * windowSize + k] = Math.max(s - windowSize + 1 + k, 0);
    for (let k = 0; k < wa; k++) action[s * wa + k] = Math.min(Math.max(s - windowSize + 1 + k, 0), goal);
  }
  return { starts, observation, action };
}

/** Copies the actions at `indices` (rows of `actions`, width `dim`) into `out` at `offset`. */
export function gatherRows(actions: Float32Array, dim: number, indices: ArrayLike<number>, out: Float32Array, offset: number): void {
  for (let k = 0; k < indices.length; k++) {
    const r = indices[k]!;
    out.set(actions.subarray(r * dim, (r + 1) * dim), offset + k * dim);
  }
}
