// The defaults of the Trainer, generated from the one table of training options
// (options.ts), where `craftgrad train` takes its defaults too (TRAIN_DEFAULTS in
// run-config.ts), so the library and the CLI train the same way by default.
// The values are those of the README's default run (the built-in model on the synthetic
// dataset): a budget ε of 2e-4 with a dual step of 100 makes λ rise and relax as the
// retention loss meets its budget within the run; warmup 50 and lr 1e-3 learn visibly in
// 1,500 steps. Optimizer constants follow PyTorch's AdamW.
// One option differs on purpose: the Trainer validates only when asked (valEvery 0), since
// a GradientSource need not have a validation split (AdapterPolicySource's validate()
// fails without one); the CLI always splits off validation data and validates every 100
// steps.
import { trainerDefaults } from './options.js';

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
  readonly valEvery: number;
  readonly valTimeLimitMs: number;
}

/** The defaults of the Trainer and of `craftgrad train` (one table for both). */
export const TRAINER_DEFAULTS: TrainerDefaults = Object.freeze(trainerDefaults() as unknown as TrainerDefaults);
