// Timing, machine description and the memory-bandwidth floor for benchmarks.
import os from 'node:os';

/** Median wall time in seconds of `reps` runs of fn after `warmup` runs. */
export function timeIt(fn: () => unknown, { reps = 7, warmup = 2 } = {}): number {
  for (let i = 0; i < warmup; ++i) fn();
  const t: number[] = [];
  for (let i = 0; i < reps; ++i) {
    const start = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

/**
 * Best wall time in seconds of `reps` runs of fn after `warmup` runs: on a shared machine
 * interference only adds time, so the minimum is the figure to compare.
 */
export function bestTime(fn: () => unknown, { reps = 5, warmup = 1 } = {}): number {
  for (let i = 0; i < warmup; ++i) fn();
  let best = Infinity;
  for (let i = 0; i < reps; ++i) {
    const start = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return best;
}

/** bestTime for an asynchronous fn (each run awaited), such as Trainer.step loops. */
export async function bestTimeAsync(fn: () => Promise<unknown>, { reps = 5, warmup = 1 } = {}): Promise<number> {
  for (let i = 0; i < warmup; ++i) await fn();
  let best = Infinity;
  for (let i = 0; i < reps; ++i) {
    const start = process.hrtime.bigint();
    await fn();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return best;
}

/**
 * Bandwidth of a plain copy (bytes read + bytes written per second) of `elements` floats:
 * the physical reference benchmark figures are divided by. TypedArray.set is a memcpy.
 */
export function copyBandwidth(elements: number): number {
  const src = new Float32Array(elements).fill(1);
  const dst = new Float32Array(elements);
  const seconds = timeIt(() => dst.set(src), { reps: 9, warmup: 2 });
  return (2 * 4 * elements) / seconds;
}

export function describeMachine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
    `${os.platform()} ${os.release()}, Node ${process.version}`;
}
