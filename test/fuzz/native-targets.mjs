// Native fuzz targets: valid calls of the raw binding (no TypeScript checks in front), with
// one to three arguments or option/config fields replaced by fast-check: wrong lengths,
// wrong types, NaN, huge or overflow-prone sizes (2^31, 2^32 + 3, 2^53, 46341² > 2^31),
// aliasing operands, disposed sets, detached buffers. Complements test/surgery-fuzz.test.mjs
// (whose children cover surgery, surgeryFlat, modelStep, adamw, adamwFused, craftReduce,
// copy and modelGemm by random calls): here the Qwen2 and VLA-Adapter steps and layouts, the
// TensorSet constructor (sizes, views, like, dtype), craftCombine and modelTensors, plus copy and
// modelGemm's overflow-prone dimensions. Each case runs in the fuzz child, so a crash or
// abort is caught by the parent and reported with the seed and case.
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';

const require = createRequire(import.meta.url);

/** Numbers a size, count, index or hyper-parameter is set to. */
const NUMBERS = [0, -1, 1, 2, 1.5, -0, NaN, Infinity, -Infinity, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 3, 2 ** 53, 1e12, 65536, 46341, 3, 1e-45, 1e308];

/** What a field is replaced with; resolved against the call, so a case stays a plain value. */
const replacement = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NUMBERS).map((n) => ({ kind: 'number', n })) },
  { weight: 3, arbitrary: fc.constantFrom('short', 'long', 'empty', 'half', 'f64', 'i32', 'u8', 'nan', 'detached', 'alias', 'disposed', 'dup').map((kind) => ({ kind })) },
  fc.constantFrom(undefined, null, '', 'x', 'cuda:0', 'cpu', true, false, 'max', 'prefix+prompt', 'q_proj', 'bf16').map((v) => ({ kind: 'value', v })),
  fc.constantFrom('object', 'array', 'array-of-nan', 'sizes-overflow', 'sizes-negative', 'bigint', 'symbol').map((kind) => ({ kind })),
);

/**
 * A call to corrupt: which builder, and 1 to 3 edits (field index mod the field count). Most
 * edits keep the field's type (a number stays a number, an array an array of another length)
 * so the call gets past the type checks to the shape and size checks behind them; one in
 * seven puts any value anywhere.
 */
const nativeCase = (calls) => fc.record({
  call: fc.constantFrom(...calls),
  edits: fc.array(fc.record({
    field: fc.nat(), any: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, fc.constant(true)), pick: fc.nat(), with: replacement,
  }), { minLength: 1, maxLength: 3 }),
});

const SAME_KIND = {
  number: NUMBERS.map((n) => ({ kind: 'number', n })),
  operand: ['short', 'long', 'empty', 'half', 'nan', 'detached', 'alias', 'disposed', 'f64', 'i32'].map((kind) => ({ kind })),
  array: ['dup', 'array', 'array-of-nan', 'sizes-overflow', 'sizes-negative', 'short', 'empty'].map((kind) => ({ kind })),
  string: ['', 'x', 'cuda:0', 'cuda:7', 'cpu', 'bf16', 'fp32', 'max', 'mean', 'raw_only', 'prefix+prompt', 'vision+prompt', 'q_proj', 'evalRetention'].map((v) => ({ kind: 'value', v })),
  boolean: [true, false, 0, 1].map((v) => ({ kind: 'value', v })),
};

function kindOf(v, raw) {
  if (typeof v === 'number') return 'number';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'boolean';
  if (ArrayBuffer.isView(v) || v instanceof raw.TensorSet) return 'operand';
  if (Array.isArray(v)) return 'array';
  return undefined;
}

function isLeaf(v, raw) {
  return v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || v instanceof raw.TensorSet;
}

/** Every editable location [parent, key] of the call's arguments (options, config and tower fields, array entries). */
function fields(args, raw) {
  const out = [];
  const walk = (parent, key, depth) => {
    out.push([parent, key]);
    const v = parent[key];
    if (depth < 4 && !isLeaf(v, raw)) for (const k of Object.keys(v)) walk(v, Array.isArray(v) ? Number(k) : k, depth + 1);
  };
  for (let i = 0; i < args.length; i++) walk(args, i, 0);
  return out;
}

