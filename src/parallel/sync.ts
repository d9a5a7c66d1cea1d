// Keeping the ranks of a data-parallel run in one state: at the start every rank takes
// rank 0's (a resumed run is read by rank 0 alone), the frozen base must agree, and at the
// end every rank must hold the same weights (README "Multi-process training").
import { createHash } from 'node:crypto';
import type { GradSet } from '../gradset.js';
import type { Tensor } from '../formats/tensor.js';
import type { StopHandlers } from '../run/signals.js';
import { SIGNAL_EXIT_CODES } from '../run/signals.js';
import type { World } from './world.js';

/** The Trainer calls the start needs, declared structurally (src/train sits above this layer). */
export interface RankTrainer<S extends { json: { step: number }; params: GradSet; m: GradSet; v: GradSet }> {
  state(copy?: boolean): S;
  restoreState(state: S): void;
}

/** The model calls the start needs (AdapterPolicy's). */
export interface RankModel {
  anchorTensors(): Record<string, Tensor>;
  loadAnchor(tensors: Record<string, Tensor>, name?: string): void;
  frozenTensors(): Record<string, Tensor>;
}

/** 48 bits of the SHA-256 of some float arrays (exact as a double, for World.allgather). */
function digest(arrays: Iterable<ArrayBufferView>): number {
  const h = createHash('sha256');
  for (const a of arrays) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest().readUIntBE(0, 6);
}

function broadcastSet(world: World, set: GradSet): void {
  const flat = world.rank === 0 ? set.toFlat() : new Float32Array(set.numElements);
  world.broadcast(flat);
  if (world.rank !== 0) set.set(flat);
}

/**
 * Gives every rank rank 0's trainer state (step, λ, AdamW moments, sampler, parameters)
 * and anchor, after rank 0 restored a checkpoint (or not); refuses to go on when a
 * rank's frozen base differs from rank 0's. Returns the step the run starts after.
 * `resumed`: rank 0's moments as read from the checkpoint, whole (the sharded step's
 * trainer kept only rank 0's pieces of them: every rank takes its own from these).
 */
export function startRanks<S extends { json: { step: number }; params: GradSet; m: GradSet; v: GradSet }>(
  world: World, trainer: RankTrainer<S>, model: RankModel, run: { startStep: number },
  resumed?: { m: GradSet; v: GradSet },
): number {
  const base = Object.entries(model.frozenTensors()).sort(([a], [b]) => (a < b ? -1 : 1));
  const bases = world.allgather([digest(base.map(([, t]) => t.data))]);
  const differs = bases.findIndex((d) => d[0] !== bases[0]![0]);
  if (differs >= 0) {
    throw new Error(`craftgrad: rank ${differs}'s frozen base weights differ from rank 0's: every rank must read the same --base-weights file`);
  }
  const state = trainer.state(true);  // collective under the sharded step
  if (world.rank === 0 && resumed) Object.assign(state, { m: resumed.m, v: resumed.v });
  const json = world.broadcastJson<S['json']>(world.rank === 0 ? state.json : undefined);
  for (const set of [state.params, state.m, state.v]) broadcastSet(world, set);
  const anchor = Object.entries(model.anchorTensors()).sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, t]) => [name, { ...t, data: t.data.slice() }] as const);
  for (const [, t] of anchor) world.broadcast(t.data as Float32Array);
  if (world.rank !== 0) {
    model.loadAnchor(Object.fromEntries(anchor), 'rank 0\'s anchor');
    trainer.restoreState({ ...state, json });
    run.startStep = json.step;
  }
  return json.step;
}

/**
 * Checks that every rank holds the same trainable weights (bit for bit); returns their
 * digest in hex. Throws, naming the first rank that differs, otherwise.
 */
export function checkSameWeights(world: World, params: GradSet): string {
  const d = world.allgather([digest([params.toFlat()])]);
  const differs = d.findIndex((x) => x[0] !== d[0]![0]);
  if (differs >= 0) throw new Error(`craftgrad: rank ${differs} ended with other weights than rank 0 (a bug: please report it)`);
  return d[0]![0]!.toString(16).padStart(12, '0');
}

/**
 * The stop signal agreed by all ranks: a rank asked to stop (SIGINT/SIGTERM to any rank)
 * stops them all after the same step. Collective: every rank calls shouldStop() once per step.
 */
export function agreedStop(world: World, local: StopHandlers | undefined): StopHandlers {
  let agreed: NodeJS.Signals | undefined;
  const byCode = new Map(Object.entries(SIGNAL_EXIT_CODES).map(([s, c]) => [c, s as NodeJS.Signals]));
  return {
    shouldStop() {
      const codes = world.allgather([local?.exitCode ?? 0]).map((r) => r[0]!);
      const first = codes.find((c) => c > 0);
      if (first !== undefined) agreed ??= local?.signal ?? byCode.get(first) ?? 'SIGTERM';
      return agreed !== undefined;
    },
    get signal() {
      return agreed;
    },
    get exitCode() {
      return agreed === undefined ? undefined : (SIGNAL_EXIT_CODES[agreed] ?? 1);
    },
    dispose() {
      local?.dispose();
    },
  };
}
