// One process of bench/surgery-isa.js: both layouts with the kernel variant the
// environment selects; prints JSON.
import { backendInfo } from '../dist/index.js';
import { vlaAdapterLayout, manySmallLayout } from '../dist/bench/layouts.js';
import { benchLayout } from '../dist/bench/surgery-bench.js';

const reps = Number(process.argv[2] ?? 5);
console.log(JSON.stringify({
  isa: backendInfo().cpu.isa,
  vla: benchLayout('VLA-adapter-like', vlaAdapterLayout(), reps),
  small: benchLayout('many-small', manySmallLayout(), reps),
}));
