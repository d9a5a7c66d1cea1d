// Hugging Face Qwen2 directories: config.json checks, weights in F32 / BF16 / F16, single
// file and shards, every error named (file and field or tensor), sha256 of each weight
// file, and the base-model record a checkpoint keeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  loadHfModel, readHfConfig, parseQwen2Config, qwen2LayerLayout, qwen2ParameterCount, baseModelRecord, baseModelMismatch,
} from '../dist/model/qwen2/index.js';
import { FormatError } from '../dist/formats/index.js';
import { TINY_QWEN2_CONFIG, qwen2TensorShapes, writeTinyHfModel } from './helpers/hf-tiny.mjs';
import { withTempDir } from './helpers/temp-dir.mjs';

/** Every tensor of the loaded weights, by its Hugging Face name. */
function loadedByName(m) {
  const out = new Map([['model.embed_tokens.weight', m.weights.embedTokens], ['model.norm.weight', m.weights.finalNorm]]);
  const { tensors } = qwen2LayerLayout(m.config);
  m.weights.layers.forEach((layer, l) => { for (const t of tensors) out.set(`model.layers.${l}.${t.suffix}`, layer[t.field]); });
  return out;
}

function assertLoadedEquals(m, expected) {
  const got = loadedByName(m);
  for (const [name, want] of expected) {
    if (name === 'lm_head.weight') continue;
    assert.ok(got.has(name), `loaded weights lack ${name}`);
    assert.deepEqual(got.get(name), want, name);
  }
  assert.equal(got.size, [...expected.keys()].filter((n) => n !== 'lm_head.weight').length);
}

const sha = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

test('config: tiny and Qwen2.5-0.5B configs read as transformers reads them', () => {
  const c = parseQwen2Config(TINY_QWEN2_CONFIG, 'config.json');
  assert.deepEqual({ ...c }, {
    hiddenSize: 64, numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128, vocabSize: 128,
    rmsNormEps: 1e-6, ropeTheta: 10000, tieWordEmbeddings: true, maxPositionEmbeddings: 512, hiddenAct: 'silu', torchDtype: 'float32',
  });
  // Qwen2.5-0.5B's config.json (transformers 4.40 era): sliding_window is set but inert.
  const q = parseQwen2Config({
    architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151643, hidden_act: 'silu',
    hidden_size: 896, initializer_range: 0.02, intermediate_size: 4864, max_position_embeddings: 32768, max_window_layers: 24,
    model_type: 'qwen2', num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-06,
    rope_theta: 1000000.0, sliding_window: 32768, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.40.1',
    use_cache: true, use_mrope: false, use_sliding_window: false, vocab_size: 151936,
  }, 'config.json');
  assert.equal(q.headDim, 64);
  assert.equal(q.ropeTheta, 1e6);
  // ~494M parameters (the tied lm_head is not counted twice).
  assert.equal(qwen2ParameterCount(q), 494032768);
  // transformers 5 spelling: rope_parameters and dtype; num_key_value_heads null = MHA; defaults filled.
  const v5 = parseQwen2Config({
    model_type: 'qwen2', hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: null, intermediate_size: 96,
    vocab_size: 50, rope_parameters: { rope_type: 'default', rope_theta: 500000 }, dtype: 'bfloat16', layer_types: ['full_attention', 'full_attention'],
  }, 'config.json');
  assert.equal(v5.numKvHeads, 4);
  assert.equal(v5.ropeTheta, 500000);
  assert.equal(v5.torchDtype, 'bfloat16');
  assert.equal(v5.rmsNormEps, 1e-6);
  assert.equal(v5.tieWordEmbeddings, false);
  assert.equal(parseQwen2Config({ ...TINY_QWEN2_CONFIG, rope_theta: undefined }, 'c').ropeTheta, 10000);
});

