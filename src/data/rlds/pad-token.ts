// The tokenizer's padding id, as upstream's collator pads input_ids with it
// (prismatic/util/data_utils.py:96-120, `pad_token_id`): tokenizer_config.json's pad_token
// (a string, or an AddedToken object {content}), tokenised with the model directory's own
// tokenizer; it must be one id (Qwen2's `<|endoftext|>`, 151643).
import { join } from 'node:path';
import { FormatError } from '../../formats/errors.js';
import { readTextFile } from '../../formats/fileio.js';
import type { PromptTokenizer } from './prompt.js';

/** The pad token's id, or null when tokenizer_config.json names none (or the file is absent). */
export async function readPadTokenId(modelDir: string, tok: Pick<PromptTokenizer, 'encode'>): Promise<{ id: number; token: string } | null> {
  const path = join(modelDir, 'tokenizer_config.json');
  let text: string;
  try {
    text = await readTextFile(path, 'tokenizer');
  } catch (e) {
    if (e instanceof FormatError) throw e;
    return null;
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (e) {
    throw new FormatError('tokenizer', `tokenizer_config.json is not JSON: ${(e as Error).message}`, { file: path });
  }
  const raw = config !== null && typeof config === 'object' ? (config as Record<string, unknown>).pad_token : undefined;
  const token = typeof raw === 'string' ? raw
    : raw !== null && typeof raw === 'object' && typeof (raw as Record<string, unknown>).content === 'string' ? (raw as { content: string }).content : null;
  if (token === null || token === '') return null;
  const ids = tok.encode(token);
  if (ids.length !== 1) throw new FormatError('tokenizer', `pad_token ${JSON.stringify(token)} tokenises to ${ids.length} ids, not one`, { file: path, field: 'pad_token' });
  return { id: ids[0]!, token };
}
