#!/usr/bin/env node
// The short table scripts/device/session.sh prints last (and writes to $OUT/summary.md):
// one row per step that ran, its result and seconds, and the figures that matter from its
// log. Reads STEPS (lines: name, exit status, seconds) and the logs in OUT.
//   node scripts/device/summary.mjs OUT STEPS
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [out, stepsFile] = process.argv.slice(2);
const read = (name) => (existsSync(join(out, name)) ? readFileSync(join(out, name), 'utf8') : '');
const lastMatch = (text, re) => [...text.matchAll(re)].pop();
// The part of a log that step NAME wrote: from its '=== NAME (limit' header to the next step's
// (several steps share bench.log).
const stepLog = (file, name) => {
  const parts = read(file).split(/^(?==== \S+ \(limit )/m);
  return parts.filter((p) => p.startsWith(`=== ${name} (limit `)).pop() ?? '';
};
// The #29 targets line of a bf16 step benchmark: 'Targets (#29): CRaFT step ... ; peak memory ...'.
const bf16Step = (name) => {
  const log = stepLog('bench.log', name);
  const targets = lastMatch(log, /^Targets \(#29\): (.*)$/gm)?.[1];
  const via = lastMatch(log, /^- precision(?: bf16, asked for through|:) (.*)$/gm)?.[1] ?? '';
  const rehearsal = /REHEARSAL \(--tiny\)/.test(log) ? 'REHEARSAL (--tiny, figures mean nothing): ' : '';
  return targets ? `${rehearsal}${targets}${/step-call arguments/.test(via) ? ' [bf16 through step-call arguments: no policy option in this build]' : ''}` : '';
};

const figures = {
  probe: () => {
    const log = read('probe.log');
    const line = (key) => lastMatch(log, new RegExp(`^${key}: (.*)$`, 'gm'))?.[1] ?? '?';
    return `${line('nvidia-smi')}; ${line('glibc').split(' (')[0]}; addon ${line('addon')}`;
  },
  tests: () => {
    const log = read('tests.log');
    const n = (key) => lastMatch(log, new RegExp(`^# ${key} (\\d+)$`, 'gm'))?.[1] ?? '?';
    return `pass ${n('pass')}, fail ${n('fail')}, skipped ${n('skipped')}, cancelled ${n('cancelled')}`;
  },
  readers: () => read('readers.log').split('\n').filter((l) => l.startsWith('{"check"')).map((l) => {
    const r = JSON.parse(l);
    return `${r.reader}: ${r.ok ? 'same' : `${r.problems} differences`} (${r.check === 'safetensors' ? `${r.files} files, ${r.tensors} tensors` : `${r.tags} tags, ${r.values} values`})`;
  }).join('; '),
  torch: () => {
    try {
      const t = JSON.parse(read('surgery-torch.json'));
      return `PyTorch per-tensor loop ${t.torch_loop_ms.median.toFixed(3)} ms (torch ${t.torch}, ${t.gpu})`;
    } catch {
      return '';
    }
  },
  surgery: () => {
    const log = read('bench.log');
    const row = lastMatch(log, /^\| craftgrad, preallocated out \| ([\d.]+) \| ([\d.]+) \|$/gm);
    const speedup = lastMatch(log, /^craftgrad is ([\d.]+)x faster than the PyTorch loop$/gm);
    return row ? `${row[1]} ms, ${row[2]}× the HBM floor${speedup ? `, ${speedup[1]}× faster than PyTorch` : ''}` : '';
  },
  optimizer: () => lastMatch(read('bench.log'), /Median: (fused step [\d.]+× floor)/g)?.[1] ?? '',
  model: () => {
    const row = lastMatch(read('bench.log'), /^\| CRaFT \(Trainer\.step[^|]*\| ([\d.]+) \| ([\d.n/a]+) \| ([^|]+) \|$/gm);
    return row ? `CRaFT step ${row[1]} samples/s, PyTorch ${row[2]} (${row[3].trim()})` : '';
  },
  sanitize: () => lastMatch(read('sanitize.log'), /ERROR SUMMARY: (\d+ errors?)/g)?.[1] ?? '',
  bf16kernels: () => {
    const log = stepLog('bench.log', 'bf16kernels');
    const peak = lastMatch(log, /^bf16 dense peak of this run: ([\d.]+ TFLOP\/s), (\S+) through (.*?)\. Every/gm);
    const all = lastMatch(log, /^\| all of the above, flop-weighted[^|]*\| (\d+) \| ([\d]+%|n\/a) \|/gm);
    const products = lastMatch(log, /^Target \(#29\) products >= 60%[^:]*: (met by all \d+ products|not met by \d+ of \d+ products|not measured[^.]*)/gm)?.[1];
    const attention = lastMatch(log, /^Target \(#29\) within 1\.3× of flash[^:]*: (met by all \d+ shapes compared|not met by .*|not measured)\.$/gm)?.[1]
      ?? (/Fused bf16 attention against flash: NOT MEASURED/.test(log) ? 'attention NOT MEASURED (see bench.log)' : '');
    return [/REHEARSAL \(--tiny\)/.test(log) ? 'REHEARSAL (--tiny, figures mean nothing)' : '', peak ? `bf16 peak ${peak[1]} (${peak[2]}, ${peak[3].startsWith('torch') ? 'torch.matmul' : 'ours'})` : '',
      all ? `step products ${all[2]} of it (flop-weighted)` : '', products ? `>= 60%: ${products}` : '', attention ? `attention <= 1.3× flash: ${attention}` : '']
      .filter(Boolean).join('; ');
  },
  qwen2bf16: () => bf16Step('qwen2bf16'),
  vlabf16: () => bf16Step('vlabf16'),
};

const steps = readFileSync(stepsFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
const lines = ['| step | result | s | figures |', '|---|---|---:|---|'];
let total = 0;
for (const [name, rc, seconds] of steps) {
  total += Number(seconds);
  const result = rc === '0' ? 'ok' : rc === '124' || rc === '137' ? 'TIMED OUT' : `FAILED (exit ${rc})`;
  let text = '';
  try {
    text = figures[name]?.() ?? '';
  } catch (e) {
    text = `(figures unreadable: ${e.message})`;
  }
  lines.push(`| ${name} | ${result} | ${seconds} | ${text.replaceAll('|', '/')} |`);
}
lines.push(`\n${steps.length} steps, ${total} s; logs and RESULTS.md in $OUT.`);
console.log(lines.join('\n'));
