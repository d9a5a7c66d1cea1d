// Qwen2 backbones from Hugging Face directories, PEFT adapters and policy files: the
// layer of a pretrained-backbone run, the policy and its training source.
export { type Qwen2Config, parseQwen2Config, qwen2ConfigToJson } from './config.js';
export {
  QWEN2_LINEARS, type Qwen2Linear, isQwen2Linear, linearModulePath, linearShape,
  type Qwen2Weights, type Qwen2LayerWeights, type LayerTensorSpec,
  qwen2LayerLayout, allocateQwen2Weights, qwen2TensorTargets, qwen2ParameterCount,
} from './weights.js';
export {
  HF_CONFIG_FILE, HF_WEIGHTS_FILE, HF_INDEX_FILE, type HfModel, type HfWeightFile, readHfConfig, loadHfModel,
} from './hf-directory.js';
export { type BaseModelRecord, baseModelRecord, baseModelMismatch } from './base-record.js';
export {
  PEFT_WEIGHTS_FILE, PEFT_CONFIG_FILE, PEFT_QWEN2_DEFAULT_TARGETS, type LoraPair, type LoraAdapter, type ReadPeftOptions,
  type PeftAdapterRead, loraTensorName, loraShapes, normalizeLoraTargets, allocateLoraAdapter, peftAdapterConfig,
  encodePeftAdapter, writePeftAdapter, readPeftAdapter,
} from './peft-adapter.js';
export {
  type PolicyShape, type PolicyWeights, policyTensorSpecs, allocatePolicyWeights, writePolicyFile, readPolicyFile,
} from './policy-file.js';
export { Qwen2Policy, type Qwen2PolicyOptions, type Qwen2Batch } from './qwen2-policy.js';
export { Qwen2PolicySource, type Qwen2PolicySourceOptions } from './qwen2-source.js';