function operandsOf(args, raw) {
  const out = [];
  const walk = (v, depth) => {
    if (v instanceof raw.TensorSet || v instanceof Float32Array || v instanceof Int32Array) out.push(v);
    else if (depth < 3 && v && typeof v === 'object' && !ArrayBuffer.isView(v)) for (const x of Object.values(v)) walk(x, depth + 1);
  };
  walk(args, 0);
  return out;
}

function resolve(w, old, args, raw, keep) {
  const set = (data) => new raw.TensorSet({ device: 'cpu', sizes: [data.length], data });
  const like = (n, C = old?.constructor) => {
    if (old instanceof raw.TensorSet) return set(new Float32Array(Math.max(0, n)));
    return new (ArrayBuffer.isView(old) ? C : Float32Array)(Math.max(0, n));
  };
  const len = old instanceof raw.TensorSet ? (old.disposed ? 0 : old.numElements) : ArrayBuffer.isView(old) ? old.length : Array.isArray(old) ? old.length : 4;
  switch (w.kind) {
    case 'number': return w.n;
    case 'value': return w.v;
    case 'short': return Array.isArray(old) ? old.slice(0, -1) : like(len - 1);
    case 'long': return like(len + 1);
    case 'empty': return Array.isArray(old) ? [] : like(0);
    case 'half': return like(len >> 1);
    case 'f64': return new Float64Array(len);
    case 'i32': return new Int32Array(len);
    case 'u8': return new Uint8Array(len);
    case 'nan': { const a = new Float32Array(len).fill(NaN); return old instanceof raw.TensorSet ? set(a) : a; }
    case 'detached': {
      const a = like(len);
      if (ArrayBuffer.isView(a)) structuredClone(a.buffer, { transfer: [a.buffer] });
      else a.dispose();
      return a;
    }
    case 'alias': { const ops = operandsOf(args, raw); return ops.length ? ops[(len * 7) % ops.length] : null; }
    case 'disposed': { const s = set(new Float32Array(Math.max(1, len))); s.dispose(); return s; }
    case 'dup': return Array.isArray(old) ? [...old, ...old] : old;
    case 'object': return {};
    case 'array': return [];
    case 'array-of-nan': return [NaN, NaN];
    case 'sizes-overflow': return [2 ** 31, 2 ** 31, 2 ** 31];
    case 'sizes-negative': return [4, -4];
    case 'bigint': return 10n;
    case 'symbol': return keep.symbol;
    default: throw new Error(`unknown replacement ${w.kind}`);
  }
}

/** The call after its edits. */
export function corrupt(args, edits, raw) {
  const keep = { symbol: Symbol('fuzz') };
  for (const e of edits) {
    let all = fields(args, raw);
    const typed = all.filter(([p, k]) => kindOf(p[k], raw) !== undefined);
    if (!e.any && typed.length > 0) all = typed;
    const [parent, key] = all[e.field % all.length];
    const same = SAME_KIND[kindOf(parent[key], raw)];
    const w = e.any || !same ? e.with : same[e.pick % same.length];
    parent[key] = resolve(w, parent[key], args, raw, keep);
  }
  return args;
}

/** Native errors: TypeError/RangeError with Node's argument codes, or a backend Error with a code. */
export function nativeAccepts() {
  return (e) => {
    if (!(e instanceof Error)) return `threw a non-Error (${typeof e})`;
    if (/internal error/.test(e.message)) return 'an internal error escaped the N-API boundary';
    if ((e instanceof TypeError || e instanceof RangeError) && (e.code === 'ERR_INVALID_ARG_TYPE' || e.code === 'ERR_INVALID_ARG_VALUE')) return null;
    if (e.constructor === Error && typeof e.code === 'string' && e.code.length > 0) return null;
    return `threw ${e.constructor.name}${e.code ? ` (${e.code})` : ''} without an argument code`;
  };
}

