// Bit-for-bit equality: the check of the numeric contract (ARCHITECTURE.md §3), under which
// results are bit-identical for any thread count and instruction set, and run to run.

/** True when two typed arrays (any element type) have the same length and the same bytes. */
export function sameBits(a, b) {
  if (a.length !== b.length || a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
