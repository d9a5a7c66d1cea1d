// Mutation fuzzing of the model and optimizer bindings: start from valid calls, corrupt
// one to three arguments (wrong lengths, aliasing, absurd or overflowing dimensions, NaN
// hyper-parameters, wrong types), call the raw binding. Any JS error is fine; a crash
// (signal) or an abort is the bug this looks for. Usage: node fuzz-mutate-child.mjs <seed> <calls>
import { createRequire } from 'node:module';
import { AdapterPolicy } from '../../dist/index.js';
import { rng } from './random.mjs';

const require = createRequire(import.meta.url);
const raw = require('node-gyp-build')(new URL('../..', import.meta.url).pathname);
const seed = Number(process.argv[2] ?? 1), calls = Number(process.argv[3] ?? 2000);
const rand = rng(seed);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

const model = AdapterPolicy.create({ tokens: 3, width: 8, blocks: 2, rank: 2, headWidth: 4, chunk: 2, actionDims: 3 }, { seed });
const c = model.config;
const batch = 2;
const tokens = new Float32Array(batch * c.tokens * c.width).fill(0.1);
const actions = new Float32Array(batch * c.chunk * c.actionDims).fill(0.2);
const n = model.params.numElements;
const sizes = Array.from(model.params.sizes);
const vec = (k) => new Float32Array(k).map(() => rand() - 0.5);
// Host TensorSets (the raw binding's operands) wrapping fresh arrays, or the model's own.
const set = (data, sz = [data.length]) => new raw.TensorSet({ device: 'cpu', sizes: sz, data });
const P = () => set(vec(n), sizes);
const F = () => set(model.frozen.data.slice());
const A = () => set(model.anchor.data.slice());
const hyper = () => ({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1, gradScale: 1 });

function validCall() {
  const which = pick(['modelStep', 'modelStepAsync', 'craftReduce', 'adamwFused', 'adamw', 'modelGemm', 'copy', 'surgery', 'surgeryAsync']);
  switch (which) {
    case 'modelStep': case 'modelStepAsync':
      return [which, [{ config: { ...c }, mode: pick(['craft', 'baseline', 'eval', 'evalRetention']), params: P(), frozen: F(), anchor: A(),
        gAct: set(new Float32Array(n)), gRet: set(new Float32Array(n)), tokens, actions, batch, accumulate: rand() < 0.5, scale: 1 }]];
    case 'craftReduce':
      return [which, [P(), P(), { lambda: 0.1, eps: 1e-8, projection: true }]];
    case 'adamwFused':
      return [which, [P(), P(), P(), P(), P(), { ...hyper(), coefficients: new Float64Array(sizes.length).fill(0.1) }]];
    case 'adamw':
      return [which, [P(), P(), P(), P(), hyper()]];
    case 'copy':
      return [which, [{ dst: P(), src: P(), dstOffset: 1, srcOffset: 2, count: 3 }]];
    case 'surgery': case 'surgeryAsync':
      return [which, [P(), P(), { lambda: 0.2, eps: 1e-8, projection: true, cosines: rand() < 0.5, out: rand() < 0.5 ? P() : undefined }]];
    default:
      return [which, [{ M: 4, N: 5, K: 6, alpha: 1, a: vec(24), transA: false, b: vec(30), transB: false, beta: 0, c: new Float32Array(20), precision: 'fp32' }]];
  }
}

// Every TensorSet and Float32Array among the call's arguments and options (for aliasing).
function operands(args) {
  const out = [];
  for (const a of args) {
    if (a instanceof raw.TensorSet || a instanceof Float32Array) out.push(a);
    else if (a && typeof a === 'object' && !ArrayBuffer.isView(a)) out.push(...Object.values(a).filter((v) => v instanceof raw.TensorSet || v instanceof Float32Array));
  }
  return out;
}

function mutant(arg, args) {
  const r = rand();
  if (arg instanceof Float64Array && r < 0.6) {
    const m = arg.slice();
    m[Math.floor(rand() * m.length)] = pick([0, -1, 1.5, NaN, Infinity, 2 ** 31, 2 ** 32 + 3, 2 ** 53, 1e12, 65536, 3]);
    return m;
  }
  if (arg instanceof Float32Array && r < 0.5) return pick([arg.subarray(1), new Float32Array(arg.length + 1), new Float32Array(0), arg.subarray(0, arg.length >> 1)]);
  if (arg instanceof raw.TensorSet && !arg.disposed && r < 0.5) {
    const d = arg.data;
    if (rand() < 0.3) { arg.dispose(); return arg; }
    return pick([set(d.subarray(1)), set(new Float32Array(d.length + 1)), set(new Float32Array(0)), set(d, [d.length]), set(d.subarray(0, d.length >> 1))]);
  }
  if (typeof arg === 'number' && r < 0.6) return pick([0, -1, 1.5, NaN, Infinity, 2 ** 31, 2 ** 32 + 3, 2 ** 53, 1e12, 65536, 3]);
  if (r < 0.7) return pick(operands(args).concat([null])); // aliasing
  return pick([undefined, null, NaN, -1, 0, 2 ** 31, 1e300, 'x', 'cuda:0', 'cpu', {}, [], true, new Float64Array(3), new Int32Array(4), 7]);
}

// Corrupts a positional argument, or one field of an options object (config fields included).
function mutate(args) {
  const at = Math.floor(rand() * args.length);
  const arg = args[at];
  if (arg && typeof arg === 'object' && arg.constructor === Object && rand() < 0.8) {
    const keys = Object.keys(arg);
    const key = pick(keys);
    if (key === 'config' && rand() < 0.7) {
      const ck = pick(Object.keys(arg.config));
      arg.config[ck] = mutant(arg.config[ck], args);
    } else {
      arg[key] = mutant(arg[key], args);
    }
    return;
  }
  args[at] = mutant(arg, args);
}

let threw = 0, ok = 0;
const pending = [];
for (let i = 0; i < calls; ++i) {
  const [fn, args] = validCall();
  const k = 1 + Math.floor(rand() * 3);
  for (let j = 0; j < k; ++j) mutate(args);
  try {
    const r = raw[fn](...args);
    if (r instanceof Promise) pending.push(r.then(() => ok++, () => threw++));
    else ok++;
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`${fn} threw a non-Error: ${String(e)}`);
    threw++;
  }
}
await Promise.all(pending);
console.log(JSON.stringify({ calls, threw, ok }));
