// A small Qwen2-style byte-level BPE tokenizer directory for tests (vocab.json, merges.txt,
// tokenizer_config.json with the chat specials), as Qwen2's tokenizer files hold them.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function bytesToUnicode() {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const m = new Map();
  bs.forEach((b, i) => m.set(b, String.fromCodePoint(cs[i])));
  return m;
}

/** A small Qwen2-style byte-level BPE directory (vocab.json, merges.txt, tokenizer_config.json). */
export function writeTinyQwen2(dir) {
  const b2u = bytesToUnicode();
  const vocab = {};
  [...b2u.keys()].sort((a, b) => a - b).forEach((b, i) => { vocab[b2u.get(b)] = i; });
  const merges = ['Ġ t', 'h e', 'Ġt he', 'Ġ a', 'o n', 'i n', 'Ġ r', 'o b', 'Ġr ob', 'Ġrob o', 'Ġrobo t', 'a c', 't i', 'ti on', 'ac tion',
    'Ġ action', 'W h', 'Wh a', 'Wha t', 's t', 'e m', 'st em', 'y stem', 's ystem', 'u s', 'us e', 'e r', 'use r', 'Ġ p', 'l a', 'Ġp la', 'Ġpla t', 'Ġplat e', 'Ċ Ċ', 'a s'];
  for (const m of merges) {
    const tok = m.split(' ').join('');
    if (!(tok in vocab)) vocab[tok] = Object.keys(vocab).length;
  }
  for (const m of merges) for (const part of m.split(' ')) assert.ok(part in vocab, `merge part ${part}`);
  const base = Object.keys(vocab).length;
  const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const added = {};
  specials.forEach((content, i) => { added[base + i] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true }; });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(join(dir, 'merges.txt'), `#version: 0.2\n${merges.join('\n')}\n`);
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ add_bos_token: false, add_prefix_space: false, added_tokens_decoder: added, bos_token: null, eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', tokenizer_class: 'Qwen2Tokenizer' }));
  return base;
}

