// The embedded default dataset: seeded multi-task manipulation, "pick the X and place it
// in the Y". Each episode has latent positions (gripper start, object, goal) and an
// instruction; an expert moves to the object, grasps, carries it to the goal and
// releases. Each step's latent state (positions, yaws, gripper, progress, instruction
// words) is turned into T tokens of width D by a fixed random encoder; the target is the
// expert's next K actions (A values each). Samples are ordered task, episode, step.
import { checkFiniteNumber, checkInteger, checkOptions } from '../validate.js';
import type { Dataset } from './dataset.js';
import { Rng } from './rng.js';

export const OBJECTS = ['red block', 'blue cup', 'green ball', 'yellow can'] as const;
export const GOALS = ['left bin', 'right bin', 'top shelf', 'tray'] as const;
const GOAL_POS: readonly (readonly [number, number, number])[] = [[-0.6, 0.5, 0.1], [0.6, 0.5, 0.1], [0, 0.8, 0.5], [0, -0.6, 0]];
const LATENT = 22;
const BASE_ACTION = 7; // dx, dy, dz, droll, dpitch, dyaw, gripper

export interface SyntheticOptions {
  /** Seed of the scenes (object, goal and start positions). Default 0. */
  seed?: number;
  /** Task count, 1..16 (object × goal pairs). Default 8. */
  tasks?: number;
  /** Episodes per task. Default 20. */
  episodesPerTask?: number;
  /** Steps (samples) per episode, at least 4. Default 16. */
  stepsPerEpisode?: number;
  /** Tokens per sample T. Default 16. */
  tokens?: number;
  /** Token width D. Default 256. */
  width?: number;
  /** Action chunk K. Default 8. */
  chunk?: number;
  /** Action dims A (7 = dx, dy, dz, droll, dpitch, dyaw, gripper; others are mixes of these). Default 7. */
  actionDims?: number;
  /** Std of the observation noise added to the tokens. Default 0.01. */
  noise?: number;
  /** Seed of the fixed encoder (shared by every dataset seed). Default 1234. */
  encoderSeed?: number;
}

/** The instruction of task `t`. */
export function taskInstruction(t: number): string {
  return `pick the ${OBJECTS[t % 4]} and place it in the ${GOALS[Math.floor(t / 4) % 4]}`;
}

const KEYS = ['seed', 'tasks', 'episodesPerTask', 'stepsPerEpisode', 'tokens', 'width', 'chunk', 'actionDims', 'noise', 'encoderSeed'];

