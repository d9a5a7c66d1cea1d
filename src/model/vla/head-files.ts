// The action head and proprio projector files of a VLA-Adapter checkpoint directory
// (finetune.py:520-575): `action_head--<step>_checkpoint.pt` (L1RegressionActionHead with
// the Pro blocks, action_heads.py:20-121, :287-345) and `proprio_projector--<step>_checkpoint.pt`
// (ProprioProjector, projectors.py:6-24), torch.save'd state dicts of DDP-wrapped modules
// (keys prefixed `module.`, stripped here as upstream's load_checkpoint does, finetune.py:132-150).
// Tensors come back float32 (bf16/fp16 widened), named as native/core/vla_desc.h's trainable
// tensors (`action_head.model.…`, `proprio_projector.…`); each Pro block's film_gen (never
// called upstream, never trained) is kept aside to be written back unchanged.
//
// Sizes: D = text_config.hidden_size; A (action dims) from model.fc2.weight; the block count
// NB from the mlp_resnet_blocks keys (0..NB−1, no gaps; 1 ≤ NB ≤ num_hidden_layers since
// block i reads hidden_states[i+1]); the proprio width from fc1.weight. The chunk length is
// in no shape (the head's input is A·D per chunk step). A file whose keys or shapes differ
// from what these imply is an error naming the file and the key.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '../../formats/errors.js';
import type { Tensor } from '../../formats/tensor.js';
import { type F32Tensor, tensorToF32 } from './float.js';
import { type TorchPtIo, ptStateDict } from './torch-pt-io.js';

const FORMAT = 'vla head';

/** The linears of a Pro block after ffn, in vla_desc order. */
export const HEAD_BLOCK_LINEARS = ['q_proj', 'k_self', 'v_self', 'k_adapter', 'v_adapter', 'k_task', 'v_task', 'o_proj'] as const;

export const ACTION_HEAD_PREFIX = 'action_head.';
export const PROPRIO_PREFIX = 'proprio_projector.';
/** DistributedDataParallel's prefix on every key upstream saves. */
export const DDP_PREFIX = 'module.';

export interface HeadShape {
  hiddenSize: number;
  actionDims: number;
  headBlocks: number;
}

/**
 * The action head's state-dict keys (without `action_head.`) and shapes, in the order
 * torch's state_dict() lists them (a module's own parameters before its children's:
 * gating_factor first in each block), film_gen included.
 */
export function actionHeadStateDict(s: HeadShape): [string, number[]][] {
  const D = s.hiddenSize, A = s.actionDims;
  const out: [string, number[]][] = [
    ['model.layer_norm1.weight', [A * D]], ['model.layer_norm1.bias', [A * D]],
    ['model.fc1.weight', [D, A * D]], ['model.fc1.bias', [D]],
  ];
  for (let b = 0; b < s.headBlocks; b++) {
    const p = `model.mlp_resnet_blocks.${b}.`;
    out.push([`${p}gating_factor`, [1]]);
    out.push([`${p}ffn.0.weight`, [D]], [`${p}ffn.0.bias`, [D]], [`${p}ffn.1.weight`, [D, D]], [`${p}ffn.1.bias`, [D]]);
    for (const l of HEAD_BLOCK_LINEARS) out.push([`${p}${l}.weight`, [D, D]], [`${p}${l}.bias`, [D]]);
    out.push([`${p}film_gen.0.weight`, [2 * D, D]], [`${p}film_gen.0.bias`, [2 * D]]);
  }
  out.push(['model.layer_norm2.weight', [D]], ['model.layer_norm2.bias', [D]], ['model.fc2.weight', [A, D]], ['model.fc2.bias', [A]]);
  return out;
}

/** The proprio projector's keys and shapes, in state_dict() order. */
export function proprioStateDict(hiddenSize: number, proprioDim: number): [string, number[]][] {
  const D = hiddenSize;
  return [['fc1.weight', [D, proprioDim]], ['fc1.bias', [D]], ['fc2.weight', [D, D]], ['fc2.bias', [D]]];
}

export function isFilmGen(name: string): boolean {
  return /\.film_gen\./.test(name);
}

export interface VlaHeadFiles {
  /** The <step> of the file names ('latest' or digits). */
  step: string;
  headFile: string;
  /** null when the directory has no proprio projector (proprioDim 0). */
  proprioFile: string | null;
  headBlocks: number;
  actionDims: number;
  proprioDim: number;
  /** Trainable tensors by vla_desc name: proprio_projector.* then action_head.model.* (film_gen excluded). */
  trainable: Map<string, F32Tensor>;
  /** action_head.model.mlp_resnet_blocks.i.film_gen.0.{weight,bias}: kept, written back unchanged. */
  filmGen: Map<string, F32Tensor>;
}

