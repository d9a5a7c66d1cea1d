// The defaults of a CRaFT run, stated once. The Trainer fills absent options from this
// table and `craftgrad train` (TRAIN_DEFAULTS in run-config.ts) takes the same values
// under its option names, so the library and the CLI train the same way by default.
// The values are those of the README's default run (the built-in model on the synthetic
// dataset): a budget ε of 2e-4 with a dual step of 100 makes λ rise and relax as the
// retention loss meets its budget within the run; warmup 50 and lr 1e-3 learn visibly in
// 1,500 steps. Optimizer constants follow PyTorch's AdamW.
// One option differs on purpose: the Trainer validates only when asked (valEvery 0), since
// a GradientSource need not have a validation split (AdapterPolicySource's validate()
// fails without one); the CLI always splits off validation data and validates every 100
// steps (run-config.ts).

/** Every default of the Trainer's options (see TrainerOptions for what each one means). */
export interface TrainerDefaults {
  readonly mode: 'craft' | 'baseline';
  readonly microBatches: number;
  readonly projection: boolean;
  readonly dual: boolean;
  readonly lambda: number;
  readonly lambdaLr: number;
  readonly retentionBudget: number;
  readonly surgeryEps: number;
  readonly lr: number;
  readonly betas: readonly [number, number];
  readonly adamEps: number;
  readonly weightDecay: number;
  readonly schedule: 'constant' | 'multistep' | 'cosine';
  readonly warmup: number;
  readonly decayAfter: readonly number[];
  readonly minLr: number;
  readonly clipNorm: number;
  readonly fused: boolean;
  readonly valTimeLimitMs: number;
}

/** The defaults of the Trainer and of `craftgrad train` (one table for both). */
export const TRAINER_DEFAULTS: TrainerDefaults = Object.freeze({
  mode: 'craft',
  microBatches: 1,
  projection: true,
  dual: true,
  lambda: 0,
  lambdaLr: 100,
  retentionBudget: 2e-4,
  surgeryEps: 1e-8,
  lr: 1e-3,
  betas: Object.freeze([0.9, 0.999] as const),
  adamEps: 1e-8,
  weightDecay: 0.01,
  schedule: 'constant',
  warmup: 50,
  decayAfter: Object.freeze([] as number[]),
  minLr: 0,
  clipNorm: 0,
  fused: true,
  valTimeLimitMs: 10_000,
});
