#!/usr/bin/env node
// node bench/surgery-isa.js [--record]: the CPU surgery benchmark once per kernel variant
// (CRAFTGRAD_CPU_ISA=generic|avx2|avx512, each in its own process), to show whether the
// run-time dispatch to the wider variants pays on this machine.
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { backendInfo } from '../dist/index.js';
import { describeMachine } from '../dist/bench/timing.js';
import { recordSection } from './common.js';

const { values: args } = parseArgs({ options: { record: { type: 'boolean', default: false }, reps: { type: 'string', default: '5' } } });
const child = fileURLToPath(new URL('./surgery-isa-child.js', import.meta.url));
const variants = backendInfo().cpu.available;
const rows = variants.map((isa) => JSON.parse(execFileSync(process.execPath, [child, args.reps], {
  env: { ...process.env, CRAFTGRAD_CPU_ISA: isa }, encoding: 'utf8',
})));
const base = rows[0];
const table = [
  '| kernels | VLA-adapter-like ms (× floor) | many-small ms (× floor) | speed-up over generic (VLA, many-small) |',
  '|---|---:|---:|---:|',
  ...rows.map((r) => `| ${r.isa} | ${r.vla.outMs.toFixed(1)} (${(r.vla.outMs / r.vla.floorMs).toFixed(2)}×) | ` +
    `${r.small.outMs.toFixed(1)} (${(r.small.outMs / r.small.floorMs).toFixed(2)}×) | ` +
    `${(base.vla.outMs / r.vla.outMs).toFixed(2)}×, ${(base.small.outMs / r.small.outMs).toFixed(2)}× |`),
].join('\n');
console.log(table);
if (args.record) {
  recordSection('surgery-cpu-isa', `## Surgery primitive per CPU kernel variant (\`node bench/surgery-isa.js --record\`)

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${describeMachine()}
- Each variant in its own process (CRAFTGRAD_CPU_ISA), preallocated separate \`out\`, median of ${args.reps} runs; floor as in the section above, measured in each process. All variants give the same bits (test/surgery-determinism.test.mjs).

${table}`);
}
