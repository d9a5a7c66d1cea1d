// Timing, machine description and the memory-bandwidth floor for the benchmarks.
import os from 'node:os';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

/** Median wall time in seconds of `reps` runs of fn after `warmup` runs. */
export function timeIt(fn, { reps = 7, warmup = 2 } = {}) {
  for (let i = 0; i < warmup; ++i) fn();
  const t = [];
  for (let i = 0; i < reps; ++i) {
    const start = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

/**
 * Bandwidth of a plain copy (bytes read + bytes written per second) of `elements` floats,
 * the physical reference every figure is divided by. TypedArray.set is a memcpy.
 */
export function copyBandwidth(elements) {
  const src = new Float32Array(elements).fill(1);
  const dst = new Float32Array(elements);
  const seconds = timeIt(() => dst.set(src), { reps: 9, warmup: 2 });
  return (2 * 4 * elements) / seconds;
}

export function machine() {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
    `${os.platform()} ${os.release()}, Node ${process.version}`;
}

/** Replaces (or appends) the section between the markers of `id` in bench/RESULTS.md. */
export function recordSection(id, markdown) {
  const file = new URL('./RESULTS.md', import.meta.url);
  const start = `<!-- ${id}:start -->`, end = `<!-- ${id}:end -->`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n\nEvery figure is a ratio to a baseline or to a physical floor measured in the same run.\n';
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const i = text.indexOf(start), j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
}
