// The CRaFT training loop (ARCHITECTURE.md §1, §5). Per optimizer step: accumulate the mean of
// the raw g_act and g_ret over the micro-batches; surgery pass 1 (conflicts, coefficients,
// norm; nothing written); skip the step if anything is non-finite; clip; the fused surgery
// pass 2 + AdamW (or, unfused, surgery into a buffer then AdamW); the dual update of λ;
// metrics. The learning rate is a pure function of the step, so the state for exact
// resume is small (state()/restoreState()).
import { performance } from 'node:perf_hooks';
import { GradSet } from '../gradset.js';
import { surgery } from '../surgery.js';
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import { checkFiniteNumber, checkInteger, checkObject, checkOptions } from '../validate.js';
import { AdamW, craftReduce } from './optimizer.js';
import type { ShardedStep } from './sharded-step.js';
import { dualUpdate } from './dual.js';
import { learningRate, resolveSchedule, type LrScheduleKind } from './schedule.js';
import { resolveTrainerOptions } from './options.js';
import type { StepMetrics, StepMetricsSink, StepDetail } from './metrics.js';
import type { GradientSource, JsonValue } from './source.js';

/**
 * Trainer options. Absent ones take TRAINER_DEFAULTS (src/train/defaults.ts), the table
 * `craftgrad train` uses too; the defaults named below are that table's values, and its
 * limits are the ones checked (src/train/options.ts).
 */
export interface TrainerOptions {
  /** Optimizer steps in the run, >= 1 (run() stops there; the cosine schedule ends there). Required. */
  steps: number;
  /** Micro-batches accumulated per optimizer step (default 1). */
  microBatches?: number | undefined;
  /** 'craft' (default) or 'baseline' (action loss only: no retention gradient, no surgery). */
  mode?: 'craft' | 'baseline' | undefined;
  /** Project conflicting action gradients off the retention gradient (default true). */
  projection?: boolean | undefined;
  /** Update λ by the dual step (default true); false keeps λ fixed at `lambda`. */
  dual?: boolean | undefined;
  /** Initial λ (default 0). */
  lambda?: number | undefined;
  /** Dual step size η_λ (default 100). */
  lambdaLr?: number | undefined;
  /** Retention budget ε (default 2e-4). */
  retentionBudget?: number | undefined;
  /** eps in the projection's denominator (default 1e-8). */
  surgeryEps?: number | undefined;
  /** Peak learning rate, > 0 (default 1e-3). */
  lr?: number | undefined;
  /** AdamW betas (default [0.9, 0.999]). */
  betas?: readonly [number, number] | undefined;
  /** AdamW eps (default 1e-8). */
  adamEps?: number | undefined;
  /** AdamW decoupled weight decay (default 0.01). */
  weightDecay?: number | undefined;
  /** Schedule after the warmup (default 'constant'). */
  schedule?: LrScheduleKind | undefined;
  /** Linear warmup from 0.1·lr over this many steps (default 50). */
  warmup?: number | undefined;
  /** multistep: ×0.1 from each of these steps on (each >= 1). */
  decayAfter?: readonly number[] | undefined;
  /** cosine: final learning rate (default 0). */
  minLr?: number | undefined;
  /** Clip the global gradient norm to this value (PyTorch's clip_grad_norm_); 0 or absent: off. */
  clipNorm?: number | undefined;
  /** Fused surgery + AdamW (default true); false runs surgery then AdamW (for comparison). */
  fused?: boolean | undefined;
  /** Validate every this many steps (default 0: never; the CLI's 100 needs the validation split it always makes). Needs source.validate. */
  valEvery?: number | undefined;
  /** Time limit of one validation pass in ms, > 0 (default 10000). */
  valTimeLimitMs?: number | undefined;
  /** Where rows go (default none). */
  sinks?: readonly StepMetricsSink[] | undefined;
  /** Where the trainer reports skipped steps (default console.warn). */
  log?: ((line: string) => void) | undefined;
}

const OPTION_KEYS = [
  'steps', 'microBatches', 'mode', 'projection', 'dual', 'lambda', 'lambdaLr', 'retentionBudget', 'surgeryEps', 'lr',
  'betas', 'adamEps', 'weightDecay', 'schedule', 'warmup', 'decayAfter', 'minLr', 'clipNorm', 'fused', 'valEvery',
  'valTimeLimitMs', 'sinks', 'log',
] as const;

