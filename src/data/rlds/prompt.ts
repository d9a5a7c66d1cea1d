// The prompt's token ids as VLA-Adapter's training forms them (OpenHelix-Team/VLA-Adapter at
// 838a36d): RLDSBatchTransform's minivlm path (prismatic/vla/datasets/datasets.py:41-90), which
// the released LIBERO runs train with (`--use_minivlm True`, README.md:264), with the model
// directory's own Qwen2 tokenizer through @huggingface/tokenizers (pure JS, no dependencies).
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { FormatError } from '../../formats/errors.js';
import { TOKENIZER_FILE_MAX_BYTES, readTextFile } from '../../formats/fileio.js';

/** NUM_TOKENS (prismatic/vla/constants.py:15): the action placeholders after the prompt. */
export const NUM_ACTION_TOKENS = 64;

/** QwenPromptBuilder's system prompt for model family "openvla" (prompting/qwen_prompter.py:5-8). */
export const QWEN_SYSTEM_PROMPT = 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.';

/**
 * The text upstream tokenizes for one step (datasets.py:54-74): QwenPromptBuilder("openvla")
 * with the turns human "What action should the robot take to {lang}?" and gpt "" (wrap_gpt
 * writes ' ' for an empty message), closed by get_prompt (the last newline replaced by
 * <|endoftext|>, qwen_prompter.py:26-28,66-71). `lang` is the instruction lower-cased with
 * Python's str.lower() (datasets.py:45; JavaScript's toLowerCase agrees with it on every
 * instruction but a handful of special-cased code points). add_turn strips the message and
 * removes '<image>' (qwen_prompter.py:35).
 */
export function vlaAdapterPromptText(instruction: string): string {
  const lang = instruction.toLowerCase();
  const human = `What action should the robot take to ${lang}?`.replace(/<image>/g, '').trim();
  return `<|im_start|>system\n${QWEN_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n${human}<|im_end|>\n<|im_start|>assistant\n <|im_end|><|endoftext|>`;
}

/** A tokenizer as the prompt needs it. */
export interface PromptTokenizer {
  /** Token ids of `text` with the tokenizer's special tokens (add_special_tokens=True; Qwen2 adds none). */
  encode(text: string): number[];
  /** The base vocabulary's size (tokenizer.vocab_size in transformers: the BPE model's tokens, added tokens excluded). */
  readonly baseVocabSize: number;
  /** Where the tokenizer was read from. */
  readonly source: string;
}

// Qwen2's pre-tokenizer regex (transformers' Qwen2Converter, convert_slow_tokenizer.py; the
// same pattern is in Qwen2's tokenizer.json).
const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readTextFile(path, 'tokenizer', TOKENIZER_FILE_MAX_BYTES);
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError('tokenizer', `cannot read ${what}: ${(e as Error).message}`, { file: path, cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError('tokenizer', `${what} is not JSON: ${(e as Error).message}`, { file: path, cause: e });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

type Obj = Record<string, unknown>;

/**
 * tokenizer.json as transformers' Qwen2Converter builds it from a slow Qwen2Tokenizer's
 * vocab.json and merges.txt (NFC normaliser, the Split regex then ByteLevel without its own
 * regex, BPE without unk/dropout, ByteLevel decoder and post-processor), with the added tokens
 * of tokenizer_config.json's added_tokens_decoder: what AutoTokenizer loads when a model
 * directory has no tokenizer.json.
 */
function qwen2TokenizerJson(vocab: Obj, merges: string[], config: Obj): Obj {
  const decoder = isObj(config.added_tokens_decoder) ? config.added_tokens_decoder : {};
  const added = Object.entries(decoder).map(([id, t]) => ({ id: Number(id), ...(t as Obj) }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: QWEN2_SPLIT }, behavior: 'Isolated', invert: false }, byteLevel] },
    post_processor: byteLevel, decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The model directory's tokenizer: tokenizer.json (+ tokenizer_config.json) when present, as
 * AutoTokenizer loads the fast tokenizer; otherwise vocab.json + merges.txt of a Qwen2Tokenizer
 * (tokenizer_config.json's tokenizer_class) converted as transformers converts them.
 */
export async function loadPromptTokenizer(modelDir: string): Promise<PromptTokenizer> {
  const cfgPath = join(modelDir, 'tokenizer_config.json');
  const config = (await exists(cfgPath)) ? await readJson(cfgPath, 'tokenizer_config.json') : {};
  if (!isObj(config)) throw new FormatError('tokenizer', 'tokenizer_config.json must be a JSON object', { file: cfgPath });
  const tjPath = join(modelDir, 'tokenizer.json');
  let tj: unknown, source: string;
  if (await exists(tjPath)) {
    tj = await readJson(tjPath, 'tokenizer.json');
    source = tjPath;
  } else {
    const cls = String(config.tokenizer_class ?? '');
    if (!/^Qwen2Tokenizer(Fast)?$/.test(cls)) {
      throw new FormatError('tokenizer', `no tokenizer.json, and tokenizer_class '${cls}' is not Qwen2Tokenizer (craftgrad converts only Qwen2's vocab.json + merges.txt)`, { file: tjPath });
    }
    const vocabPath = join(modelDir, 'vocab.json'), mergesPath = join(modelDir, 'merges.txt');
    const vocab = await readJson(vocabPath, 'vocab.json');
    if (!isObj(vocab)) throw new FormatError('tokenizer', 'vocab.json must map tokens to ids', { file: vocabPath });
    let mergesText: string;
    try {
      mergesText = await readTextFile(mergesPath, 'tokenizer', TOKENIZER_FILE_MAX_BYTES);
    } catch (e) {
      if (e instanceof FormatError) throw e;
      throw new FormatError('tokenizer', `no tokenizer.json and cannot read merges.txt: ${(e as Error).message}`, { file: mergesPath, cause: e });
    }
    // Qwen2Tokenizer reads merges.txt skipping a '#version' first line and blank lines.
    const merges = mergesText.split('\n').filter((l, i) => l.length > 0 && !(i === 0 && l.startsWith('#version')));
    tj = qwen2TokenizerJson(vocab, merges, config);
    source = `${vocabPath} + merges.txt`;
  }
  if (!isObj(tj) || !isObj(tj.model) || !isObj(tj.model.vocab)) throw new FormatError('tokenizer', 'tokenizer.json has no model.vocab', { file: tjPath });
  const baseVocabSize = Object.keys(tj.model.vocab).length;
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tj as never, config as never);
  } catch (e) {
    throw new FormatError('tokenizer', `cannot build the tokenizer: ${(e as Error).message}`, { file: source, cause: e });
  }
  return {
    encode: (text: string) => Array.from(tok.encode(text, { add_special_tokens: true }).ids),
    baseVocabSize,
    source,
  };
}