async function context() {
  const raw = require('node-gyp-build')(new URL('../..', import.meta.url).pathname);
  const { Qwen2Policy } = await import('../../dist/model/qwen2/index.js');
  const { gradSetInternals } = await import('../../dist/gradset.js');
  const { writeTinyHfModel } = await import('../helpers/hf-tiny.mjs');
  const dir = mkdtempSync(join(tmpdir(), 'craftgrad-fuzz-qwen2-'));
  const written = writeTinyHfModel(dir, { config: { hidden_size: 16, intermediate_size: 24, vocab_size: 16, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 } });
  const q = await Qwen2Policy.fromHfDirectory(written.dir, { rank: 2, alpha: 4, prefixTokens: 2, promptTokens: 2, chunk: 2, actionDims: 2, headWidth: 4, seed: 1 });
  const vcfg = {
    towers: [
      { embedDim: 16, depth: 2, numHeads: 2, mlpHidden: 16, patchSize: 4, imageSize: 8, classToken: 1, regTokens: 1, layerScale: true, layerNormEps: 1e-6 },
      { embedDim: 16, depth: 2, numHeads: 2, mlpHidden: 24, patchSize: 4, imageSize: 8, classToken: 0, regTokens: 0, layerScale: false, layerNormEps: 1e-6 },
    ],
    views: 1, projectorHidden: 32, hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 16, vocabSize: 16,
    rmsNormEps: 1e-6, ropeTheta: 1e4, inputIds: 4, queries: 2, rank: 2, alpha: 4, headBlocks: 1, chunk: 2, actionDims: 2, proprioDim: 2,
    bridgeLayer: 1, bridgeSpan: 'vision', pooling: 'mean', anchorType: 'concat',
  };
  const vt = raw.vlaTensors(vcfg);
  const numel = (d) => d.shape.reduce((a, b) => a * b, 1);
  const { computeSpans } = await import('../../dist/data/images/resize.js');
  const spans = { down: computeSpans(6, 8, Math.fround(6 / 8)), up: computeSpans(10, 8, Math.fround(10 / 8)) };
  return { raw, q, handle: gradSetInternals, vcfg, vt, numel, spans };
}

const rnd = (n, s = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + s) * 0.3);

/** Valid calls by name: [function name, arguments]. */
function validCall(ctx, name) {
  const { raw, q, handle, vcfg, vt, numel, spans } = ctx;
  const set = (data, sizes = [data.length]) => new raw.TensorSet({ device: 'cpu', sizes, data });
  const qc = q.config, B = 2;
  switch (name) {
    case 'qwen2Tensors': return ['qwen2Tensors', [{ ...qc, targets: [...qc.targets] }]];
    case 'qwen2Step': case 'qwen2StepAsync': {
      const w = q.hf.weights;
      return [name, [{
        config: { ...qc, targets: [...qc.targets] }, mode: 'craft', params: handle(q.params), anchor: handle(q.anchor),
        gAct: handle(q.newGradSet()), gRet: handle(q.newGradSet()),
        frozen: { embedTokens: w.embedTokens, layers: w.layers.map((l) => l.data), finalNorm: w.finalNorm },
        prefix: rnd(B * qc.prefixTokens * qc.hiddenSize), inputIds: Int32Array.from({ length: B * qc.promptTokens }, (_, i) => i % qc.vocabSize),
        actions: rnd(B * qc.queries * qc.actionDims, 2), batch: B, accumulate: false, scale: 1,
      }]];
    }
    case 'vlaTensors': return ['vlaTensors', [structuredClone(vcfg)]];
    case 'vlaStep': case 'vlaStepAsync': {
      const n = vt.trainable.reduce((a, d) => a + numel(d), 0), na = vt.trainable.slice(0, vt.anchorTensors).reduce((a, d) => a + numel(d), 0);
      const sizes = vt.trainable.map(numel);
      const t = vcfg.towers[0];
      return [name, [{
        config: structuredClone(vcfg), mode: 'craft', params: set(rnd(n, 3), sizes), anchor: set(rnd(na, 4), sizes.slice(0, vt.anchorTensors)),
        gAct: set(new Float32Array(n), sizes), gRet: set(new Float32Array(n), sizes), frozen: vt.frozen.map((d, i) => rnd(numel(d), i)),
        pixels: rnd(1 * vcfg.views * 6 * t.imageSize * t.imageSize, 5), inputIds: Int32Array.from([1, 3, 5, 7]), proprio: rnd(vcfg.proprioDim, 6),
        actions: rnd(vcfg.chunk * vcfg.actionDims, 7), noise: null, batch: 1, accumulate: false, scale: 1,
      }]];
    }
    case 'TensorSet': return ['TensorSet', [{ device: 'cpu', sizes: [3, 0, 5], data: rnd(8) }]];
    case 'TensorSetView': {
      const base = set(rnd(16), [8, 8]);
      return ['TensorSet', [{ view: base, offset: 4, sizes: [2, 6] }]];
    }
    case 'TensorSetLike': return ['TensorSet', [{ device: 'cpu', like: set(rnd(6), [2, 4]) }]];
    // dtype: 'bf16' sets are a device's (the fuzzer's device field may become 'cuda:0').
    case 'TensorSetDtype': return ['TensorSet', [{ device: 'cpu', sizes: [3, 0, 5], dtype: 'fp32' }]];
    case 'craftCombine': return ['craftCombine', [{
      dots: Float64Array.from([1, -2, 0.5]), retNormsSq: Float64Array.from([1, 2, 3]), actNormsSq: Float64Array.from([2, 2, 2]), nonFiniteFlags: new Uint8Array(3),
    }, { lambda: 0.1, eps: 1e-8, projection: true }]];
    case 'modelTensors': return ['modelTensors', [{ tokens: 3, width: 8, blocks: 2, rank: 2, alpha: 4, bridgeBlock: 1, pooling: 'mean', anchorType: 'concat', headWidth: 4, chunk: 2, actionDims: 3 }]];
    case 'copy': return ['copy', [{ dst: set(new Float32Array(10), [4, 6]), src: set(rnd(10), [5, 5]), dstOffset: 1, srcOffset: 2, count: 6 }]];
    case 'modelGemm': return ['modelGemm', [{ M: 3, N: 4, K: 5, alpha: 1, a: rnd(15), transA: false, b: rnd(20), transB: true, beta: 1, c: new Float32Array(12) }]];
    case 'imageResize': return ['imageResize', [bytes(8 * 8 * 3), new Float32Array(6 * 10 * 3), {
      height: 8, width: 8, channels: 3, outHeight: 6, outWidth: 10, rowSpans: structuredClone(spans.down), colSpans: structuredClone(spans.up),
    }]];
    case 'imageAugment': return ['imageAugment', [bytes(8 * 8 * 3), new Uint8Array(8 * 8 * 3), {
      height: 8, width: 8, box: [0.05, 0.04, 0.97, 0.95], color: { brightness: 0.1, contrast: 1.1, saturation: 0.9, hue: 0.02 },
    }]];
    case 'imageNormalize': return ['imageNormalize', [bytes(6 * 6 * 3), new Float32Array(6 * 6 * 6), {
      height: 6, width: 6, mean: [0.5, 0.4, 0.3, 0.5, 0.5, 0.5], std: [0.2, 0.25, 0.3, 0.5, 0.5, 0.5],
    }]];
    default: throw new Error(name);
  }
}

