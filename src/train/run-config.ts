// The fully resolved configuration of a training run on the built-in model: what
// config.json holds and what a resume is checked against. Flat, snake_case keys named
// like the command-line options, so a refused resume names keys the user recognises.
// Keys, defaults and help text come from the one table of training options (options.ts).
import type { DeviceName } from '../device.js';
import type { Precision } from '../precision.js';
import { configDefaults } from './options.js';
import { RESUME_MUTABLE_KEYS } from '../run/config.js';

/**
 * The keys a resumed training run may change: the run layer's, and the base model's
 * directory (it may move; its weights are checked against the checkpoint's record instead).
 */
export const TRAIN_RESUME_MUTABLE_KEYS: readonly string[] = [...RESUME_MUTABLE_KEYS, 'model'];

export interface TrainRunConfig {
  /** Run name: the run directory is `<out>/<name>`. */
  name: string;
  out: string;
  /** Where the model, its gradients and the optimizer step live: 'cpu' or 'cuda:N'. */
  device: DeviceName;
  seed: number;
  /** 'synthetic' (the embedded dataset) or a .npz / .safetensors dataset file. */
  data: string;
  /** Keep the first N episodes of each task of the training split (null: all). */
  shots_per_task: number | null;
  /** Fraction of each task's episodes held out for validation. */
  val_fraction: number;
  steps: number;
  /** Samples per micro-batch. */
  batch_size: number;
  /** Micro-batches per optimizer step. */
  grad_accum: number;
  lr: number;
  warmup: number;
  schedule: 'constant' | 'multistep' | 'cosine';
  decay_after: number[];
  min_lr: number;
  /** Clip the global gradient norm to this value (0: off). */
  clip: number;
  weight_decay: number;
  /** CRaFT (true) or plain fine-tuning on the action loss (false: the baseline). */
  craft: boolean;
  projection: boolean;
  dual: boolean;
  /** Initial λ (fixed λ when dual is off). */
  lambda: number;
  /** Retention budget ε. */
  budget: number;
  /** Dual step size η_λ. */
  dual_lr: number;
  /** eps of the projection's denominator. */
  eps: number;
  anchor_type: 'concat' | 'aq_only' | 'raw_only';
  pooling: 'mean' | 'max';
  tokens: number;
  width: number;
  blocks: number;
  rank: number;
  alpha: number;
  /** Bridge block m (null: blocks / 2). */
  bridge_block: number | null;
  head_width: number;
  chunk: number;
  action_dims: number;
  /** Frozen base weights from a safetensors file (null: seeded initialisation). */
  base_weights: string | null;
  /** A Hugging Face Qwen2 model directory to fine-tune (null: the built-in model). */
  model: string | null;
  /** With model: the linear layers with LoRA. */
  lora_targets: ('q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj')[];
  /** With model: the positions C_R covers. */
  bridge_span: 'prefix' | 'prefix+prompt' | 'vision' | 'vision+prompt';
  /** With model: a PEFT adapter directory to start from (null: LoRA B = 0). */
  init_adapter: string | null;
  /** With model: a policy safetensors file to start from (null: seeded). */
  init_policy: string | null;
  /** With a VLA-Adapter model: the head's input perturbation std (0: none). */
  head_noise: number;
  /** With a VLA-Adapter model: camera views per sample. */
  views: number;
  /** With a VLA-Adapter model: the proprio token feeds the head. */
  use_proprio: boolean;
  /** With a Prismatic base VLM as model: the VLA-Adapter config directory that gives the shapes. */
  vla_config: string | null;
  /** With an RLDS dataset as data: the dataset_statistics.json to normalise with (null: computed). */
  stats: string | null;
  /** With an RLDS dataset as data: tf.data-style shuffle buffer of this many samples (0: a permutation per epoch). */
  shuffle_buffer: number;
  save_every: number;
  keep_last: number;
  log_every: number;
  val_every: number;
  /** Time limit of one validation pass, seconds. */
  val_time_limit: number;
  /**
   * The products' precision: 'fp32', or 'bf16' (a CUDA device: bf16 inputs, fp32 accumulation,
   * as the seed's autocast). The API and the CLI take 'auto' too (bf16 where the GPU supports
   * it, else fp32); config.json records what it resolved to. Runs that predate it are fp32.
   */
  precision: Precision | 'auto';
}

/**
 * The embedded default: the built-in model on the synthetic dataset with CRaFT, sized to
 * learn visibly in a couple of minutes on two CPU cores (bench/default-run.js measures
 * it). Generated from the table (options.ts), in config.json's key order; every option the
 * Trainer also has takes the Trainer's default but val_every (see options.ts).
 */
export const TRAIN_DEFAULTS: Readonly<TrainRunConfig> = Object.freeze(configDefaults() as unknown as TrainRunConfig);
