#!/usr/bin/env node
// npm run bench:surgery [-- --record] [--reps N]
// The surgery primitive on the CPU against a naive per-tensor JavaScript loop and the
// memory floor: 12 bytes per element (a and r read once, out written once) over the
// bandwidth of a plain copy measured in the same run.
import { parseArgs } from 'node:util';
import { surgery, backendInfo } from '../dist/index.js';
import { vlaAdapterLayout, manySmallLayout } from './layouts.js';
import { timeIt, copyBandwidth, machine, recordSection } from './common.js';

const { values: args } = parseArgs({
  options: { record: { type: 'boolean', default: false }, reps: { type: 'string', default: '7' }, device: { type: 'string', default: 'cpu' } },
});
if (args.device !== 'cpu') {
  console.error(`bench:surgery --device ${args.device}: only the CPU benchmark is implemented in this script so far`);
  process.exit(2);
}
const reps = Number(args.reps);

function makeSet(sizes, seed) {
  const total = sizes.reduce((a, b) => a + b, 0);
  const a = new Float32Array(total), r = new Float32Array(total);
  let s = seed;
  for (let i = 0; i < total; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
    r[i] = ((s >>> 7) & 1023) / 1024 - 0.5;
  }
  const views = (flat) => {
    let off = 0;
    return sizes.map((n) => flat.subarray(off, (off += n)));
  };
  return { total, act: views(a), ret: views(r), out: views(new Float32Array(total)) };
}

/** The per-tensor loop a JavaScript user would write. */
function naiveSurgery(act, ret, out, lambda, eps) {
  let normSq = 0, conflicts = 0;
  for (let i = 0; i < act.length; ++i) {
    const a = act[i], r = ret[i], o = out[i];
    let d = 0, q = 0;
    for (let j = 0; j < a.length; ++j) {
      d += a[j] * r[j];
      q += r[j] * r[j];
    }
    const conflict = d < 0;
    if (conflict) conflicts++;
    const c = lambda - (conflict ? d / (q + eps) : 0);
    for (let j = 0; j < a.length; ++j) {
      const v = a[j] + c * r[j];
      o[j] = v;
      normSq += v * v;
    }
  }
  return { conflicts, gradNorm: Math.sqrt(normSq) };
}

function benchLayout(name, sizes) {
  const set = makeSet(sizes, 12345);
  const bytes = 12 * set.total;
  // The faster of a copy of this data size and of a large buffer (glibc switches to
  // non-temporal stores for large copies): the stricter floor.
  const bw = Math.max(copyBandwidth(set.total), copyBandwidth(64 * 2 ** 20));
  const floor = bytes / bw;
  const tNaive = timeIt(() => naiveSurgery(set.act, set.ret, set.out, 0.05, 1e-8), { reps: Math.min(reps, 3), warmup: 1 });
  const tOut = timeIt(() => surgery(set.act, set.ret, { lambda: 0.05, out: set.out }), { reps });
  const copy = set.act.map((a) => a.slice());
  const tInPlace = timeIt(() => surgery(copy, set.ret, { lambda: 0.05, out: copy }), { reps });
  return {
    name, tensors: sizes.length, elements: set.total, copyGBs: bw / 1e9, floorMs: floor * 1e3,
    naiveMs: tNaive * 1e3, outMs: tOut * 1e3, inPlaceMs: tInPlace * 1e3,
  };
}

function singleTensorLatency() {
  const a = new Float32Array(1024).fill(0.5), r = new Float32Array(1024).fill(-0.25), out = new Float32Array(1024);
  const n = 200000;
  const run = () => { for (let i = 0; i < n; ++i) surgery([a], [r], { lambda: 0.05, out: [out] }); };
  const fresh = () => { for (let i = 0; i < n / 4; ++i) surgery([a], [r], { lambda: 0.05 }); };
  return { withOutUs: (timeIt(run, { reps: 5, warmup: 1 }) / n) * 1e6, freshOutUs: (timeIt(fresh, { reps: 5, warmup: 1 }) / (n / 4)) * 1e6 };
}

const info = backendInfo();
console.log(`craftgrad ${info.version} CPU surgery benchmark: ${machine()}; kernels ${info.cpu.isa}, ${info.cpu.threads} threads`);
const rows = [benchLayout('VLA-adapter-like', vlaAdapterLayout()), benchLayout('many-small', manySmallLayout())];
const lat = singleTensorLatency();

const fmt = (x, d = 1) => x.toFixed(d);
const table = [
  '| layout | tensors | elements | copy GB/s | floor ms | naive JS ms (× floor) | craftgrad ms (× floor) | craftgrad in place ms (× floor) | speed-up vs naive |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${r.tensors} | ${(r.elements / 1e6).toFixed(1)} M | ${fmt(r.copyGBs)} | ${fmt(r.floorMs)} | ${fmt(r.naiveMs)} (${fmt(r.naiveMs / r.floorMs, 2)}×) | ${fmt(r.outMs)} (${fmt(r.outMs / r.floorMs, 2)}×) | ${fmt(r.inPlaceMs)} (${fmt(r.inPlaceMs / r.floorMs, 2)}×) | ${fmt(r.naiveMs / r.outMs)}× |`),
].join('\n');
const latency = `Single 1,024-element tensor, synchronous call: ${lat.withOutUs.toFixed(2)} µs with a preallocated \`out\`, ${lat.freshOutUs.toFixed(2)} µs allocating the output.`;
console.log(table);
console.log(latency);

if (args.record) {
  recordSection('surgery-cpu', `## Surgery primitive, CPU (\`npm run bench:surgery -- --record\`)

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${machine()}
- Kernels: ${info.cpu.isa} (available: ${info.cpu.available.join(', ')}), ${info.cpu.threads} threads
- Floor: 12 bytes per element (a and r read once, out written once) over the bandwidth of a plain copy (TypedArray.set = memcpy, read + write bytes; the faster of a copy of the same size and of a 256 MB one), measured in the same run. Median of ${reps} runs (naive: 3).

${table}

${latency}`);
  console.log('recorded in bench/RESULTS.md');
}
