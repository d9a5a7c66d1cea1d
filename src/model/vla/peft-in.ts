// Reads a PEFT LoRA adapter directory made on VLA-Adapter (`lora_adapter/`, as upstream's
// finetune.py saves it and craftgrad's checkpoints write it): adapter_config.json's r and
// lora_alpha checked against the run, then every factor of every module PEFT 0.11.1's
// all-linear adapts on this model (vlaLoraModules), shapes checked (the patch embeds' Conv2d
// factors (r,3,p,p) and (D,r,1,1) read as the matrices craftgrad trains), widened to float32.
// Factors on the loss path come back by the policy's trainable names; the others are kept
// to be written back unchanged. Every problem names the file and the field.
import { join } from 'node:path';
import { FormatError } from '../../formats/errors.js';
import { readTextFile } from '../../formats/fileio.js';
import { readSafetensorsFile } from '../../formats/safetensors.js';
import type { Tensor } from '../../formats/tensor.js';
import { PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from '../qwen2/peft-adapter.js';
import type { VlaModelConfig } from './config.js';
import { type F32Tensor, tensorToF32 } from './float.js';
import { vlaLoraModules, vlaLoraName } from './outputs.js';

const FORMAT = 'peft adapter';

export interface VlaPeftRead {
  /** Factors on the loss path, by trainable name, shaped as the policy trains them. */
  trained: Record<string, Tensor>;
  /** Factors off it (last tower blocks, attn_pool, lm_head), kept as read. */
  untrained: Map<string, F32Tensor>;
  warnings: string[];
}

export async function readVlaPeftAdapter(dir: string, c: VlaModelConfig, expect: { rank: number; alpha: number }): Promise<VlaPeftRead> {
  const cfgPath = join(dir, PEFT_CONFIG_FILE), wPath = join(dir, PEFT_WEIGHTS_FILE);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readTextFile(cfgPath, FORMAT)) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof FormatError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new FormatError(FORMAT, code === 'ENOENT' ? 'is missing (a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors)'
      : `cannot be read as JSON (${(e as Error).message})`, { file: cfgPath });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new FormatError(FORMAT, 'must be a JSON object', { file: cfgPath });
  if (raw.peft_type !== undefined && raw.peft_type !== 'LORA') throw new FormatError(FORMAT, `is ${JSON.stringify(raw.peft_type)}; only LORA adapters are read`, { file: cfgPath, field: 'peft_type' });
  for (const [field, want] of [['r', expect.rank], ['lora_alpha', expect.alpha]] as const) {
    if (raw[field] !== want) throw new FormatError(FORMAT, `is ${JSON.stringify(raw[field])} but this run asks for ${want} (--${field === 'r' ? 'rank' : 'alpha'})`, { file: cfgPath, field });
  }
  const { tensors } = await readSafetensorsFile(wPath);
  const r = expect.rank, trained: Record<string, Tensor> = {}, untrained = new Map<string, F32Tensor>(), known = new Set<string>();
  for (const m of vlaLoraModules(c)) {
    for (const f of ['A', 'B'] as const) {
      const name = vlaLoraName(m.module, f);
      known.add(name);
      const t = tensors[name];
      if (t === undefined) throw new FormatError(FORMAT, `lacks ${name}: an adapter of this model has a LoRA on ${m.module}`, { file: wPath, field: name });
      const p = m.conv?.patch;
      const flat = f === 'A' ? [r, m.in] : [m.out, r];
      const shape = p !== undefined ? (f === 'A' ? [r, 3, p, p] : [m.out, r, 1, 1]) : flat;
      const data = tensorToF32(t, shape, wPath, name, FORMAT);
      if (m.trained) trained[name] = { dtype: 'F32', shape: flat, data };
      else untrained.set(name, { shape, data });
    }
  }
  const extra = Object.keys(tensors).filter((n) => !known.has(n));
  if (extra.length > 0) throw new FormatError(FORMAT, `holds tensors this model has no LoRA for: ${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ', …' : ''}`, { file: wPath, field: extra[0]! });
  const warnings: string[] = [];
  const dropout = raw.lora_dropout;
  if (typeof dropout === 'number' && dropout > 0) warnings.push(`${cfgPath}: lora_dropout ${dropout} is ignored (craftgrad trains LoRA without dropout)`);
  return { trained, untrained, warnings };
}