test('config: every unsupported architecture or option is refused naming the file and the field', () => {
  const cases = [
    [{ model_type: 'llama' }, 'model_type'],
    [{ architectures: ['Qwen2Model'] }, 'architectures'],
    [{ architectures: ['Qwen2ForSequenceClassification'] }, 'architectures'],
    [{ use_sliding_window: true }, 'use_sliding_window'],
    [{ layer_types: ['full_attention', 'sliding_attention', 'full_attention', 'full_attention'] }, 'layer_types[1]'],
    [{ layer_types: ['full_attention'] }, 'layer_types'],
    [{ rope_scaling: { type: 'linear', factor: 2 } }, 'rope_scaling'],
    [{ rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } }, 'rope_scaling'],
    [{ rope_parameters: { rope_type: 'default', rope_theta: 10000, partial_rotary_factor: 0.5 } }, 'rope_parameters.partial_rotary_factor'],
    [{ rope_parameters: { rope_type: 'default', rope_theta: 20000 } }, 'rope_theta'],
    [{ hidden_act: 'gelu' }, 'hidden_act'],
    [{ hidden_size: 66 }, 'hidden_size'],
    [{ num_key_value_heads: 3 }, 'num_key_value_heads'],
    [{ head_dim: 32 }, 'head_dim'],
    [{ hidden_size: 12, num_attention_heads: 4, num_key_value_heads: 4 }, 'hidden_size'], // head dim 3: odd, no RoPE pairs
    [{ use_mrope: true }, 'use_mrope'],
    [{ attention_dropout: 0.1 }, 'attention_dropout'],
    [{ quantization_config: { quant_method: 'gptq' } }, 'quantization_config'],
    [{ hidden_size: undefined }, 'hidden_size'],
    [{ vocab_size: 0 }, 'vocab_size'],
    [{ num_hidden_layers: 2.5 }, 'num_hidden_layers'],
    [{ rms_norm_eps: -1 }, 'rms_norm_eps'],
    [{ rope_theta: 'big' }, 'rope_theta'],
    [{ tie_word_embeddings: 'yes' }, 'tie_word_embeddings'],
  ];
  for (const [edit, field] of cases) {
    const cfg = { ...TINY_QWEN2_CONFIG, ...edit };
    for (const k of Object.keys(cfg)) if (cfg[k] === undefined) delete cfg[k];
    assert.throws(() => parseQwen2Config(cfg, '/m/config.json'),
      (e) => e instanceof FormatError && e.file === '/m/config.json' && e.field === field && e.message.includes('/m/config.json'),
      `${JSON.stringify(edit)} should fail on ${field}`);
  }
  assert.throws(() => parseQwen2Config([], 'c.json'), (e) => e instanceof FormatError && e.field === 'config');
});

for (const [dtype, shards] of [['F32', 1], ['BF16', 1], ['F16', 1], ['BF16', 3]]) {
  test(`load: ${dtype} ${shards === 1 ? 'model.safetensors' : `${shards} shards + index`} gives the stored values exactly, and each file's sha256`, () => withTempDir('craftgrad-qwen2-', async (dir) => {
    const w = writeTinyHfModel(dir, { dtype, shards, seed: 11 });
    const m = await loadHfModel(dir, { pieceBytes: 64 }); // small pieces: reads cross tensor boundaries
    assertLoadedEquals(m, w.expected);
    assert.deepEqual(m.dtypes, [dtype]);
    assert.deepEqual(m.files.map((f) => f.file), w.files);
    for (const f of m.files) {
      assert.equal(f.sha256, sha(join(dir, f.file)), f.file);
      assert.equal(f.bytes, readFileSync(join(dir, f.file)).length);
    }
    assert.equal(m.config.torchDtype, { F32: 'float32', BF16: 'bfloat16', F16: 'float16' }[dtype]);
    // The per-layer buffer holds the layer's tensors back to back.
    const l1 = m.weights.layers[1];
    assert.equal(l1.data.length, qwen2LayerLayout(m.config).floats);
    assert.equal(l1.qWeight.buffer, l1.data.buffer);
    assert.deepEqual(l1.data.subarray(0, 64), w.expected.get('model.layers.1.input_layernorm.weight'));
  }));
}

test('load: an untied model stores lm_head.weight, which is allowed and skipped; a wrong lm_head shape is not', () => withTempDir('craftgrad-qwen2-', async (dir) => {
  const w = writeTinyHfModel(join(dir, 'a'), { config: { tie_word_embeddings: false } });
  assert.ok(w.expected.has('lm_head.weight'));
  const m = await loadHfModel(join(dir, 'a'));
  assert.equal(m.config.tieWordEmbeddings, false);
  assertLoadedEquals(m, w.expected);
  writeTinyHfModel(join(dir, 'b'), { config: { tie_word_embeddings: false }, editTensors: (t) => { t['lm_head.weight'].shape = [64, 128]; } });
  await assert.rejects(loadHfModel(join(dir, 'b')), (e) => e instanceof FormatError && e.field === 'tensors["lm_head.weight"]' && /shape \[64, 128\]/.test(e.message));
}));