const bytes = (n) => Uint8Array.from({ length: n }, (_, i) => (i * 37) & 255);

function nativeTarget(name, calls, covers) {
  return {
    name, covers, native: true,
    async setup() {
      const ctx = await context();
      // Every valid call must succeed first: otherwise the fuzzer only exercises argument checks.
      for (const c of calls) {
        const [fn, args] = validCall(ctx, c);
        const r = /^[A-Z]/.test(fn) ? new ctx.raw[fn](...args) : ctx.raw[fn](...args);
        if (r instanceof Promise) await r;
      }
      return ctx;
    },
    arbitrary: () => nativeCase(calls),
    input: (ctx, c) => {
      const [fn, args] = validCall(ctx, c.call);
      return { fn, args: corrupt(args, c.edits, ctx.raw) };
    },
    async run(ctx, { fn, args }) {
      const r = /^[A-Z]/.test(fn) ? new ctx.raw[fn](...args) : ctx.raw[fn](...args);
      return r instanceof Promise ? await r : r;
    },
    accept: nativeAccepts,
  };
}

export const nativeTargets = [
  nativeTarget('native-qwen2', ['qwen2Tensors', 'qwen2Step', 'qwen2StepAsync'], 'native/napi qwen2_call.cc: qwen2Tensors, qwen2Step, qwen2StepAsync'),
  nativeTarget('native-vla', ['vlaTensors', 'vlaStep', 'vlaStepAsync'], 'native/napi vla_call.cc: vlaTensors, vlaStep, vlaStepAsync'),
  nativeTarget('native-sets', ['TensorSet', 'TensorSetView', 'TensorSetLike', 'TensorSetDtype', 'craftCombine', 'modelTensors', 'copy', 'modelGemm'],
    'native/napi tensor_set.cc, adamw_call.cc craftCombine, model_call.cc modelTensors/copy/modelGemm'),
  nativeTarget('native-images', ['imageResize', 'imageAugment', 'imageNormalize'], 'native/napi image_call.cc: imageResize, imageAugment, imageNormalize (spans, boxes, colour factors, sizes)'),
];
