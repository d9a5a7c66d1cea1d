// The CPU benchmark of the surgery primitive: craftgrad against a naive per-tensor
// JavaScript loop and against the memory floor, 12 bytes per element (a and r read once,
// out written once) over the bandwidth of a plain copy measured in the same run.
import { surgery } from '../surgery.js';
import { copyBandwidth, timeIt } from './timing.js';

export interface LayoutResult {
  name: string;
  tensors: number;
  elements: number;
  copyGBs: number;
  floorMs: number;
  naiveMs: number;
  outMs: number;
  inPlaceMs: number;
}

interface HostSet {
  total: number;
  act: Float32Array[];
  ret: Float32Array[];
  out: Float32Array[];
}

function makeSet(sizes: number[], seed: number): HostSet {
  const total = sizes.reduce((a, b) => a + b, 0);
  const a = new Float32Array(total), r = new Float32Array(total);
  let s = seed >>> 0;
  for (let i = 0; i < total; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
    r[i] = ((s >>> 7) & 1023) / 1024 - 0.5;
  }
  const views = (flat: Float32Array) => {
    let off = 0;
    return sizes.map((n) => flat.subarray(off, (off += n)));
  };
  return { total, act: views(a), ret: views(r), out: views(new Float32Array(total)) };
}

/** The per-tensor loop a JavaScript user would write. */
export function naiveSurgery(act: Float32Array[], ret: Float32Array[], out: Float32Array[], lambda: number, eps: number) {
  let normSq = 0, conflicts = 0;
  for (let i = 0; i < act.length; ++i) {
    const a = act[i]!, r = ret[i]!, o = out[i]!;
    let d = 0, q = 0;
    for (let j = 0; j < a.length; ++j) {
      d += a[j]! * r[j]!;
      q += r[j]! * r[j]!;
    }
    const conflict = d < 0;
    if (conflict) conflicts++;
    const c = lambda - (conflict ? d / (q + eps) : 0);
    for (let j = 0; j < a.length; ++j) {
      const v = a[j]! + c * r[j]!;
      o[j] = v;
      normSq += v * v;
    }
  }
  return { conflicts, gradNorm: Math.sqrt(normSq) };
}

export function benchLayout(name: string, sizes: number[], reps: number): LayoutResult {
  const set = makeSet(sizes, 12345);
  // The faster of a copy of this data size and of a large buffer (glibc switches to
  // non-temporal stores for large copies): the stricter floor.
  const bw = Math.max(copyBandwidth(set.total), copyBandwidth(64 * 2 ** 20));
  const floor = (12 * set.total) / bw;
  const tNaive = timeIt(() => naiveSurgery(set.act, set.ret, set.out, 0.05, 1e-8), { reps: Math.min(reps, 3), warmup: 1 });
  const tOut = timeIt(() => surgery(set.act, set.ret, { lambda: 0.05, out: set.out }), { reps });
  const copy = set.act.map((a) => a.slice());
  const tInPlace = timeIt(() => surgery(copy, set.ret, { lambda: 0.05, out: copy }), { reps });
  return {
    name, tensors: sizes.length, elements: set.total, copyGBs: bw / 1e9, floorMs: floor * 1e3,
    naiveMs: tNaive * 1e3, outMs: tOut * 1e3, inPlaceMs: tInPlace * 1e3,
  };
}

/** Microseconds per synchronous call on one 1,024-element tensor. */
export function singleTensorLatency(): { withOutUs: number; freshOutUs: number } {
  const a = new Float32Array(1024).fill(0.5), r = new Float32Array(1024).fill(-0.25), out = new Float32Array(1024);
  const n = 100000;
  const withOut = timeIt(() => { for (let i = 0; i < n; ++i) surgery([a], [r], { lambda: 0.05, out: [out] }); }, { reps: 5, warmup: 1 });
  const fresh = timeIt(() => { for (let i = 0; i < n; ++i) surgery([a], [r], { lambda: 0.05 }); }, { reps: 5, warmup: 1 });
  return { withOutUs: (withOut / n) * 1e6, freshOutUs: (fresh / n) * 1e6 };
}

export function formatTable(rows: LayoutResult[]): string {
  const f = (x: number, d = 1) => x.toFixed(d);
  return [
    '| layout | tensors | elements | copy GB/s | floor ms | naive JS ms (× floor) | craftgrad ms (× floor) | craftgrad in place ms (× floor) | speed-up vs naive |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${r.tensors} | ${f(r.elements / 1e6)} M | ${f(r.copyGBs)} | ${f(r.floorMs)} | ` +
      `${f(r.naiveMs)} (${f(r.naiveMs / r.floorMs, 2)}×) | ${f(r.outMs)} (${f(r.outMs / r.floorMs, 2)}×) | ` +
      `${f(r.inPlaceMs)} (${f(r.inPlaceMs / r.floorMs, 2)}×) | ${f(r.naiveMs / r.outMs)}× |`),
  ].join('\n');
}