test('load: missing, extra, misshapen and integer tensors are errors naming the file and the tensor', () => withTempDir('craftgrad-qwen2-', async (dir) => {
  const file = (d) => join(dir, d, 'model.safetensors');
  const cases = [
    ['missing', (t) => { delete t['model.layers.2.mlp.up_proj.weight']; }, 'tensors["model.layers.2.mlp.up_proj.weight"]', /missing/],
    ['missing-bias', (t) => { delete t['model.layers.0.self_attn.k_proj.bias']; }, 'tensors["model.layers.0.self_attn.k_proj.bias"]', /missing/],
    ['extra', (t) => { t['model.layers.0.self_attn.o_proj.bias'] = { dtype: 'F32', shape: [64], data: new Float32Array(64) }; }, 'tensors["model.layers.0.self_attn.o_proj.bias"]', /extra tensor/],
    ['extra-layer', (t) => { t['model.layers.4.input_layernorm.weight'] = { dtype: 'F32', shape: [64], data: new Float32Array(64) }; }, 'tensors["model.layers.4.input_layernorm.weight"]', /extra tensor/],
    ['shape', (t) => { t['model.layers.3.self_attn.k_proj.weight'].shape = [64, 32]; }, 'tensors["model.layers.3.self_attn.k_proj.weight"]', /shape \[64, 32\].*\[32, 64\]/],
    ['dtype', (t) => { const x = t['model.norm.weight']; t['model.norm.weight'] = { dtype: 'I32', shape: x.shape, data: new Int32Array(x.data.length) }; }, 'tensors["model.norm.weight"].dtype', /I32/],
    ['nan', (t) => { t['model.embed_tokens.weight'].data[5] = NaN; }, 'tensors["model.embed_tokens.weight"]', /non-finite value \(NaN\) at flat index 5/],
  ];
  for (const [name, edit, field, re] of cases) {
    writeTinyHfModel(join(dir, name), { editTensors: edit });
    await assert.rejects(loadHfModel(join(dir, name)),
      (e) => e instanceof FormatError && e.file === file(name) && e.field === field && re.test(e.message) && e.message.includes(file(name)), name);
  }
}));