export interface ReadHeadOptions {
  torchPt: TorchPtIo;
  hiddenSize: number;
  numLayers: number;
  /** Which <step> to read when the directory has several. */
  step?: string | number;
  /** When given, the files must have exactly these. */
  headBlocks?: number;
  actionDims?: number;
  proprioDim?: number;
}

const HEAD_RE = /^action_head--(\d+|latest)_checkpoint\.pt$/;
const PROPRIO_RE = /^proprio_projector--(\d+|latest)_checkpoint\.pt$/;

/**
 * The head files of `dir`, or null when it has no action_head file. Several steps need
 * options.step. A proprio projector file must have the head's step when present.
 */
export async function readVlaHeadFiles(dir: string, options: ReadHeadOptions): Promise<VlaHeadFiles | null> {
  const names = await readdir(dir);
  const heads = new Map<string, string>(), proprios = new Map<string, string>();
  for (const n of names) {
    const h = HEAD_RE.exec(n), p = PROPRIO_RE.exec(n);
    if (h) heads.set(h[1]!, n);
    if (p) proprios.set(p[1]!, n);
  }
  if (heads.size === 0) {
    if (proprios.size > 0) {
      throw new FormatError(FORMAT, `has ${[...proprios.values()][0]} but no action_head--<step>_checkpoint.pt beside it`, { file: dir });
    }
    return null;
  }
  let step: string;
  if (options.step !== undefined) {
    step = String(options.step);
    if (!heads.has(step)) throw new FormatError(FORMAT, `has no action_head--${step}_checkpoint.pt (it has ${[...heads.values()].join(', ')})`, { file: dir, field: 'step' });
  } else if (heads.size > 1) {
    throw new FormatError(FORMAT, `has action head files of several steps (${[...heads.values()].sort().join(', ')}); say which step to read`, { file: dir, field: 'step' });
  } else {
    step = [...heads.keys()][0]!;
  }
  const headFile = join(dir, heads.get(step)!);
  const proprioName = proprios.get(step);
  if (proprioName === undefined && proprios.size > 0) {
    throw new FormatError(FORMAT, `has proprio projector files (${[...proprios.values()].join(', ')}) but none of step ${step}, the action head's`, { file: dir });
  }
  const proprioFile = proprioName === undefined ? null : join(dir, proprioName);
  if (proprioFile === null && options.proprioDim !== undefined && options.proprioDim > 0) {
    throw new FormatError(FORMAT, `is missing: the run uses proprio (proprioDim ${options.proprioDim})`, { file: join(dir, `proprio_projector--${step}_checkpoint.pt`) });
  }

  const trainable = new Map<string, F32Tensor>();
  let proprioDim = 0;
  if (proprioFile !== null) {
    const sd = ptStateDict(await options.torchPt.readTorchPtFile(proprioFile), proprioFile, FORMAT, [], DDP_PREFIX);
    const fc1 = sd.get('fc1.weight');
    if (fc1 === undefined) throw new FormatError(FORMAT, 'is missing', { file: proprioFile, field: 'module.fc1.weight' });
    if (fc1.shape.length !== 2 || fc1.shape[0] !== options.hiddenSize || fc1.shape[1]! < 1) {
      throw new FormatError(FORMAT, `has shape [${fc1.shape.join(', ')}] but [${options.hiddenSize} (text_config.hidden_size), proprio dims] is needed`, { file: proprioFile, field: 'module.fc1.weight' });
    }
    proprioDim = fc1.shape[1]!;
    if (options.proprioDim !== undefined && options.proprioDim !== proprioDim) {
      throw new FormatError(FORMAT, `has ${proprioDim} proprio inputs but the run has proprioDim ${options.proprioDim}`, { file: proprioFile, field: 'module.fc1.weight' });
    }
    for (const [k, t] of checkedStateDict(sd, proprioStateDict(options.hiddenSize, proprioDim), proprioFile)) trainable.set(PROPRIO_PREFIX + k, t);
  }

  const sd = ptStateDict(await options.torchPt.readTorchPtFile(headFile), headFile, FORMAT, [], DDP_PREFIX);
  const fc2 = sd.get('model.fc2.weight');
  if (fc2 === undefined) throw new FormatError(FORMAT, 'is missing (an L1RegressionActionHead ends with model.fc2)', { file: headFile, field: 'module.model.fc2.weight' });
  if (fc2.shape.length !== 2 || fc2.shape[1] !== options.hiddenSize || fc2.shape[0]! < 1) {
    throw new FormatError(FORMAT, `has shape [${fc2.shape.join(', ')}] but [action dims, ${options.hiddenSize} (text_config.hidden_size)] is needed`, { file: headFile, field: 'module.model.fc2.weight' });
  }
  const actionDims = fc2.shape[0]!;
  if (options.actionDims !== undefined && options.actionDims !== actionDims) {
    throw new FormatError(FORMAT, `has ${actionDims} action dims but the run has ${options.actionDims}`, { file: headFile, field: 'module.model.fc2.weight' });
  }
  let headBlocks = 0;
  let lastBlockKey = '';
  for (const k of sd.keys()) {
    const m = /^model\.mlp_resnet_blocks\.(\d+)\./.exec(k);
    if (m && Number(m[1]) + 1 > headBlocks) {
      headBlocks = Number(m[1]) + 1;
      lastBlockKey = k;
    }
  }
  if (headBlocks === 0) throw new FormatError(FORMAT, 'is missing: the head has no Pro blocks', { file: headFile, field: 'module.model.mlp_resnet_blocks.0.q_proj.weight' });
  if (headBlocks > options.numLayers) {
    throw new FormatError(FORMAT, `makes ${headBlocks} head blocks but the language model has ${options.numLayers} layers (head block i reads hidden_states[i+1], so at most ${options.numLayers})`, { file: headFile, field: `module.${lastBlockKey}` });
  }
  if (options.headBlocks !== undefined && options.headBlocks !== headBlocks) {
    throw new FormatError(FORMAT, `makes ${headBlocks} head blocks but the run has ${options.headBlocks}`, { file: headFile, field: `module.${lastBlockKey}` });
  }
  const filmGen = new Map<string, F32Tensor>();
  const head = checkedStateDict(sd, actionHeadStateDict({ hiddenSize: options.hiddenSize, actionDims, headBlocks }), headFile);
  for (const [k, t] of head) (isFilmGen(k) ? filmGen : trainable).set(ACTION_HEAD_PREFIX + k, t);
  const ordered = new Map<string, F32Tensor>();
  for (const [k] of headTrainableSpecs({ hiddenSize: options.hiddenSize, actionDims, headBlocks, proprioDim })) ordered.set(k, trainable.get(k)!);
  return { step, headFile, proprioFile, headBlocks, actionDims, proprioDim, trainable: ordered, filmGen };
}

