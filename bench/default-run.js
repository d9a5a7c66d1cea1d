#!/usr/bin/env node
// node bench/default-run.js [--record]
// How long the README's default run takes: `craftgrad train` with no arguments (the
// embedded default: 1,500 CRaFT steps on the synthetic dataset), started in a fresh
// directory as a user would. Records the wall time of the whole command (start-up, data,
// training, validation, checkpoints, report) and the samples/s and training time the run's
// own summary states. The tests check what the run learns, never how fast it is.
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { backendInfo } from '../dist/index.js';
import { describeMachine } from '../dist/bench/timing.js';
import { recordSection } from './common.js';

const { values: args } = parseArgs({ options: { record: { type: 'boolean', default: false } } });
const bin = fileURLToPath(new URL('../bin/craftgrad.js', import.meta.url));
const cwd = mkdtempSync(join(tmpdir(), 'craftgrad-default-run-'));
try {
  const load = loadavg()[0];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bin, 'train'], { cwd, encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) {
    console.error(`craftgrad train failed (exit ${r.status ?? r.signal}):\n${r.stderr}`);
    process.exit(1);
  }
  // "craftgrad: finished 1500 steps in 13.6 s, 4212 samples/s (2304 training, ...)"
  const m = /finished (\d+) steps in ([\d.]+) s, (\d+) samples\/s/.exec(r.stdout);
  if (!m) {
    console.error(`the run's summary has no 'finished N steps in S s, R samples/s' line:\n${r.stdout}`);
    process.exit(1);
  }
  const info = backendInfo();
  const lines = [
    '## The default run (`craftgrad train`, no arguments)',
    '',
    `- machine: ${describeMachine()}; ISA ${info.cpu.isa}, ${info.cpu.threads} threads; 1-minute load average at the start ${load.toFixed(1)}`,
    `- command: \`node bench/default-run.js${args.record ? ' --record' : ''}\` (runs \`craftgrad train\` in a fresh directory); date ${new Date().toISOString().slice(0, 10)}`,
    '',
    '| steps | wall time of the command | training time (summary) | samples/s (summary) |',
    '|---:|---:|---:|---:|',
    `| ${m[1]} | ${wall.toFixed(1)} s | ${m[2]} s | ${m[3]} |`,
    '',
    'One run on a machine shared with other sessions: the figures are what this run took, not a bound.',
  ];
  const text = lines.join('\n');
  console.log(text);
  if (args.record) recordSection('default-run', text);
} finally {
  rmSync(cwd, { recursive: true, force: true });
}
