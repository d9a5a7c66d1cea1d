// The two `.pt` operations the VLA files need, behind a small interface: read a file
// torch.save wrote (decoded to dicts as Maps, tensors as the project's Tensor) and write a
// state dict that torch.load(weights_only=True) reads. The implementation is the formats
// layer's strict reader/writer (src/formats/torch-pt.ts: readTorchPtFile, writeTorchPtFile),
// looked up at run time so this module builds before that file is merged; a caller (or a
// test) may pass its own. The value types mirror torch-pt.ts's exactly.
import * as formats from '../../formats/index.js';
import { FormatError } from '../../formats/errors.js';
import type { Tensor } from '../../formats/tensor.js';

/** A dict key as read: Python str, int, float, bool or None. */
export type PtKey = string | number | bigint | boolean | null;

/** What a `.pt` file decodes to (torch-pt.ts's TorchPtValue). */
export type PtValue = null | boolean | number | bigint | string | Tensor | PtValue[] | Map<PtKey, PtValue>;

export interface TorchPtIo {
  /** Reads and decodes a `.pt` file; errors (FormatError) name the path and the member or global at fault. */
  readTorchPtFile(path: string): Promise<PtValue>;
  /** Writes [name, tensor] pairs as an OrderedDict state dict, atomically (temp file + rename). */
  writeTorchPtFile(path: string, tensors: Iterable<readonly [string, Tensor]>): Promise<void>;
}

/** The formats layer's reader and writer, or an error saying they are not there. */
export function defaultTorchPtIo(): TorchPtIo {
  const f = formats as unknown as Partial<TorchPtIo>;
  if (typeof f.readTorchPtFile === 'function' && typeof f.writeTorchPtFile === 'function') {
    return { readTorchPtFile: f.readTorchPtFile, writeTorchPtFile: f.writeTorchPtFile };
  }
  throw new Error('craftgrad: this build has no torch .pt reader/writer (src/formats/torch-pt.ts); pass options.torchPt');
}

function isTensor(v: unknown): v is Tensor {
  return v !== null && typeof v === 'object' && !(v instanceof Map) && !Array.isArray(v)
    && typeof (v as Tensor).dtype === 'string' && Array.isArray((v as Tensor).shape);
}

/**
 * The state dict (name -> tensor, in file order) at `path` inside a decoded `.pt`, with
 * `stripPrefix` removed from the names that have it (DDP's 'module.'). Every key must be a
 * str and every value a tensor; errors name the file and the key.
 */
export function ptStateDict(value: PtValue, file: string, format: string, path: readonly string[] = [], stripPrefix = ''): Map<string, Tensor> {
  const fail = (field: string, detail: string): never => {
    throw new FormatError(format, detail, { file, field });
  };
  let node: PtValue = value;
  let where = '';
  for (const k of path) {
    if (!(node instanceof Map)) fail(where || 'the top', `is not a dict, so has no key ${JSON.stringify(k)}`);
    const next = (node as Map<PtKey, PtValue>).get(k);
    where += `[${JSON.stringify(k)}]`;
    if (next === undefined) fail(where, 'is missing');
    node = next!;
  }
  if (!(node instanceof Map)) fail(where || 'the top', 'is not a dict (a state dict is an OrderedDict of name -> tensor)');
  const out = new Map<string, Tensor>();
  for (const [k, v] of node as Map<PtKey, PtValue>) {
    const field = `${where}[${JSON.stringify(k)}]`;
    if (typeof k !== 'string') fail(field, `key is ${typeof k}, not a str`);
    if (!isTensor(v)) fail(field, 'is not a tensor');
    const name = stripPrefix !== '' && (k as string).startsWith(stripPrefix) ? (k as string).slice(stripPrefix.length) : (k as string);
    if (out.has(name)) fail(field, `is "${name}" once "${stripPrefix}" is removed, which another key also is`);
    out.set(name, v as Tensor);
  }
  return out;
}
