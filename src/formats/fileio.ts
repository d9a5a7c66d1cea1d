// Whole-file reads and chunked, fsynced writes shared by the file-level readers/writers.
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

// A single write()/read() of more than ~2 GiB fails on Linux; stay well below.
const IO_CHUNK = 1 << 30;

/**
 * Reads a whole file into a fresh Uint8Array that starts at offset 0 of its own
 * ArrayBuffer, so typed-array views of 8-byte-aligned data inside need no copy
 * (fs.readFile may hand back a pooled Buffer at an odd offset, and caps at 2 GiB).
 */
export async function readWholeFile(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const out = new Uint8Array(size);
    let pos = 0;
    while (pos < size) {
      const { bytesRead } = await fh.read(out, pos, Math.min(IO_CHUNK, size - pos), pos);
      if (bytesRead === 0) break; // file shrank while reading: the decoder reports truncation
      pos += bytesRead;
    }
    return pos === size ? out : out.subarray(0, pos);
  } finally {
    await fh.close();
  }
}

/**
 * Writes `chunks` in order to `path` (created or truncated), then fsyncs before closing,
 * so a caller that renames the file afterwards never publishes a half-written file.
 */
export async function writeChunksSynced(path: string, chunks: Iterable<Uint8Array>): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (const chunk of chunks) {
      for (let off = 0; off < chunk.length; ) {
        const len = Math.min(IO_CHUNK, chunk.length - off);
        const { bytesWritten } = await fh.write(chunk, off, len);
        off += bytesWritten;
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` atomically with `chunks`: written to a sibling temp file and fsynced,
 * renamed over `path`, then the directory fsynced, so a crash leaves the old file or the
 * new one, never a torn one (the formats layer's own copy of the run layer's rule,
 * src/run/fsio.ts, which it may not import). The temp file is removed on failure.
 */
export async function publishChunksAtomic(path: string, chunks: Iterable<Uint8Array>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeChunksSynced(tmp, chunks);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