test('load: shard index errors name the index or the shard, and the tensor', () => withTempDir('craftgrad-qwen2-', async (dir) => {
  const idx = (d) => join(dir, d, 'model.safetensors.index.json');
  // The index points to a shard that is not there.
  writeTinyHfModel(join(dir, 'gone'), { shards: 2 });
  unlinkSync(join(dir, 'gone', 'model-00002-of-00002.safetensors'));
  await assert.rejects(loadHfModel(join(dir, 'gone')),
    (e) => e instanceof FormatError && e.file === idx('gone') && /^weight_map\["/.test(e.field) && /model-00002-of-00002\.safetensors/.test(e.message));
  // The index lacks a tensor the model needs.
  writeTinyHfModel(join(dir, 'unlisted'), { shards: 2, editIndex: (i) => { delete i.weight_map['model.norm.weight']; } });
  await assert.rejects(loadHfModel(join(dir, 'unlisted')),
    (e) => e instanceof FormatError && e.file === idx('unlisted') && e.field === 'weight_map["model.norm.weight"]' && /missing/.test(e.message));
  // The index lists a tensor that is not a Qwen2 tensor.
  writeTinyHfModel(join(dir, 'bogus'), { shards: 2, editIndex: (i) => { i.weight_map['model.rotary_emb.inv_freq'] = 'model-00001-of-00002.safetensors'; } });
  await assert.rejects(loadHfModel(join(dir, 'bogus')),
    (e) => e instanceof FormatError && e.file === idx('bogus') && e.field === 'weight_map["model.rotary_emb.inv_freq"]');
  // The index maps a tensor to the wrong shard.
  writeTinyHfModel(join(dir, 'moved'), { shards: 2, editIndex: (i) => { i.weight_map['model.embed_tokens.weight'] = 'model-00002-of-00002.safetensors'; } });
  await assert.rejects(loadHfModel(join(dir, 'moved')),
    (e) => e instanceof FormatError && e.file === join(dir, 'moved', 'model-00001-of-00002.safetensors') && e.field === 'tensors["model.embed_tokens.weight"]' && /does not list it here/.test(e.message));
  // A shard path that leaves the directory.
  writeTinyHfModel(join(dir, 'escape'), { shards: 2, editIndex: (i) => { i.weight_map['model.norm.weight'] = '../x.safetensors'; } });
  await assert.rejects(loadHfModel(join(dir, 'escape')), (e) => e instanceof FormatError && e.field === 'weight_map["model.norm.weight"]');
  // Malformed index JSON.
  writeTinyHfModel(join(dir, 'badjson'), { shards: 2 });
  writeFileSync(idx('badjson'), '{"weight_map": ');
  await assert.rejects(loadHfModel(join(dir, 'badjson')), (e) => e instanceof FormatError && e.file === idx('badjson') && /not valid JSON/.test(e.message));
}));

test('load: directory-level errors (not a directory, no config.json, no weights, bad config)', () => withTempDir('craftgrad-qwen2-', async (dir) => {
  await assert.rejects(loadHfModel(join(dir, 'nope')), (e) => e instanceof FormatError && e.file === join(dir, 'nope') && /not a directory/.test(e.message));
  writeTinyHfModel(join(dir, 'a'));
  unlinkSync(join(dir, 'a', 'config.json'));
  await assert.rejects(loadHfModel(join(dir, 'a')), (e) => e instanceof FormatError && e.file === join(dir, 'a', 'config.json') && /missing/.test(e.message));
  writeTinyHfModel(join(dir, 'b'));
  unlinkSync(join(dir, 'b', 'model.safetensors'));
  writeFileSync(join(dir, 'b', 'pytorch_model.bin'), 'x');
  await assert.rejects(loadHfModel(join(dir, 'b')), (e) => e instanceof FormatError && e.file === join(dir, 'b') && /neither model\.safetensors nor model\.safetensors\.index\.json.*pytorch_model\.bin/.test(e.message));
  writeTinyHfModel(join(dir, 'c'), { config: { rope_scaling: { rope_type: 'dynamic', factor: 2 } } });
  await assert.rejects(loadHfModel(join(dir, 'c')), (e) => e instanceof FormatError && e.file === join(dir, 'c', 'config.json') && e.field === 'rope_scaling');
  const { config } = await readHfConfig(join(dir, 'b')); // config alone reads even without weights
  assert.equal(config.hiddenSize, 64);
}));

test('base-model record: equal for the same files, names the config field or the file whose sha256 differs', () => withTempDir('craftgrad-qwen2-', async (dir) => {
  writeTinyHfModel(join(dir, 'a'), { seed: 1 });
  writeTinyHfModel(join(dir, 'b'), { seed: 1 });
  writeTinyHfModel(join(dir, 'c'), { seed: 2 });
  writeTinyHfModel(join(dir, 'd'), { seed: 1, config: { rope_theta: 20000 } });
  const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map((x) => loadHfModel(join(dir, x)).then(baseModelRecord)));
  assert.equal(baseModelMismatch(a, b), null);
  assert.match(baseModelMismatch(a, c), /model\.safetensors has sha256 [0-9a-f]{64} but the checkpoint was trained on [0-9a-f]{64}/);
  assert.match(baseModelMismatch(a, d), /config\.json rope_theta is 20000 but the checkpoint was trained with 10000/);
  assert.equal(a.files[0].sha256, sha(join(dir, 'a', 'model.safetensors')));
  // The record survives JSON (it goes into a checkpoint's JSON).
  assert.equal(baseModelMismatch(JSON.parse(JSON.stringify(a)), b), null);
}));

test('the test helper names every tensor with the shapes transformers gives Qwen2ForCausalLM', () => {
  const shapes = qwen2TensorShapes(TINY_QWEN2_CONFIG);
  assert.equal(shapes.size, 1 + 4 * 12 + 1);
  assert.deepEqual(shapes.get('model.layers.0.self_attn.k_proj.weight'), [32, 64]);
  assert.deepEqual(shapes.get('model.layers.0.mlp.down_proj.weight'), [64, 128]);
});