/** Every option present and defined (an option may be given as undefined: the default). */
type Resolved<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

/** Every option with its default filled in (what config.json should record). */
export type ResolvedTrainerOptions = Resolved<Omit<TrainerOptions, 'sinks' | 'log' | 'decayAfter' | 'betas'>> & {
  decayAfter: number[];
  betas: [number, number];
};

/** Counters carried across steps (and checkpoints). */
export interface TrainerMeters {
  /** Steps skipped for a non-finite gradient or loss. */
  nonfiniteSkipped: number;
  /** Samples drawn so far. */
  samples: number;
}

/** The JSON part of the trainer's state (state.json). */
export interface TrainerStateJson {
  schemaVersion: 1;
  /** Optimizer steps done (skipped ones included). */
  step: number;
  epoch: number;
  lambda: number;
  /** AdamW's t (skipped steps excluded). */
  optimizerStep: number;
  meters: TrainerMeters;
  /** GradientSource.saveState(). */
  source: JsonValue;
}

/** Everything exact resume needs: JSON scalars plus the parameter and moment tensors. */
export interface TrainerState {
  json: TrainerStateJson;
  /** The trainable parameters (the source's). */
  params: GradSet;
  /** AdamW first moments. */
  m: GradSet;
  /** AdamW second moments. */
  v: GradSet;
}

/** What step() returns. */
export interface StepResult {
  row: StepMetrics;
  detail: StepDetail;
}

function checkSizesLike(like: GradSet, set: GradSet, name: string): void {
  if (!(set instanceof GradSet) || set.sizes.length !== like.sizes.length || set.sizes.some((n, i) => n !== like.sizes[i])) {
    throw argRangeError(`${name} does not have the layout (tensor sizes) of the source's parameters`);
  }
}

/** Drives a GradientSource through a CRaFT (or baseline) run. */
export class Trainer {
  /** The gradient source whose `params` this trainer updates. */
  readonly source: GradientSource;
  /** The AdamW optimizer (its `m`, `v` and `stepCount` are part of the state). */
  readonly optimizer: AdamW;
  /** 'craft' or 'baseline'. */
  readonly mode: 'craft' | 'baseline';
  /** Current λ (the weight of the retention gradient in the next step). */
  lambda: number;
  /** Optimizer steps done, skipped ones included (the next step's 0-based index). */
  stepIndex = 0;
  /** The epoch of the latest micro-batch (as reported by the source). */
  epoch = 0;
  /** Counters carried across steps and checkpoints. */
  readonly meters: TrainerMeters = { nonfiniteSkipped: 0, samples: 0 };

  readonly #o: Resolved<Omit<TrainerOptions, 'betas' | 'log' | 'sinks' | 'decayAfter'>> & { decayAfter: number[] };
  readonly #sinks: readonly StepMetricsSink[];
  readonly #log: (line: string) => void;
  readonly #gAct: GradSet;
  readonly #gRet: GradSet | undefined;
  #scratch: GradSet | undefined;  // unfused path: the materialised surgery output
  #zeroCoefficients: Float64Array | undefined;
  readonly #shard: ShardedStep | undefined;  // the sharded data-parallel step (sharded-step.ts)
  #atStepBoundary = true;  // see atStepBoundary
  #committing = false;     // set once a step starts changing the state it keeps

