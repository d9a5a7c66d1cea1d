// One rank's contiguous share of a batch or a split (multi-process training): the first
// `count % ranks` ranks take one item more, so the shares, in rank order, are the whole.
import { argRangeError, describeValue } from '../errors.js';
import { checkInteger } from '../validate.js';

export interface Shard {
  /** This process's rank, 0-based. */
  rank: number;
  /** The number of ranks. */
  ranks: number;
}

export function checkShard(shard: unknown, name: string): Shard {
  const s = shard as Shard | null;
  if (s === null || typeof s !== 'object') throw argRangeError(`${name} must be { rank, ranks }, got ${describeValue(shard)}`);
  checkInteger(s.ranks, `${name}.ranks`, 1);
  checkInteger(s.rank, `${name}.rank`, 0, s.ranks - 1);
  return { rank: s.rank, ranks: s.ranks };
}

/** The half-open range [start, end) of `count` items that `shard.rank` takes. */
export function shareOf(count: number, shard: Shard): { start: number; end: number } {
  const base = Math.floor(count / shard.ranks), extra = count % shard.ranks;
  const start = shard.rank * base + Math.min(shard.rank, extra);
  return { start, end: start + base + (shard.rank < extra ? 1 : 0) };
}
