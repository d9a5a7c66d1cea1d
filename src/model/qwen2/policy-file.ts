// The trained policy on top of the backbone, in one safetensors file: the learnable
// action queries and the action head head(h) = fc2·gelu(fc1·h + b1) + b2. Names follow
// PyTorch's nn.Linear (weight (out, in), bias (out)), so the file loads into a module
// with `action_queries` and `head.fc1` / `head.fc2` as it is.
import { readSafetensorsFile, writeSafetensorsFile } from '../../formats/safetensors.js';
import { argRangeError, describeValue } from '../../errors.js';
import { checkInteger, checkObject } from '../../validate.js';
import { publishFile } from './atomic-file.js';
import { floatTensor, refuseExtraTensors } from './float-tensors.js';

const FORMAT = 'policy';

export interface PolicyShape {
  /** Q, the number of action queries (= the chunk length K) */
  queries: number;
  /** D, the backbone's hidden size */
  width: number;
  /** H, the head's hidden width */
  headWidth: number;
  /** A, action dimensions per step */
  actionDims: number;
}

export interface PolicyWeights extends PolicyShape {
  /** (Q, D) */
  actionQueries: Float32Array;
  /** (H, D) */
  fc1Weight: Float32Array;
  /** (H) */
  fc1Bias: Float32Array;
  /** (A, H) */
  fc2Weight: Float32Array;
  /** (A) */
  fc2Bias: Float32Array;
}

type Field = 'actionQueries' | 'fc1Weight' | 'fc1Bias' | 'fc2Weight' | 'fc2Bias';

/** The file's tensors: name, field and shape. */
export function policyTensorSpecs(s: PolicyShape): { name: string; field: Field; shape: number[] }[] {
  return [
    { name: 'action_queries', field: 'actionQueries', shape: [s.queries, s.width] },
    { name: 'head.fc1.weight', field: 'fc1Weight', shape: [s.headWidth, s.width] },
    { name: 'head.fc1.bias', field: 'fc1Bias', shape: [s.headWidth] },
    { name: 'head.fc2.weight', field: 'fc2Weight', shape: [s.actionDims, s.headWidth] },
    { name: 'head.fc2.bias', field: 'fc2Bias', shape: [s.actionDims] },
  ];
}

function checkShape(s: PolicyShape, what: string): void {
  checkObject(s, what);
  for (const k of ['queries', 'width', 'headWidth', 'actionDims'] as const) checkInteger(s[k], `${what}.${k}`, 1);
}

/** Zeros of the given shape. */
export function allocatePolicyWeights(s: PolicyShape): PolicyWeights {
  checkShape(s, 'shape');
  const out = { queries: s.queries, width: s.width, headWidth: s.headWidth, actionDims: s.actionDims } as PolicyWeights;
  for (const t of policyTensorSpecs(s)) out[t.field] = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
  return out;
}

/** Writes the policy as F32 safetensors, atomically (temp file, fsync, rename). */
export async function writePolicyFile(path: string, p: PolicyWeights): Promise<void> {
  checkShape(p, 'policy');
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const t of policyTensorSpecs(p)) {
    const data = p[t.field];
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (!(data instanceof Float32Array) || data.length !== n) {
      throw argRangeError(`policy.${t.field} must be a Float32Array of ${n} values (shape [${t.shape.join(', ')}]), got ${data instanceof Float32Array ? data.length : describeValue(data)}`);
    }
    tensors[t.name] = { dtype: 'F32', shape: t.shape, data };
  }
  await publishFile(path, (tmp) => writeSafetensorsFile(tmp, tensors));
}

/**
 * Reads a policy file for a run of the given shape (--init-policy): every tensor present
 * with exactly its shape, float32/16 or bf16 (widened), finite, and nothing else.
 */
export async function readPolicyFile(path: string, expect: PolicyShape): Promise<PolicyWeights> {
  checkShape(expect, 'expect');
  const { tensors } = await readSafetensorsFile(path);
  const specs = policyTensorSpecs(expect);
  const out = { queries: expect.queries, width: expect.width, headWidth: expect.headWidth, actionDims: expect.actionDims } as PolicyWeights;
  for (const t of specs) out[t.field] = floatTensor(tensors, t.name, t.shape, path, FORMAT);
  refuseExtraTensors(tensors, new Set(specs.map((t) => t.name)), path, FORMAT, `a policy file holds ${specs.map((t) => t.name).join(', ')}`);
  return out;
}