  /**
   * Validates every option (TypeError/RangeError naming it) and allocates the gradient
   * accumulators (two sets in CRaFT mode, one in baseline mode) and the AdamW moments.
   */
  constructor(source: GradientSource, options: TrainerOptions, internal: { shard?: ShardedStep | undefined } = {}) {
    if (source === null || typeof source !== 'object' || typeof source.accumulate !== 'function' || !(source.params instanceof GradSet)) {
      throw argTypeError(`source must be a GradientSource (params: GradSet, accumulate(), ...), got ${describeValue(source)}`);
    }
    checkOptions(options, OPTION_KEYS);
    // Every option against its row of the one table (src/train/options.ts), the CLI's limits.
    const { betas, ...o } = resolveTrainerOptions(options as unknown as Record<string, unknown>) as unknown as Resolved<Omit<TrainerOptions, 'log' | 'sinks'>>;
    const mode = o.mode;
    const sched = resolveSchedule({
      lr: o.lr, kind: o.schedule, warmup: o.warmup, decayAfter: o.decayAfter, minLr: o.minLr, totalSteps: o.steps,
    }, 'options');
    this.#o = { ...o, decayAfter: [...sched.decayAfter] };
    const sinks = options.sinks ?? [];
    if (!Array.isArray(sinks)) throw argTypeError(`options.sinks must be an Array of StepMetricsSink, got ${describeValue(sinks)}`);
    sinks.forEach((s, i) => {
      if (s === null || typeof s !== 'object' || typeof s.write !== 'function') throw argTypeError(`options.sinks[${i}] must have a write(row) method`);
    });
    if (this.#o.valEvery > 0 && typeof source.validate !== 'function') {
      throw argRangeError('options.valEvery is set but the source has no validate()');
    }
    this.#sinks = sinks;
    this.#log = options.log ?? ((line) => console.warn(line));
    this.source = source;
    this.mode = mode;
    this.lambda = this.#o.lambda;
    // Sharded: this rank's optimizer holds m and v for its own pieces of the layout only.
    this.#shard = internal.shard;
    if (this.#shard && !this.#o.fused) throw argRangeError('the sharded data-parallel step needs options.fused');
    this.optimizer = new AdamW(this.#shard ? this.#shard.view(source.params) : source.params, {
      lr: this.#o.lr, betas, eps: this.#o.adamEps, weightDecay: this.#o.weightDecay,
    });
    this.#gAct = source.params.zerosLike();
    this.#gRet = mode === 'craft' ? source.params.zerosLike() : undefined;
  }