/** Every key of `want` present with its shape, nothing else; errors name the file and the (module.-prefixed) key. */
function checkedStateDict(sd: Map<string, Tensor>, want: [string, number[]][], file: string): [string, F32Tensor][] {
  const known = new Set(want.map(([k]) => k));
  for (const k of sd.keys()) {
    if (!known.has(k)) throw new FormatError(FORMAT, 'is not expected (extra tensor for the shapes the other keys imply)', { file, field: `module.${k}` });
  }
  return want.map(([k, shape]) => {
    const t = sd.get(k);
    if (t === undefined) throw new FormatError(FORMAT, 'is missing', { file, field: `module.${k}` });
    return [k, { shape, data: tensorToF32(t, shape, file, `module.${k}`, FORMAT) }];
  });
}

/** Names and shapes of the trainable head tensors in vlaTrainable order (for checks and writers). */
export function headTrainableSpecs(s: HeadShape & { proprioDim: number }): [string, number[]][] {
  const D = s.hiddenSize, A = s.actionDims, h = `${ACTION_HEAD_PREFIX}model.`;
  const out: [string, number[]][] = [];
  if (s.proprioDim > 0) for (const [k, sh] of proprioStateDict(D, s.proprioDim)) out.push([PROPRIO_PREFIX + k, sh]);
  out.push([`${h}layer_norm1.weight`, [A * D]], [`${h}layer_norm1.bias`, [A * D]], [`${h}fc1.weight`, [D, A * D]], [`${h}fc1.bias`, [D]]);
  for (let b = 0; b < s.headBlocks; b++) {
    const p = `${h}mlp_resnet_blocks.${b}.`;
    out.push([`${p}ffn.0.weight`, [D]], [`${p}ffn.0.bias`, [D]], [`${p}ffn.1.weight`, [D, D]], [`${p}ffn.1.bias`, [D]]);
    for (const l of HEAD_BLOCK_LINEARS) out.push([`${p}${l}.weight`, [D, D]], [`${p}${l}.bias`, [D]]);
    out.push([`${p}gating_factor`, [1]]);
  }
  out.push([`${h}layer_norm2.weight`, [D]], [`${h}layer_norm2.bias`, [D]], [`${h}fc2.weight`, [A, D]], [`${h}fc2.bias`, [A]]);
  return out;
}
