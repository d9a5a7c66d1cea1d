// One point of `bench:surgery -- --device cuda --sweep-groups` (bench/surgery-cuda.js):
// the surgery of the VLA-adapter-like layout on the GPU, timed under the
// CRAFTGRAD_CUDA_GROUP_BYTES this process was started with (the addon reads it once per
// process). Prints JSON: the budget in effect (backendInfo().cuda.tuning.groupBytes) and
// the wall-clock milliseconds per call.
//   CRAFTGRAD_CUDA_GROUP_BYTES=N node bench/surgery-cuda-point.js --device 0 --reps 20
import { parseArgs } from 'node:util';
import { surgery, GradSet, backendInfo } from '../dist/index.js';
import { vlaAdapterLayout } from '../dist/bench/layouts.js';
import { hostData, timeCall } from './surgery-cuda.js';

const { values: args } = parseArgs({ options: { device: { type: 'string', default: '0' }, reps: { type: 'string', default: '20' } } });
const opts = { device: `cuda:${args.device}` };
const sizes = vlaAdapterLayout();
const { a: ha, r: hr } = hostData(sizes, 1);
const a = GradSet.zeros(sizes, opts), r = GradSet.zeros(sizes, opts), out = GradSet.zeros(sizes, opts);
a.set(ha);
r.set(hr);
const ms = timeCall(() => surgery(a, r, { lambda: 0.05, out }), Number(args.reps));
for (const set of [a, r, out]) set.dispose();
console.log(JSON.stringify({ groupBytes: backendInfo().cuda.tuning.groupBytes, ms }));
