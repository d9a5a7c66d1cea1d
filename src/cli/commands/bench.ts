// craftgrad bench: the surgery benchmarks (the same code as `npm run bench:surgery`).
import type { Argv } from 'yargs';
import { backendInfo } from '../../backend.js';
import { manySmallLayout, vlaAdapterLayout } from '../../bench/layouts.js';
import { benchLayout, formatTable, singleTensorLatency } from '../../bench/surgery-bench.js';
import { describeMachine } from '../../bench/timing.js';

export function registerBench(y: Argv): Argv {
  return y.command('bench', 'Benchmark the surgery primitive against a naive loop and the memory floor',
    (b) => b
      .option('layout', { choices: ['vla', 'many-small', 'all'] as const, default: 'all' as const, describe: 'Tensor layout to measure' })
      .option('reps', { type: 'number', default: 5, describe: 'Timed repetitions (the median is reported)' })
      .check((a) => {
        if (!Number.isInteger(a.reps) || a.reps < 1) throw new Error(`--reps must be a positive integer, got ${a.reps}`);
        return true;
      }),
    (args) => {
      const info = backendInfo();
      console.log(`craftgrad ${info.version}: ${describeMachine()}; CPU kernels ${info.cpu.isa}, ${info.cpu.threads} threads`);
      const rows = [];
      if (args.layout !== 'many-small') rows.push(benchLayout('VLA-adapter-like', vlaAdapterLayout(), args.reps));
      if (args.layout !== 'vla') rows.push(benchLayout('many-small', manySmallLayout(), args.reps));
      console.log(formatTable(rows));
      const lat = singleTensorLatency();
      console.log(`single 1,024-element tensor: ${lat.withOutUs.toFixed(2)} µs per call (preallocated out), ${lat.freshOutUs.toFixed(2)} µs (fresh out)`);
    });
}
