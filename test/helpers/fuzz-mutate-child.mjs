// Mutation fuzzing of the model and optimizer bindings: start from valid calls, corrupt
// one to three arguments (wrong lengths, aliasing, absurd or overflowing dimensions, NaN
// hyper-parameters, wrong types), call the raw binding. Any JS error is fine; a crash
// (signal) or an abort is the bug this looks for. Usage: node fuzz-mutate-child.mjs <seed> <calls>
import { createRequire } from 'node:module';
import { AdapterPolicy, GradSet } from '../../dist/index.js';
import { gradSetInternals } from '../../dist/gradset.js';
import { rng } from './random.mjs';

const require = createRequire(import.meta.url);
const raw = require('node-gyp-build')(new URL('../..', import.meta.url).pathname);
const seed = Number(process.argv[2] ?? 1), calls = Number(process.argv[3] ?? 2000);
const rand = rng(seed);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

const model = AdapterPolicy.create({ tokens: 3, width: 8, blocks: 2, rank: 2, headWidth: 4, chunk: 2, actionDims: 3 }, { seed });
const c = model.config;
const config = Float64Array.of(c.tokens, c.width, c.blocks, c.rank, c.alpha, c.bridgeBlock, 0, 0, c.headWidth, c.chunk, c.actionDims);
const batch = 2;
const tokens = new Float32Array(batch * c.tokens * c.width).fill(0.1);
const actions = new Float32Array(batch * c.chunk * c.actionDims).fill(0.2);
const P = () => gradSetInternals(model.params).storage.data;
const F = () => gradSetInternals(model.frozen).storage.data;
const A = () => gradSetInternals(model.anchor).storage.data;
const n = model.params.numElements;
const sizes = Float64Array.from(model.params.sizes);
const vec = (k) => new Float32Array(k).map(() => rand() - 0.5);

function validCall() {
  const which = pick(['modelStep', 'modelStepAsync', 'craftReduce', 'adamwFused', 'adamw', 'modelGemm']);
  switch (which) {
    case 'modelStep': case 'modelStepAsync':
      return [which, [config.slice(), vec(n), F().slice(), A().slice(), tokens, actions, batch, new Float32Array(n), new Float32Array(n), pick([0, 1, 2, 3]), rand() < 0.5, 1]];
    case 'craftReduce':
      return [which, [vec(n), vec(n), sizes.slice(), 0.1, 1e-8, true]];
    case 'adamwFused':
      return [which, [vec(n), vec(n), sizes.slice(), new Float64Array(sizes.length).fill(0.1), vec(n), new Float32Array(n), new Float32Array(n), 1e-3, 0.9, 0.999, 1e-8, 0.01, 1, 1]];
    case 'adamw':
      return [which, [vec(n), vec(n), new Float32Array(n), new Float32Array(n), 1e-3, 0.9, 0.999, 1e-8, 0.01, 1, 1]];
    default:
      return [which, [4, 5, 6, 1, vec(24), false, vec(30), false, 0, new Float32Array(20)]];
  }
}

function mutant(arg, args) {
  const r = rand();
  if (arg instanceof Float64Array && r < 0.6) {
    const m = arg.slice();
    m[Math.floor(rand() * m.length)] = pick([0, -1, 1.5, NaN, Infinity, 2 ** 31, 2 ** 32 + 3, 2 ** 53, 1e12, 65536, 3]);
    return m;
  }
  if (arg instanceof Float32Array && r < 0.5) return pick([arg.subarray(1), new Float32Array(arg.length + 1), new Float32Array(0), arg.subarray(0, arg.length >> 1)]);
  if (r < 0.7) return pick(args.filter((a) => a instanceof Float32Array) ?? [null]); // aliasing
  return pick([undefined, null, NaN, -1, 0, 2 ** 31, 1e300, 'x', {}, [], true, new Float64Array(3), new Int32Array(4), 7]);
}

let threw = 0, ok = 0;
const pending = [];
for (let i = 0; i < calls; ++i) {
  const [fn, args] = validCall();
  const k = 1 + Math.floor(rand() * 3);
  for (let j = 0; j < k; ++j) {
    const at = Math.floor(rand() * args.length);
    args[at] = mutant(args[at], args);
  }
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