/**
 * ACTION_TOKEN_BEGIN_IDX: the action tokenizer's first id minus one, vocab_size − (256 + 1)
 * (action_tokenizer.py:49,57; 151386 for Qwen2.5's 151643, constants.py:13).
 */
export function actionTokenBeginIdx(tok: Pick<PromptTokenizer, 'baseVocabSize'>): number {
  return tok.baseVocabSize - 257;
}

/**
 * The id craftgrad puts at each of the 64 action positions: ACTION_TOKEN_BEGIN_IDX + 1
 * (151387 for Qwen2.5). Upstream's training puts there the action tokenizer's ids of the
 * chunk (vocab_size − digitize(a, 256 bins): 56 ids, padded to 64 with random.choices,
 * datasets.py:58-87), its inference ones (modeling_prismatic.py:751). The model replaces every
 * one of their embeddings by action_queries (docs/VLA-ADAPTER.md §4), so only their count and
 * place matter; an id above ACTION_TOKEN_BEGIN_IDX keeps upstream's action mask true there
 * (train_utils.py:20,38, `token_ids > ACTION_TOKEN_BEGIN_IDX`), and this one is the id upstream
 * itself labels placeholders with (ARBITRARY_ACTION_TOKEN_IDX, modeling_prismatic.py:774). It
 * is also an action id (the top bin), so the choice depends on nothing random.
 */
export function actionPlaceholderId(tok: Pick<PromptTokenizer, 'baseVocabSize'>): number {
  return actionTokenBeginIdx(tok) + 1;
}

/**
 * input_ids of one step (datasets.py:74-87): the prompt text's ids (no BOS: Qwen2's tokenizer
 * adds none, tokenizer_config.json add_bos_token false, so the first id is <|im_start|>, the
 * token the model keeps before the vision tokens, modeling_prismatic.py:499-502), less its last
 * three ids (' ', <|im_end|>, <|endoftext|>: `del input_ids[-3]`, `[-2]`, `[-1]` remove the last
 * three), so it ends '<|im_start|>assistant\n' as the inference prompt does (experiments/robot/
 * openvla_utils.py:783), then NUM_ACTION_TOKENS placeholders.
 */
export function promptInputIds(tok: PromptTokenizer, instruction: string, placeholders = NUM_ACTION_TOKENS): Int32Array {
  const ids = tok.encode(vlaAdapterPromptText(instruction));
  if (ids.length >= 3) ids.length -= 3;
  const out = new Int32Array(ids.length + placeholders);
  out.set(ids);
  out.fill(actionPlaceholderId(tok), ids.length);
  return out;
}
