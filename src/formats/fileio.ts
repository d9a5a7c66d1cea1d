// Whole-file reads and chunked, fsynced writes shared by the file-level readers/writers.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { FormatError } from './errors.js';
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
 * Caps on text files that are parsed whole, checked against the file's size before a byte is
 * read. JSON.parse holds at most ~25× its input (measured: 22× for `[{},{},...]`, 14× for
 * `[[],...]`, 5× for numbers), the yaml package ~500× (flow sequences of empty lists), and
 * the real files are kilobytes (configs, manifests, statistics, indexes) or a few MB
 * (tokenizer.json, vocab.json, merges.txt), so the caps bound what parsing can take.
 */
export const JSON_FILE_MAX_BYTES = 16 << 20;
export const TOKENIZER_FILE_MAX_BYTES = 64 << 20;
export const OPTIONS_FILE_MAX_BYTES = 256 << 10;

function tooLarge(path: string, format: string, size: number, maxBytes: number): FormatError {
  return new FormatError(format, `is ${size} bytes, over the ${maxBytes}-byte cap on files of this kind (refused before reading it)`, { file: path, field: 'file size' });
}

/**
 * A text file as UTF-8 (as fs.readFile(path, 'utf8') gives it), refused with a FormatError
 * of `format` naming the file and its size when it holds more than `maxBytes`; errors opening
 * or reading it are fs's own (ENOENT and the like), for the caller to word.
 */
export async function readTextFile(path: string, format: string, maxBytes: number = JSON_FILE_MAX_BYTES): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size > maxBytes) throw tooLarge(path, format, size, maxBytes);
    // One byte more than the cap: a file that grew since stat is caught too.
    const buf = Buffer.allocUnsafe(Math.min(size, maxBytes) + 1);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, pos, buf.length - pos, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      if (pos > maxBytes) throw tooLarge(path, format, pos, maxBytes);
      if (pos === buf.length) break;
    }
    return buf.toString('utf8', 0, pos);
  } finally {
    await fh.close();
  }
}

/** readTextFile, synchronously (for the CLI's option files and the run layer's config). */
export function readTextFileSync(path: string, format: string, maxBytes: number = JSON_FILE_MAX_BYTES): string {
  const fd = openSync(path, 'r');
  try {
    const { size } = fstatSync(fd);
    if (size > maxBytes) throw tooLarge(path, format, size, maxBytes);
    const buf = Buffer.allocUnsafe(Math.min(size, maxBytes) + 1);
    let pos = 0;
    for (;;) {
      const bytesRead = readSync(fd, buf, pos, buf.length - pos, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      if (pos > maxBytes) throw tooLarge(path, format, pos, maxBytes);
      if (pos === buf.length) break;
    }
    return buf.toString('utf8', 0, pos);
  } finally {
    closeSync(fd);
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
