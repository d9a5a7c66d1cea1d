// The types every model of ARCHITECTURE.md §4 shares (the built-in AdapterPolicy and the
// Qwen2 backbone's Qwen2Policy): how features are pooled and compared, the step modes,
// how a gradient call writes its sets, what a step returns, and a named tensor of a layout.
// Plain types and their value lists: no native code.
import type { RawModelMode } from '../../binding.js';

/** Pooling over tokens. */
export type Pooling = 'mean' | 'max';
export const POOLINGS: readonly Pooling[] = Object.freeze(['mean', 'max']);

/** Which pooled features f (and the retention loss) use: concat(C_R, C_AQ), C_AQ only or C_R only. */
export type AnchorType = 'concat' | 'aq_only' | 'raw_only';
export const ANCHOR_TYPES: readonly AnchorType[] = Object.freeze(['concat', 'aq_only', 'raw_only']);

/**
 * What one native step computes: both losses and both gradient sets ('craft'), the action
 * loss and its gradient ('baseline'), or losses only ('eval', 'evalRetention').
 */
export type PolicyMode = RawModelMode;

/** How a gradient call writes its GradSets. */
export interface GradWriteOptions {
  /** Add into the sets (g += scale·grad) instead of overwriting them (g = scale·grad). Default false. */
  accumulate?: boolean;
  /** Factor applied to the gradients, e.g. 1/microBatches for a mean. Default 1. */
  scale?: number;
}

/** What a CRaFT step (and an evaluation) returns. */
export interface ModelLosses {
  /** Mean L1 over the batch's K·A action values. */
  actionLoss: number;
  /** Mean squared error between pooled features under current and anchor weights (CRaFT calls only). */
  retentionLoss: number;
}

/** What a baseline step returns. */
export interface ActionLoss {
  /** Mean L1 over the batch's K·A action values. */
  actionLoss: number;
}

/** The options of an evaluation. */
export interface EvaluateOptions {
  /** Also compute the retention loss (an anchor forward); else it is NaN. Default false. */
  retention?: boolean;
}

/** One named tensor of a layout. */
export interface TensorSpec {
  name: string;
  shape: number[];
  size: number;
}
