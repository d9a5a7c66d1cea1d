// npm run bench:surgery -- --device cuda [--reps N] [--torch-json FILE] [--record] [--sweep-groups]
// The GPU side of the surgery benchmark (ARCHITECTURE.md §3), on the VLA-adapter-like layout:
//   * craftgrad on GradSets that live on the GPU (synchronous call, wall clock: launches,
//     the one stream sync and the result object included), with a preallocated out and
//     in place;
//   * the HBM floor: 12 bytes per element over the bandwidth of a device-to-device copy
//     timed with CUDA events in the same run (the faster of a copy of the same size and
//     of a 256 M-element one);
//   * the PyTorch per-tensor loop, from the JSON that bench/surgery-cuda-torch.py prints
//     on the same GPU (--torch-json), when given.
// Called from bench/surgery.js; prints JSON and a table; --record writes the
// 'surgery-cuda' section of bench/RESULTS.md (only figures measured in this run).
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { surgery, GradSet, backendInfo } from '../dist/index.js';
import { vlaAdapterLayout } from '../dist/bench/layouts.js';
import { benchCudaDevice, benchNatives, cudaTuningText, median, recordSection, seededUniform } from './common.js';

export function hostData(sizes, seed) {
  const total = sizes.reduce((x, y) => x + y, 0);
  const a = new Float32Array(total), r = new Float32Array(total);
  const next = seededUniform(seed);  // a and r drawn in turn, so r can lean on a
  let off = 0;
  sizes.forEach((n, i) => {
    const sign = i % 2 === 0 ? -0.7 : 0.7; // about half of the tensors conflict
    for (let j = off; j < off + n; ++j) {
      a[j] = next();
      r[j] = 0.5 * next() + sign * a[j];
    }
    off += n;
  });
  return { a, r, total };
}

export function timeCall(fn, reps) {
  for (let i = 0; i < 3; ++i) fn();
  const ms = [];
  for (let i = 0; i < reps; ++i) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return { median: median(ms), best: Math.min(...ms) };
}

