// AdapterPolicy configuration: the options of ARCHITECTURE.md §4, their defaults and checks,
// and the packed form the native layer takes.
import { checkChoice, checkFiniteNumber, checkInteger, checkOptions } from '../validate.js';
import { ANCHOR_TYPES, POOLINGS, type AnchorType, type Pooling } from './policy-types.js';

/** The built-in model's shape. Every field has a default ({@link DEFAULT_MODEL_CONFIG}). */
export interface AdapterPolicyConfig {
  /** Tokens per sample, T. */
  tokens: number;
  /** Token width, D. */
  width: number;
  /** Residual blocks, L. */
  blocks: number;
  /** LoRA rank, r. */
  rank: number;
  /** LoRA alpha: the update is (alpha / rank)·B·A. */
  alpha: number;
  /** Bridge block m (1..L): C_R is h after block m. Default floor(L/2) (at least 1). */
  bridgeBlock: number;
  /** Pooling over tokens. */
  pooling: Pooling;
  /** Which pooled features f (and the retention loss) use: concat(C_R, C_AQ), C_AQ only or C_R only. */
  anchorType: AnchorType;
  /** Action head hidden width, H. */
  headWidth: number;
  /** Action chunk length, K. */
  chunk: number;
  /** Action dimensions per step, A. */
  actionDims: number;
}

/** The default configuration (the benchmark's "default"). bridgeBlock follows blocks. */
export const DEFAULT_MODEL_CONFIG: Readonly<Omit<AdapterPolicyConfig, 'bridgeBlock'>> = Object.freeze({
  tokens: 16, width: 256, blocks: 4, rank: 16, alpha: 32, pooling: 'mean', anchorType: 'concat',
  headWidth: 256, chunk: 8, actionDims: 7,
});

const KEYS = ['tokens', 'width', 'blocks', 'rank', 'alpha', 'bridgeBlock', 'pooling', 'anchorType', 'headWidth', 'chunk', 'actionDims'] as const;
const LIMITS: Record<string, number> = { tokens: 65536, width: 16384, blocks: 1024, rank: 16384, headWidth: 65536, chunk: 4096, actionDims: 4096 };

/** Fills defaults and checks every field; errors name the field (`config.rank`). */
export function resolveModelConfig(config: Partial<AdapterPolicyConfig> = {}): AdapterPolicyConfig {
  checkOptions(config, KEYS, 'config');
  const c = { ...DEFAULT_MODEL_CONFIG, ...config } as AdapterPolicyConfig;
  for (const k of Object.keys(LIMITS)) checkInteger(c[k as keyof AdapterPolicyConfig], `config.${k}`, 1, LIMITS[k]!);
  checkFiniteNumber(c.alpha, 'config.alpha', { min: 0, exclusive: true });
  c.bridgeBlock = config.bridgeBlock ?? Math.max(1, Math.floor(c.blocks / 2));
  checkInteger(c.bridgeBlock, 'config.bridgeBlock', 1, c.blocks);
  checkChoice(c.pooling, 'config.pooling', POOLINGS);
  checkChoice(c.anchorType, 'config.anchorType', ANCHOR_TYPES);
  return Object.freeze(c);
}

/** Feature width F: 2D for concat, D otherwise. */
export function featureWidth(c: AdapterPolicyConfig): number {
  return c.anchorType === 'concat' ? 2 * c.width : c.width;
}
