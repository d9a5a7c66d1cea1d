// The built-in AdapterPolicy model.
export { AdapterPolicy } from './adapter-policy.js';
export type { ModelBatch, AdapterPolicyOptions } from './adapter-policy.js';
export type { GradWriteOptions, ModelLosses, Pooling, AnchorType, TensorSpec } from './policy-types.js';
export { DEFAULT_MODEL_CONFIG, resolveModelConfig, featureWidth } from './config.js';
export type { AdapterPolicyConfig } from './config.js';
export { trainableLayout, frozenLayout, anchorLayout } from './layout.js';
export { AdapterPolicySource } from './source.js';
export type { AdapterPolicySourceOptions, AdapterPolicySourceState } from './source.js';
export { modelConfigFromRunConfig } from './checkpoint.js';
export type { BaseWeightsOrigin, ModelDescription, RunModelKeys } from './checkpoint.js';
// Pretrained Qwen2 backbones: Hugging Face directories, PEFT adapters, policy files.
export * from './qwen2/index.js';
