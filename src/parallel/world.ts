// The ranks of a multi-process run (README "Multi-process training"): MPI's world, with
// the few collectives training needs, every one of them deterministic (sums in rank order),
// and the end-of-process rule that keeps a job from hanging: a rank that ends without
// `markComplete()` aborts the whole job (MPI_Abort), so its peers never wait forever in a
// collective; one that completed finalizes MPI (which waits for the others).
import { inspect } from 'node:util';
import type { RawMpi } from '../../binding.js';
import { initMpi, mpiCompiled } from '../native-calls.js';
import { shareOf } from '../data/shard.js';
import { detectLauncher } from './launcher.js';
import { rebuildAdvice } from '../rebuild.js';

type Mpi = RawMpi;

/**
 * What a launcher with a build without MPI is told: what to install and the rebuild
 * command from where this craftgrad stands (src/rebuild.ts).
 */
export function noMpiMessage(evidence: string, root?: string, env?: NodeJS.ProcessEnv): string {
  return `started by an MPI launcher (${evidence}) but this build of craftgrad has no MPI support: ` +
    `install an MPI implementation (Debian: apt-get install libopenmpi-dev), then rebuild craftgrad with ${rebuildAdvice(root, env)} ` +
    '(see README "Troubleshooting")';
}

export class World {
  readonly rank: number;
  readonly size: number;
  readonly #mpi: Mpi;
  #complete = false;

  private constructor(mpi: Mpi) {
    this.#mpi = mpi;
    this.rank = mpi.rank();
    this.size = mpi.size();
    // Node emits 'exit' for an uncaught error before it prints the error, and abort() never
    // returns: keep the error and print it first, or the rank would die without a word.
    let fatal: { error: unknown } | undefined;
    process.on('uncaughtExceptionMonitor', (error) => { fatal = { error }; });
    process.on('exit', (code) => {
      if (this.#complete) {
        this.#mpi.finalize();
        return;
      }
      if (fatal) process.stderr.write(`${inspect(fatal.error)}\n`);
      this.#mpi.abort(Math.min(255, Math.max(1, code || 1)));
    });
  }

  /**
   * The world when a launcher started this process (MPI initialised once), else undefined.
   * A launcher with a build that has no MPI is an error, not a silent single-process run:
   * every rank would train the whole run on its own.
   */
  static open(env: NodeJS.ProcessEnv = process.env): World | undefined {
    const launcher = detectLauncher(env);
    if (!launcher) return undefined;
    if (!mpiCompiled()) {
      throw new Error(noMpiMessage(launcher.evidence));
    }
    const mpi = initMpi();
    return (World.#opened ??= new World(mpi));
  }
  static #opened: World | undefined;

  /** This rank's contiguous share [start, end) of `count` items: the first count % size ranks take one more. */
  share(count: number): { start: number; end: number } {
    return shareOf(count, { rank: this.rank, ranks: this.size });
  }

  /**
   * Bytes this rank has sent through the collectives so far: the payload each call hands
   * to MPI for other ranks (an all-to-all's segments for the others, an all-gather's own
   * segment once per other rank, ...), not the transport's own traffic. For benchmarks.
   */
  bytesSent = 0;

  /** This rank's (or `rank`'s) segment [start, end) of n floats: the unit of the rank-order reductions. */
  segment(n: number, rank = this.rank): { start: number; end: number } {
    const [start, end] = this.#mpi.segment(n, rank, this.size);
    return { start, end };
  }

  #mine(n: number): number {
    const { start, end } = this.segment(n);
    return end - start;
  }

  /** What a rank-order reduce-scatter of n floats sends for other ranks (every segment but its own), for bytesSent; DeviceGroup counts its NCCL calls with it too. */
  reduceScatterBytes(n: number): number {
    return 4 * (n - this.#mine(n));
  }

  /** What an all-gather of n floats' segments sends for other ranks (its own segment once per other rank). */
  allgatherBytes(n: number): number {
    return 4 * this.#mine(n) * (this.size - 1);
  }

  /** Sums each Float32Array across ranks, in place, in rank order (bit-identical on every rank). */
  sumInRankOrder(arrays: Float32Array[]): void {
    this.#mpi.sumInRankOrder(arrays);
    for (const a of arrays) this.bytesSent += this.reduceScatterBytes(a.length) + this.allgatherBytes(a.length);
  }

  /**
   * The first half of sumInRankOrder: this rank's segment of each array ends holding the
   * rank-order sum of every rank's copy of it (the bits sumInRankOrder gives there); the
   * rest of the array is left as it was.
   */
  reduceScatterInRankOrder(arrays: Float32Array[]): void {
    this.#mpi.reduceScatterInRankOrder(arrays);
    for (const a of arrays) this.bytesSent += this.reduceScatterBytes(a.length);
  }

  /** The second half of sumInRankOrder: every rank's segment of each array into every rank's. */
  allgatherSegments(arrays: Float32Array[]): void {
    this.#mpi.allgatherSegments(arrays);
    for (const a of arrays) this.bytesSent += this.allgatherBytes(a.length);
  }

  /** Every rank's segment of n floats (`segment`: this rank's) into a new array on `root`; undefined elsewhere. */
  gatherSegments(segment: Float32Array, n: number, root = 0): Float32Array | undefined {
    const full = this.#mpi.gatherSegments(segment, n, root);
    if (this.rank !== root) this.bytesSent += 4 * segment.length;
    return full;
  }

  /** MPI_Allreduce(MPI_SUM) in place: the implementation's order (for benchmarks only). */
  allreduceSum(arrays: Float32Array[]): void {
    this.#mpi.allreduceSum(arrays);
  }

  /** Each rank's `values`, rank by rank. */
  allgather(values: readonly number[] | Float64Array): number[][] {
    const flat = this.#mpi.allgather(values instanceof Float64Array ? values : Float64Array.from(values));
    const k = values.length;
    this.bytesSent += 8 * k * (this.size - 1);
    return Array.from({ length: this.size }, (_, r) => Array.from(flat.subarray(r * k, (r + 1) * k)));
  }

  /** The sums of `values` across ranks, added in rank order (the same doubles on every rank). */
  sum(values: readonly number[]): number[] {
    const all = this.allgather(values);
    return values.map((_, i) => all.reduce((s, row) => s + row[i]!, 0));
  }

  /** Root's bytes into every rank's `data` (the same length on every rank). */
  broadcast(data: ArrayBufferView & { length: number }, root = 0): void {
    this.#mpi.broadcast(data, root);
    if (this.rank === root) this.bytesSent += data.byteLength * (this.size - 1);
  }

  /** Root's JSON value on every rank (others pass undefined). */
  broadcastJson<T>(value: T | undefined, root = 0): T {
    const text = this.rank === root ? Buffer.from(JSON.stringify(value ?? null)) : undefined;
    const length = new Float64Array([text?.length ?? 0]);
    this.broadcast(length, root);
    const bytes = text ? new Uint8Array(text) : new Uint8Array(length[0]!);
    this.broadcast(bytes, root);
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
  }

  barrier(): void {
    this.#mpi.barrier();
  }

  /**
   * Says that this rank ended the run as its peers did (all reached the same point, the
   * barrier below): at exit MPI is finalized, not aborted, whatever the exit code.
   */
  markComplete(): void {
    this.barrier();
    this.#complete = true;
  }
}