/** Generates the seeded synthetic dataset (deterministic: same options, same bits). */
export function syntheticDataset(options: SyntheticOptions = {}): Dataset {
  checkOptions(options, KEYS);
  const seed = checkInteger(options.seed ?? 0, 'options.seed', 0);
  const tasks = checkInteger(options.tasks ?? 8, 'options.tasks', 1, 16);
  const eps = checkInteger(options.episodesPerTask ?? 20, 'options.episodesPerTask', 1, 1e6);
  const S = checkInteger(options.stepsPerEpisode ?? 16, 'options.stepsPerEpisode', 4, 1e4);
  const T = checkInteger(options.tokens ?? 16, 'options.tokens', 1, 65536);
  const D = checkInteger(options.width ?? 256, 'options.width', 1, 16384);
  const K = checkInteger(options.chunk ?? 8, 'options.chunk', 1, 4096);
  const A = checkInteger(options.actionDims ?? 7, 'options.actionDims', 1, 4096);
  const encoderSeed = checkInteger(options.encoderSeed ?? 1234, 'options.encoderSeed', 0);
  const noise = checkFiniteNumber(options.noise ?? 0.01, 'options.noise', { min: 0 });

  // The fixed encoder: per token t, tanh(E_t·z + c_t); and the mix for A ≠ 7 action dims.
  const enc = new Rng(encoderSeed);
  const E = new Float64Array(T * D * LATENT), c = new Float64Array(T * D);
  for (let i = 0; i < E.length; i++) E[i] = (1.5 / Math.sqrt(LATENT)) * enc.normal();
  for (let i = 0; i < c.length; i++) c[i] = 0.1 * enc.normal();
  const mix = new Float64Array(A * BASE_ACTION);
  for (let a = 0; a < A; a++) for (let b = 0; b < BASE_ACTION; b++) {
    mix[a * BASE_ACTION + b] = a < BASE_ACTION ? (a === b ? 1 : 0) : enc.normal() / Math.sqrt(BASE_ACTION);
  }

  const rng = new Rng(seed);
  const N = tasks * eps * S;
  const tokens = new Float32Array(N * T * D), actions = new Float32Array(N * K * A);
  const task = new Int32Array(N), episode = new Int32Array(N);
  const z = new Float64Array(LATENT);
  const pos = new Float64Array((S + 1) * 3), yaw = new Float64Array(S + 1), grip = new Float64Array(S + 1);
  const objPos = new Float64Array((S + 1) * 3);
  let n = 0;
  for (let t = 0; t < tasks; t++) {
    const obj = t % 4, goalIdx = Math.floor(t / 4) % 4;
    for (let e = 0; e < eps; e++) {
      // Latent scene.
      const start = [rng.range(-0.3, 0.3), rng.range(-0.8, -0.5), rng.range(0.3, 0.5)];
      const o = [rng.range(-0.5, 0.5), rng.range(-0.3, 0.3), 0];
      const oyaw = rng.range(-Math.PI / 2, Math.PI / 2);
      const g = GOAL_POS[goalIdx]!.map((v) => v + rng.range(-0.05, 0.05));
      // Expert: approach (first half), grasp, carry on an arc to the goal, release at the end.
      const half = Math.floor(S / 2);
      for (let s = 0; s <= S; s++) {
        let p: number[];
        if (s <= half) {
          const u = s / half;
          p = [start[0]! + u * (o[0]! - start[0]!), start[1]! + u * (o[1]! - start[1]!), start[2]! + u * (o[2]! - start[2]!)];
          yaw[s] = u * oyaw;
        } else {
          const u = (s - half) / (S - half);
          p = [o[0]! + u * (g[0]! - o[0]!), o[1]! + u * (g[1]! - o[1]!), o[2]! + u * (g[2]! - o[2]!) + 0.3 * Math.sin(Math.PI * u)];
          yaw[s] = oyaw;
        }
        pos.set(p, s * 3);
        grip[s] = s >= half && s < S ? 1 : 0;
        objPos.set(s >= half ? p : o, s * 3);
      }
      for (let s = 0; s < S; s++, n++) {
        task[n] = t;
        episode[n] = t * eps + e;
        // Latent state of step s.
        z.fill(0);
        z.set(pos.subarray(s * 3, s * 3 + 3), 0);
        z[3] = yaw[s]!;
        z[4] = grip[s]!;
        z.set(objPos.subarray(s * 3, s * 3 + 3), 5);
        z[8] = Math.sin(oyaw);
        z[9] = Math.cos(oyaw);
        z.set(g, 10);
        z[13] = s / S;
        z[14 + obj] = 1;
        z[18 + goalIdx] = 1;
        const tb = n * T * D;
        for (let k = 0; k < T * D; k++) {
          let acc = c[k]!;
          const row = k * LATENT;
          for (let j = 0; j < LATENT; j++) acc += E[row + j]! * z[j]!;
          tokens[tb + k] = Math.tanh(acc) + (noise > 0 ? noise * rng.normal() : 0);
        }
        // Expert chunk: the next K actions (velocity-scaled deltas), zero motion past the end.
        for (let k = 0; k < K; k++) {
          const st = s + k;
          const base = new Float64Array(BASE_ACTION);
          if (st < S) {
            for (let d = 0; d < 3; d++) base[d] = (pos[(st + 1) * 3 + d]! - pos[st * 3 + d]!) * (S / 2);
            base[5] = (yaw[st + 1]! - yaw[st]!) * (S / 2);
          }
          base[6] = grip[Math.min(st + 1, S)]!;
          for (let a = 0; a < A; a++) {
            let acc = 0;
            for (let b = 0; b < BASE_ACTION; b++) acc += mix[a * BASE_ACTION + b]! * base[b]!;
            actions[(n * K + k) * A + a] = acc;
          }
        }
      }
    }
  }
  return { size: N, tokensPerSample: T, width: D, actionSize: K * A, tokens, actions, task, episode, source: `synthetic(seed=${seed})` };
}
