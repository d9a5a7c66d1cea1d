// Makes thousands of random, mostly malformed calls to the public API and to the raw
// native binding. Every call may throw a JS error; none may crash the process.
// Usage: node fuzz-child.mjs <seed> <calls>
import { createRequire } from 'node:module';
import * as api from '../../dist/index.js';
import { rng } from './random.mjs';

const require = createRequire(import.meta.url);
const raw = require('node-gyp-build')(new URL('../..', import.meta.url).pathname);
const seed = Number(process.argv[2] ?? 1);
const calls = Number(process.argv[3] ?? 3000);
const rand = rng(seed);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const shared = new Float32Array(64).map(() => rand() - 0.5);
const RAW_FUNCTIONS = Object.keys(raw).filter((k) => typeof raw[k] === 'function');

function detached() {
  const b = new ArrayBuffer(16);
  const v = new Float32Array(b);
  structuredClone(b, { transfer: [b] });
  return v;
}

function f32(n) {
  const kind = rand();
  if (kind < 0.2) {
    const start = Math.floor(rand() * 32);
    return shared.subarray(start, Math.min(64, start + n));
  }
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) a[i] = pick([rand() - 0.5, NaN, Infinity, -Infinity, 0, -0, 3e38, 1e-45]);
  return a;
}

function value(depth = 0) {
  const r = rand();
  if (r < 0.3) return f32(Math.floor(rand() * 40));
  if (r < 0.45 && depth < 2) return Array.from({ length: Math.floor(rand() * 5) }, () => value(depth + 1));
  return pick([undefined, null, 0, -1, 1.5, NaN, Infinity, 2 ** 53, 1e300, 'x', '', true, false, {}, [], Symbol('s'), 10n,
    new Float64Array(3), new Int32Array(2), new Uint8Array(5), new Uint32Array([1, 2]), detached(), () => 1,
    { lambda: rand() }, { lambda: pick([NaN, -1, 0, 1, 'a']), eps: pick([0, 1e-8, -1, NaN]), out: value(depth + 1) },
    new Proxy([], { get() { throw new Error('proxy getter'); } })]);
}

function sameShapes(n) {
  const sizes = Array.from({ length: n }, () => Math.floor(rand() * 20));
  return [sizes.map((s) => f32(s)), sizes.map((s) => f32(s))];
}

let threw = 0, ok = 0;
const pending = [];
for (let i = 0; i < calls; ++i) {
  const mode = rand();
  try {
    let result;
    if (mode < 0.25) {
      const [a, r] = rand() < 0.5 ? sameShapes(Math.floor(rand() * 4)) : [value(), value()];
      result = api.surgery(a, r, pick([{ lambda: rand() }, value(), { lambda: 0.1, out: rand() < 0.5 ? a : value() }]));
    } else if (mode < 0.35) {
      const [a, r] = sameShapes(Math.floor(rand() * 4));
      pending.push(api.surgeryAsync(a, pick([r, value()]), pick([{ lambda: 0.5 }, value()])).catch(() => threw++));
    } else if (mode < 0.5) {
      result = api.surgeryFlat(value(), value(), pick([value(), [1, 2], new Uint32Array([3])]), pick([{ lambda: 1 }, value()]));
    } else if (mode < 0.6) {
      result = api.GradSet.zeros(pick([value(), [1, 2, -1], [2 ** 60]]), pick([undefined, value(), { device: pick(['cpu', 'cuda', 'cuda:7', 'x']) }]));
    } else {
      // The raw binding: no TypeScript checks in front of it at all.
      // Every function the addon exports (not the benchmark natives under raw.bench: not the product).
      const fn = pick(RAW_FUNCTIONS);
      const args = Array.from({ length: Math.floor(rand() * 16) }, () => value());
      if (fn === 'setThreads') args[0] = pick([1, 2, 3, 0, -1, NaN, 1e9, 'x']);
      result = /^[A-Z]/.test(fn) ? new raw[fn](...args) : raw[fn](...args);
      if (result instanceof Promise) pending.push(result.catch(() => threw++));
    }
    if (result) ok++;
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`a non-Error was thrown: ${String(e)}`);
    threw++;
  }
}
await Promise.all(pending);
console.log(JSON.stringify({ calls, threw, ok }));