  /** The resolved options (defaults filled in; a fresh copy, JSON-serializable). */
  get options(): ResolvedTrainerOptions {
    return { ...this.#o, decayAfter: [...this.#o.decayAfter], betas: [this.optimizer.beta1, this.optimizer.beta2] };
  }

  /** The learning rate of 0-based optimizer step `step`. */
  learningRate(step: number): number {
    return learningRate(step, {
      lr: this.#o.lr, kind: this.#o.schedule, warmup: this.#o.warmup, decayAfter: this.#o.decayAfter,
      minLr: this.#o.minLr, totalSteps: this.#o.steps,
    });
  }

  /** True when every step of the run is done. */
  get done(): boolean {
    return this.stepIndex >= this.#o.steps;
  }

  /**
   * Runs one optimizer step: `microBatches` calls to source.accumulate, the surgery's pass 1,
   * the non-finite check (a skipped step writes nothing, leaves λ and Adam's t alone, counts
   * in `nonfinite_skipped` and is logged), clipping, the AdamW update (fused or not), the
   * dual update, validation when due, and the row to every sink.
   *
   * A step that throws before it changes any kept state (while drawing or computing its
   * micro-batches, or in pass 1: the usual places for a data, device or memory error) is
   * rolled back: the source's sampler, the epoch and the meters are put back as they were,
   * `atStepBoundary` stays true and `state()` is the last completed step's, so a checkpoint
   * of it resumes exactly. A step that throws later (during the update or validation)
   * leaves `atStepBoundary` false: its state is half a step and must not be saved.
   */
  async step(): Promise<StepResult> {
    if (!this.#atStepBoundary) throw new Error('Trainer.step: an earlier step failed part-way; restore a state (restoreState) before stepping again');
    const before = { source: this.source.saveState(), epoch: this.epoch, meters: { ...this.meters } };
    this.#committing = false;
    try {
      return await this.#step();
    } catch (e) {
      if (this.#committing) {
        this.#atStepBoundary = false;
      } else {
        this.source.restoreState(before.source);
        this.epoch = before.epoch;
        Object.assign(this.meters, before.meters);
      }
      throw e;
    }
  }

  /**
   * True between steps, and after a step that failed before changing any kept state (it was
   * rolled back): `state()` is then exactly the state after step `stepIndex`.
   */
  get atStepBoundary(): boolean {
    return this.#atStepBoundary;
  }

  async #step(): Promise<StepResult> {
    const o = this.#o;
    const craft = this.mode === 'craft';
    const t0 = performance.now();
    const lr = this.learningRate(this.stepIndex);
    const lambdaBefore = this.lambda;

    // 1. Accumulate the mean of the raw gradients and losses over the micro-batches.
    // A source that can overwrite does so on the first micro-batch: no zeroing pass.
    const overwrite = this.source.supportsOverwrite === true;
    if (!overwrite) {
      this.#gAct.fill(0);
      this.#gRet?.fill(0);
    }
    const scale = 1 / o.microBatches;
    let actSum = 0, retSum = 0, samples = 0;
    for (let i = 0; i < o.microBatches; i++) {
      const r = await this.source.accumulate(this.#gAct, this.#gRet, scale, overwrite && i === 0);
      actSum += r.actionLoss;
      if (craft) retSum += typeof r.retentionLoss === 'number' ? r.retentionLoss : NaN;
      samples += r.samples;
      if (r.epoch !== undefined) this.epoch = r.epoch;
    }
    const actionLoss = actSum / o.microBatches;
    const retentionLoss = retSum / o.microBatches;
    this.meters.samples += samples;

    // 2. Pass 1 (reads only). Baseline: the norm of g_act (ret = act, λ = 0, no projection).
    const gRet = this.#gRet ?? this.#gAct;
    const reduceOptions = craft
      ? { lambda: this.lambda, eps: o.surgeryEps, projection: o.projection }
      : { lambda: 0, eps: o.surgeryEps, projection: false };
    const shard = this.#shard;
    const stats = shard ? shard.reduce(this.#gAct, gRet, reduceOptions) : craftReduce(this.#gAct, gRet, reduceOptions);

    // 3. Skip before anything is written when a gradient or loss is not finite.
    // From here on the step changes the state it keeps (meters, parameters, λ, the step).
    this.#committing = true;
    const skipped = stats.nonFinite > 0 || !Number.isFinite(actionLoss) || (craft && !Number.isFinite(retentionLoss));
    let gradNorm = stats.gradNorm;
    let clipScale = 1;
    let conflicts = stats.conflicts;
    let dots = stats.dots;
    if (skipped) {
      this.meters.nonfiniteSkipped += 1;
      this.#log(`craftgrad: step ${this.stepIndex + 1} skipped: ${stats.nonFinite} tensor(s) with a non-finite gradient, ` +
        `action loss ${actionLoss}${craft ? `, retention loss ${retentionLoss}` : ''} (${this.meters.nonfiniteSkipped} skipped so far)`);
    } else if (o.fused) {
      clipScale = this.#clipScale(gradNorm);
      const coefficients = craft ? stats.coefficients : (this.#zeroCoefficients ??= new Float64Array(this.#gAct.numTensors));
      if (shard) {
        // This rank's pieces only, then every rank's updated pieces to every rank.
        this.optimizer.stepFused(shard.view(this.#gAct), shard.view(gRet), shard.pieceCoefficients(coefficients), { lr, gradScale: clipScale });
        shard.allgather(this.source.params);
      } else {
        this.optimizer.stepFused(this.#gAct, gRet, coefficients, { lr, gradScale: clipScale });
      }
    } else {
      let grad = this.#gAct;
      if (craft) {
        this.#scratch ??= this.#gAct.zerosLike();
        const s = surgery(this.#gAct, gRet, { lambda: this.lambda, eps: o.surgeryEps, projection: o.projection, out: this.#scratch });
        grad = this.#scratch;
        gradNorm = s.gradNorm;  // the standalone surgery's norm, from the written values
        conflicts = s.conflicts;
        dots = s.dots;
      }
      clipScale = this.#clipScale(gradNorm);
      this.optimizer.step(grad, { lr, gradScale: clipScale });
    }

    // 4. Dual update from the mean retention loss (never from a skipped step).
    if (craft && o.dual && !skipped) this.lambda = dualUpdate(this.lambda, o.lambdaLr, retentionLoss, o.retentionBudget);
    this.stepIndex += 1;
    const stepMs = performance.now() - t0;

    const row: StepMetrics = { step: this.stepIndex, epoch: this.epoch, action_loss: actionLoss } as StepMetrics;
    if (craft) {
      row.retention_loss = retentionLoss;
      row.retention_budget = o.retentionBudget;
      row.lambda_before = lambdaBefore;
      row.lambda_after = this.lambda;
      row.conflict_ratio = stats.conflictRatio;
      row.num_conflicts = stats.numConflicts;
      row.num_tensors = stats.numTensors;
    }
    row.grad_norm = gradNorm;
    row.lr = lr;
    row.nonfinite_skipped = this.meters.nonfiniteSkipped;
    row.step_ms = stepMs;
    row.samples_per_s = stepMs > 0 ? (samples * 1000) / stepMs : 0;
    const detail: StepDetail = {
      conflicts: craft ? conflicts : new Uint8Array(stats.numTensors), dots, skipped, clipScale, samples,
    };

    // 5. Validation (its time is not part of step_ms).
    if (o.valEvery > 0 && this.stepIndex % o.valEvery === 0) {
      const v = await this.source.validate!({ timeLimitMs: o.valTimeLimitMs });
      row.val_action_loss = v.actionLoss;
      if (typeof v.retentionLoss === 'number') row.val_retention_loss = v.retentionLoss;
      if (v.truncated) detail.valTruncated = true;
    }
    for (const sink of this.#sinks) await sink.write(row, detail);
    return { row, detail };
  }

  // PyTorch's clip_grad_norm_: scale = min(1, max_norm / (norm + 1e-6)).
  #clipScale(norm: number): number {
    if (!(this.#o.clipNorm > 0)) return 1;
    return Math.min(1, this.#o.clipNorm / (norm + 1e-6));
  }

  /** Runs steps until `steps` are done (or `until` steps, when given); returns the last result. */
  async run(options: { until?: number; signal?: AbortSignal } = {}): Promise<StepResult | undefined> {
    const until = Math.min(options.until ?? this.#o.steps, this.#o.steps);
    let last: StepResult | undefined;
    while (this.stepIndex < until && !options.signal?.aborted) last = await this.step();
    return last;
  }

  /** Closes every sink. */
  async close(): Promise<void> {
    for (const sink of this.#sinks) await sink.close?.();
  }

  /**
   * Everything exact resume needs, at a step boundary. Tensors are copies unless `copy`
   * is false (then they are the live sets: serialise them before the next step).
   * Sharded data-parallel: collective (every rank calls it); m and v are gathered whole to
   * rank 0 (copies), the other ranks get sets of zeros in their place.
   */
  state(copy = true): TrainerState {
    const opt = this.optimizer.state(copy && !this.#shard);
    if (this.#shard) {
      opt.m = this.#shard.gather(opt.m);
      opt.v = this.#shard.gather(opt.v);
    }
    return {
      json: {
        schemaVersion: 1, step: this.stepIndex, epoch: this.epoch, lambda: this.lambda, optimizerStep: opt.step,
        meters: { ...this.meters }, source: this.source.saveState(),
      },
      params: copy ? this.source.params.to('cpu') : this.source.params,
      m: opt.m,
      v: opt.v,
    };
  }

  /** Restores a state from state() (tensors are copied in; layouts must match). */
  restoreState(state: TrainerState): void {
    const j = state?.json;
    if (!j || j.schemaVersion !== 1) throw argRangeError(`state.json.schemaVersion must be 1, got ${describeValue(j?.schemaVersion)}`);
    checkInteger(j.step, 'state.json.step', 0);
    checkInteger(j.optimizerStep, 'state.json.optimizerStep', 0);
    checkFiniteNumber(j.lambda, 'state.json.lambda', { min: 0 });
    checkInteger(j.epoch, 'state.json.epoch', 0);
    checkObject(j.meters, 'state.json.meters');
    checkInteger(j.meters.nonfiniteSkipped, 'state.json.meters.nonfiniteSkipped', 0);
    checkInteger(j.meters.samples, 'state.json.meters.samples', 0);
    // Sizes must match; the device may differ (a CPU copy restores a trainer on a GPU).
    const like = this.source.params;
    if (!(state.params instanceof GradSet) || state.params.sizes.length !== like.sizes.length ||
      state.params.sizes.some((n, i) => n !== like.sizes[i])) {
      throw argRangeError('state.params does not have the layout (tensor sizes) of the source\'s parameters');
    }
    // Sharded: the state holds the whole layout; this rank keeps its own pieces of m and v.
    const shard = this.#shard;
    if (shard) checkSizesLike(like, state.m, 'state.m'), checkSizesLike(like, state.v, 'state.v');
    this.optimizer.loadState(shard
      ? { step: j.optimizerStep, m: shard.slice(state.m), v: shard.slice(state.v) }
      : { step: j.optimizerStep, m: state.m, v: state.v });
    this.source.params.set(state.params.toFlat());
    this.source.restoreState(j.source);
    this.#atStepBoundary = true;
    this.stepIndex = j.step;
    this.epoch = j.epoch;
    this.lambda = j.lambda;
    this.meters.nonfiniteSkipped = j.meters.nonfiniteSkipped;
    this.meters.samples = j.meters.samples;
  }
}
