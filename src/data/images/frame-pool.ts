// The robot datasets' per-frame work (decode, resize, augment, the processor's normalisation)
// on worker threads (issue #28, "Throughput"; docs/ARCHITECTURE.md §4g). Each job runs the
// same function as the in-thread path (prepareNormalizedFrame: prepareFrame, then
// normalizeImage per view) with the same draws (augmentRng(seed, step, sample) is rebuilt in
// the worker from those three integers), so a worker's pixels equal the main thread's to the
// bit. What moves off the main thread is the decode (the addon's, synchronous; sharp's, for
// the JPEGs it does not decode and PNGs, on libuv's threads), resize, augmentation and
// normalisation (the addon's, native-ops.ts, on the calling thread).
//
// Workers start on the first job and are unref'd while idle (a process whose work is done
// exits without close()), ref'd while they hold a job (a pending job keeps the process alive
// until it settles). close() terminates them.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { PixelNormalization } from '../vla-dataset.js';
import { augmentRng, prepareFrame, type FrameAugment } from './frame.js';
import { normalizeImageNative } from './native-ops.js';

/** What one frame needs besides its encoded views. */
export interface FrameJob {
  /** Output side in pixels. */
  size: number;
  augment: FrameAugment;
  /** For `'random'`: the arguments of augmentRng (seed, step, sample). */
  draw?: readonly [number, number, number];
}

export type FrameNormalization = readonly [PixelNormalization, PixelNormalization];

/**
 * One frame's views → the model's pixels: views × 6 × size × size float32 (per view the
 * featurizer's three normalised channels, then the fused featurizer's), as the batches hold them.
 */
export async function prepareNormalizedFrame(views: readonly Uint8Array[], job: FrameJob, norm: FrameNormalization): Promise<Float32Array> {
  const rng = job.augment === 'random' && job.draw ? augmentRng(job.draw[0], job.draw[1], job.draw[2]) : undefined;
  const frame = await prepareFrame(views, { size: job.size, augment: job.augment, ...(rng ? { rng } : {}) });
  const H = job.size, plane = H * H * 3, px = 6 * H * H;
  const out = new Float32Array(views.length * px);
  for (let v = 0; v < views.length; v++) normalizeImageNative(frame.subarray(v * plane, (v + 1) * plane), H, norm, out.subarray(v * px, (v + 1) * px));
  return out;
}

/** The default pool size: one thread per core less the main thread's, at least 1. */
export function defaultFrameThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** The process's node options less --input-type, which a worker started from a file refuses (`node --input-type=module -e …`). */
function workerExecArgv(): string[] {
  const out: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const a = process.execArgv[i]!;
    if (a === '--input-type') i++;
    else if (!a.startsWith('--input-type=')) out.push(a);
  }
  return out;
}

interface Pending {
  resolve: (px: Float32Array) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** A frame job's failure in a worker, with the worker's message. */
export class FrameWorkerError extends Error {
  override name = 'FrameWorkerError';
}

export class FramePool {
  readonly threads: number;
  readonly #norm: FrameNormalization;
  readonly #slots: (Slot | undefined)[];
  #next = 0;
  #closed = false;

  constructor(options: { threads?: number; normalization: FrameNormalization }) {
    const n = options.threads ?? defaultFrameThreads();
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new RangeError(`threads must be an integer in [1, 256], got ${n}`);
    this.threads = n;
    this.#norm = options.normalization;
    this.#slots = new Array<Slot | undefined>(n).fill(undefined);
  }

  /** prepareNormalizedFrame(views, job) on a worker. The views are copied (never transferred away from the caller). */
  prepare(views: readonly Uint8Array[], job: FrameJob): Promise<Float32Array> {
    if (this.#closed) return Promise.reject(new FrameWorkerError('the frame pool is closed'));
    // The least busy worker (started on first use).
    let best = 0;
    for (let k = 1; k < this.threads; k++) if ((this.#slots[k]?.pending.size ?? 0) < (this.#slots[best]?.pending.size ?? 0)) best = k;
    const slot = this.#slots[best] ?? this.#start(best);
    const id = this.#next++;
    // A copy of each view's bytes (they are views of the episode's record): only they cross.
    const copies = views.map((b) => b.slice());
    return new Promise<Float32Array>((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, views: copies, job: { size: job.size, augment: job.augment, ...(job.draw ? { draw: [...job.draw] } : {}) } },
        copies.map((c) => c.buffer as ArrayBuffer));
    });
  }

  #start(k: number): Slot {
    const worker = new Worker(new URL('./frame-worker.js', import.meta.url), { workerData: { normalization: this.#norm }, execArgv: workerExecArgv() });
    const slot: Slot = { worker, pending: new Map() };
    this.#slots[k] = slot;
    worker.unref();
    worker.on('message', (m: { id: number; pixels?: Float32Array; error?: string }) => {
      const p = slot.pending.get(m.id);
      if (!p) return;
      slot.pending.delete(m.id);
      if (slot.pending.size === 0) worker.unref();
      if (m.error !== undefined) p.reject(new FrameWorkerError(m.error));
      else p.resolve(m.pixels!);
    });
    const fail = (why: string) => {
      if (this.#slots[k] === slot) this.#slots[k] = undefined;  // the next job starts a fresh one
      for (const p of slot.pending.values()) p.reject(new FrameWorkerError(why));
      slot.pending.clear();
    };
    worker.on('error', (e) => fail(`frame worker failed: ${e.message}`));
    worker.on('exit', (code) => fail(`frame worker exited (code ${code})`));
    return slot;
  }

  /** Terminates the workers; jobs still pending are rejected. */
  async close(): Promise<void> {
    this.#closed = true;
    const slots = this.#slots.filter((s): s is Slot => s !== undefined);
    this.#slots.fill(undefined);
    for (const s of slots) {
      for (const p of s.pending.values()) p.reject(new FrameWorkerError('the frame pool was closed'));
      s.pending.clear();
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