export async function runCudaBench(args) {
  const picked = benchCudaDevice(args.device, 'bench:surgery');
  if (!picked) return 2;
  const device = String(picked.index);
  const dev = picked.info;
  const info = backendInfo();
  const reps = Number(args.reps ?? 20);
  const sizes = vlaAdapterLayout();
  const { a: ha, r: hr, total } = hostData(sizes, 1);
  const opts = { device: `cuda:${device}` };
  const a = GradSet.zeros(sizes, opts), r = GradSet.zeros(sizes, opts), out = GradSet.zeros(sizes, opts);
  a.set(ha);
  r.set(hr);
  const lambda = 0.05;
  const first = surgery(a, r, { lambda, out });
  const withOut = timeCall(() => surgery(a, r, { lambda, out }), reps);
  const inPlaceSet = GradSet.zeros(sizes, opts);
  inPlaceSet.set(ha);
  const inPlace = timeCall(() => surgery(inPlaceSet, r, { lambda, out: inPlaceSet }), reps);

  const copyMs = (n) => median(benchNatives('bench/surgery-cuda.js').cudaTimeCopy(Number(device), n, reps));
  const copySame = (8 * total) / (copyMs(total) * 1e-3) / 1e9;
  const copyBig = (8 * 256 * 2 ** 20) / (copyMs(256 * 2 ** 20) * 1e-3) / 1e9;
  const copyGBs = Math.max(copySame, copyBig);
  const floorMs = ((12 * total) / (copyGBs * 1e9)) * 1e3;

  let torch;
  if (args['torch-json']) torch = JSON.parse(readFileSync(args['torch-json'], 'utf8'));
  const result = {
    benchmark: 'surgery-cuda',
    date: new Date().toISOString().slice(0, 10),
    gpu: dev.name,
    computeCapability: dev.computeCapability,
    driverVersion: info.cuda.driverVersion,
    runtimeVersion: info.cuda.runtimeVersion,
    layout: { name: 'VLA-adapter-like', tensors: sizes.length, elements: total },
    reps,
    conflictRatio: first.conflictRatio,
    copyGBps: { sameSize: copySame, big: copyBig, used: copyGBs },
    floorMs,
    craftgradMs: withOut,
    craftgradOverFloor: withOut.median / floorMs,
    inPlaceMs: inPlace,
    inPlaceOverFloor: inPlace.median / floorMs,
  };
  if (torch) {
    if (torch.gpu !== dev.name) console.warn(`warning: the PyTorch figures were taken on ${torch.gpu}, this GPU is ${dev.name}`);
    result.torch = { gpu: torch.gpu, loopMs: torch.torch_loop_ms, floorMs: torch.floor_ms };
    result.speedupOverTorchLoop = torch.torch_loop_ms.median / withOut.median;
  }
  console.log(JSON.stringify(result, null, 1));
  const rows = [
    `| | ms (median) | × floor |`,
    `|---|---:|---:|`,
    `| HBM floor (12 B/element at ${copyGBs.toFixed(0)} GB/s D2D copy) | ${floorMs.toFixed(3)} | 1.00 |`,
    `| craftgrad, preallocated out | ${withOut.median.toFixed(3)} | ${result.craftgradOverFloor.toFixed(2)} |`,
    `| craftgrad, in place | ${inPlace.median.toFixed(3)} | ${result.inPlaceOverFloor.toFixed(2)} |`,
  ];
  if (torch) {
    rows.push(`| PyTorch per-tensor loop (bench/surgery-cuda-torch.py) | ${torch.torch_loop_ms.median.toFixed(3)} | ${(torch.torch_loop_ms.median / floorMs).toFixed(2)} |`);
  }
  const table = rows.join('\n');
  console.log(table);
  if (torch) console.log(`craftgrad is ${result.speedupOverTorchLoop.toFixed(1)}x faster than the PyTorch loop`);
  if (args.record) {
    recordSection('surgery-cuda', `## Surgery primitive, CUDA (\`npm run bench:surgery -- --device cuda --record\`)

- Date: ${result.date}; GPU: ${dev.name} (sm ${dev.computeCapability}); driver ${info.cuda.driverVersion}, runtime ${info.cuda.runtimeVersion}
- CUDA tuning: ${cudaTuningText()}
- Layout: VLA-adapter-like, ${sizes.length} tensors, ${total} elements; conflict ratio ${first.conflictRatio.toFixed(2)}
- craftgrad: synchronous \`surgery()\` on GradSets on the GPU, wall clock per call (launches, one stream sync, result object), median of ${reps}.
- Floor: 12 bytes per element over the device-to-device copy bandwidth (CUDA events, same run).${torch ? `\n- PyTorch loop: \`python3 bench/surgery-cuda-torch.py\` on ${torch.gpu} (torch ${torch.torch}), CUDA events, median of ${torch.reps}.` : ''}

${table}
${torch ? `\ncraftgrad / PyTorch loop: ${result.speedupOverTorchLoop.toFixed(1)}x faster.` : ''}`);
    console.log('recorded in bench/RESULTS.md');
  }
  for (const s of [a, r, out, inPlaceSet]) s.dispose();
  if (args['sweep-groups'] && !sweepGroupBytes(device, reps, floorMs, dev)) return 1;
  return 0;
}

// --sweep-groups: the surgery at several CRAFTGRAD_CUDA_GROUP_BYTES (the a + r bytes per
// tensor group), to tune the default of 40% of L2 from one run. The addon reads the
// variable once per process, so each point runs in its own child process
// (bench/surgery-cuda-point.js), which reports the budget in effect. Prints a table;
// records nothing. Returns false if a point failed.
function sweepGroupBytes(device, reps, floorMs, dev) {
  const l2 = dev.l2CacheBytes;
  const child = fileURLToPath(new URL('./surgery-cuda-point.js', import.meta.url));
  const rows = ['| group bytes (a + r) | of L2 | ms (median) | × floor |', '|---:|---:|---:|---:|'];
  let ok = true;
  for (const fraction of [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 2.0, 1000]) {
    const bytes = Math.round(fraction * l2);
    const r = spawnSync(process.execPath, [child, '--device', device, '--reps', String(reps)], {
      env: { ...process.env, CRAFTGRAD_CUDA_GROUP_BYTES: String(bytes) }, encoding: 'utf8' });
    let point;
    try {
      point = r.status === 0 ? JSON.parse(r.stdout) : undefined;
    } catch {
      point = undefined;
    }
    if (!point || point.groupBytes !== bytes) {
      console.error(`bench:surgery --sweep-groups: the point at ${bytes} bytes failed (exit ${r.status}, budget in effect ${point?.groupBytes}): ${r.stderr.trim()}`);
      ok = false;
      continue;
    }
    rows.push(`| ${fraction === 1000 ? 'one group' : bytes} | ${fraction === 1000 ? '' : `${(100 * fraction).toFixed(0)}%`} | ${point.ms.median.toFixed(3)} | ${(point.ms.median / floorMs).toFixed(2)} |`);
  }
  console.log(`\nGroup size sweep on ${dev.name} (L2 ${(l2 / 2 ** 20).toFixed(0)} MiB, one process per point):\n${rows.join('\n')}`);
  return ok;
}
