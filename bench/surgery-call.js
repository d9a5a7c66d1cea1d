#!/usr/bin/env node
// node bench/surgery-call.js [--baseline DIR [--baseline-name TEXT]] [--rounds N] [--calls N] [--record]
// The fixed cost of one small synchronous surgery call: one 1,024-element tensor, through
// the public surgery() (src/surgery.ts) and through the raw binding with the options
// object surgery() builds, with a preallocated `out` (and, for reference, allocating it, and
// on TensorSets). The arithmetic is ~1k fmas: what is timed is the call itself. For the
// cost per tensor, one list of 10,000 tensors of 8 elements (views of one buffer per
// list, as GradSets are), timed with calls/1000 calls per round.
//
// --baseline DIR times another build of craftgrad in the same process, interleaved with this
// one (A/B): DIR is a checkout with its own dist/ and build/Release (e.g. `git archive` of an
// older commit, `tsc`, and its addon); --baseline-name says what it is in the record. Each
// round times `calls` calls of every form on both, in alternating order; the figures are
// the medians over the rounds, per call.
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadavg } from 'node:os';
import { describeMachine } from '../dist/bench/timing.js';
import { median, recordSection } from './common.js';

const { values: args } = parseArgs({
  options: {
    baseline: { type: 'string' }, 'baseline-name': { type: 'string' }, rounds: { type: 'string', default: '101' }, calls: { type: 'string', default: '2000' },
    record: { type: 'boolean', default: false },
  },
});
const rounds = Number(args.rounds), calls = Number(args.calls);

async function load(dir) {
  const url = (f) => pathToFileURL(join(dir, 'dist', f)).href;
  const api = await import(url('index.js'));
  const { binding } = await import(url('native.js'));
  return { api, binding };
}

/** The forms timed, each a function doing `n` calls. */
function forms({ api, binding }) {
  const a = new Float32Array(1024).fill(0.5), r = new Float32Array(1024).fill(-0.25), out = new Float32Array(1024);
  const A = [a], R = [r], O = [out];
  const rawOptions = { lambda: 0.05, eps: 1e-8, projection: true, cosines: false, out: O, sizes: undefined, device: 'cpu' };
  const sa = new binding.TensorSet({ device: 'cpu', sizes: [1024], data: a.slice() });
  const sr = new binding.TensorSet({ device: 'cpu', sizes: [1024], data: r.slice() });
  const so = new binding.TensorSet({ device: 'cpu', sizes: [1024] });
  const setOptions = { lambda: 0.05, eps: 1e-8, projection: true, cosines: false, out: so, sizes: undefined, device: undefined };
  const K = 10000, views = (seed) => {
    const buf = new Float32Array(K * 8).map((_, i) => Math.sin(seed * i));
    return Array.from({ length: K }, (_, i) => buf.subarray(8 * i, 8 * i + 8));
  };
  const LA = views(1), LR = views(2), LO = views(3);
  let sink = 0;
  return {
    'surgery(), preallocated out': (n) => { for (let i = 0; i < n; ++i) sink += api.surgery(A, R, { lambda: 0.05, out: O }).numConflicts; },
    'raw binding.surgery, preallocated out': (n) => { for (let i = 0; i < n; ++i) sink += binding.surgery(A, R, rawOptions).numConflicts; },
    'surgery(), allocating out': (n) => { for (let i = 0; i < n; ++i) sink += api.surgery(A, R, { lambda: 0.05 }).numConflicts; },
    'raw binding.surgery on TensorSets, preallocated out': (n) => { for (let i = 0; i < n; ++i) sink += binding.surgery(sa, sr, setOptions).numConflicts; },
    'surgery(), 10,000 tensors of 8, preallocated out': (n) => { for (let i = 0; i < Math.max(1, n / 1000); ++i) sink += api.surgery(LA, LR, { lambda: 0.05, out: LO }).numConflicts; },
    sink: () => sink,
  };
}

function timePerCallUs(fn, name) {
  const n = name.includes('10,000') ? Math.max(1, calls / 1000) : calls;
  const start = process.hrtime.bigint();
  fn(calls);
  return Number(process.hrtime.bigint() - start) / 1e3 / n;
}

const variants = [];
if (args.baseline) variants.push({ name: 'baseline', dir: resolve(args.baseline), label: args['baseline-name'] });
variants.push({ name: 'this build', dir: resolve(new URL('..', import.meta.url).pathname) });
for (const v of variants) {
  v.lib = await load(v.dir);
  v.forms = forms(v.lib);
  v.isa = v.lib.api.backendInfo().cpu.isa;
  v.commit = (() => {
    try { return execFileSync('git', ['-C', v.dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return ''; }
  })();
}
const names = Object.keys(variants[0].forms).filter((k) => k !== 'sink');
const times = variants.map(() => Object.fromEntries(names.map((n) => [n, []])));
const loadStart = loadavg()[0];
for (const v of variants) for (const n of names) v.forms[n](calls * 5);  // warm-up: JIT and caches
for (let round = 0; round < rounds; ++round) {
  for (const n of names) {
    const order = round % 2 ? [...variants.keys()].reverse() : [...variants.keys()];
    for (const i of order) times[i][n].push(timePerCallUs(variants[i].forms[n], n));
  }
}
const loadEnd = loadavg()[0];

const header = `| synchronous call (1,024 elements unless said) | ${variants.map((v) => `${v.name} µs`).join(' | ')}${variants.length > 1 ? ' | this / baseline' : ''} |`;
const rows = names.map((n) => {
  const m = times.map((t) => median(t[n]));
  return `| ${n} | ${m.map((x) => x.toFixed(2)).join(' | ')}${m.length > 1 ? ` | ${(m[1] / m[0]).toFixed(2)} |` : ' |'}`;
});
const table = [header, `|---|${variants.map(() => '---:|').join('')}${variants.length > 1 ? '---:|' : ''}`, ...rows].join('\n');
const machine = describeMachine();
const note = `median over ${rounds} rounds of ${calls} calls each (per call), forms and builds interleaved; ` +
  `kernels ${variants.map((v) => v.isa).join(' / ')}; 1-minute load average ${loadStart.toFixed(2)} at the start, ${loadEnd.toFixed(2)} at the end`;
console.log(`${machine}\n${note}\n${table}`);
for (const v of variants) v.forms.sink();

if (args.record) {
  recordSection('surgery-call', `## Fixed cost of a small surgery call (\`node bench/surgery-call.js${args.baseline ? ' --baseline DIR' : ''} --record\`)

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${machine}
- ${variants.map((v) => `${v.name}: ${v.label ?? (v.commit || v.dir)}`).join('; ')}
- ${note}

${table}`);
  console.log('recorded in bench/RESULTS.md');
}
