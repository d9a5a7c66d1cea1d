#!/usr/bin/env node
// npm run bench:surgery [-- --record] [--reps N]
// The CPU surgery benchmark (src/bench/surgery-bench.ts); --record writes its section of
// bench/RESULTS.md with the machine, command and date.
import { parseArgs } from 'node:util';
import { backendInfo } from '../dist/index.js';
import { vlaAdapterLayout, manySmallLayout } from '../dist/bench/layouts.js';
import { benchLayout, singleTensorLatency, formatTable } from '../dist/bench/surgery-bench.js';
import { describeMachine } from '../dist/bench/timing.js';
import { recordSection } from './common.js';

const { values: args } = parseArgs({
  options: { record: { type: 'boolean', default: false }, reps: { type: 'string', default: '7' }, device: { type: 'string', default: 'cpu' },
    'torch-json': { type: 'string' }, 'sweep-groups': { type: 'boolean', default: false } },
});
if (args.device !== 'cpu') {
  // ---- --device cuda|cuda:N: the GPU benchmark lives in bench/surgery-cuda.js ----
  const { runCudaBench } = await import('./surgery-cuda.js');
  process.exit(await runCudaBench(args));
}
const reps = Number(args.reps);
const info = backendInfo();
console.log(`craftgrad ${info.version} CPU surgery benchmark: ${describeMachine()}; kernels ${info.cpu.isa}, ${info.cpu.threads} threads`);
const rows = [benchLayout('VLA-adapter-like', vlaAdapterLayout(), reps), benchLayout('many-small', manySmallLayout(), reps)];
const lat = singleTensorLatency();
const table = formatTable(rows);
const latency = `Single 1,024-element tensor, synchronous call: ${lat.withOutUs.toFixed(2)} µs with a preallocated \`out\`, ${lat.freshOutUs.toFixed(2)} µs allocating the output.`;
console.log(table);
console.log(latency);

if (args.record) {
  recordSection('surgery-cpu', `## Surgery primitive, CPU (\`npm run bench:surgery -- --record\`)

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${describeMachine()}
- Kernels: ${info.cpu.isa} (available: ${info.cpu.available.join(', ')}), ${info.cpu.threads} threads
- Floor: 12 bytes per element (a and r read once, out written once) over the bandwidth of a plain copy (TypedArray.set = memcpy, read + write bytes; the faster of a copy of the same size and of a 256 MB one), measured in the same run. Median of ${reps} runs (naive: 3).
- "craftgrad" writes a separate preallocated \`out\`; "in place" passes \`out: act\`.

${table}

${latency}`);
  console.log('recorded in bench/RESULTS.md');
}
