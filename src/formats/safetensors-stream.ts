// Reads a safetensors file in one sequential pass without holding it in memory: the
// header is parsed and checked first, the caller says where each tensor goes (a float32
// destination, or nowhere), then the data is read piece by piece into one small scratch
// buffer, widened into the destinations and fed to a sha256 of the whole file. A 1 GB
// bf16 model thus costs its float32 destinations plus a few MiB, and one read.
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { FormatError } from './errors.js';
import { type FloatDType, isFloatDType, widenToF32 } from './float16.js';
import { type SafetensorsEntry, parseSafetensorsHeader, readHeaderLength } from './safetensors.js';
import { numel } from './tensor.js';

/** Bytes read per piece; a multiple of every element size. */
const PIECE_BYTES = 8 << 20;

export interface StreamedSafetensors {
  path: string;
  /** File size in bytes. */
  bytes: number;
  /** Hex sha256 of the whole file. */
  sha256: string;
  /** Every tensor of the header, in data order. */
  entries: SafetensorsEntry[];
  metadata: Record<string, string> | undefined;
}

export interface StreamOptions {
  /** Refuse NaN and ±inf in the converted tensors (the error names the tensor). Default true. */
  requireFinite?: boolean;
  /** Bytes per read (tests use small pieces to cross element and tensor boundaries). */
  pieceBytes?: number;
}

/**
 * Where each tensor goes: a float32 array of exactly its element count, or undefined to
 * skip it (its bytes are still hashed). Called once with the checked header, before any
 * data is read, so it can refuse missing, extra or misshapen tensors early.
 */
export type StreamPlan = (entries: SafetensorsEntry[], metadata: Record<string, string> | undefined) => Map<string, Float32Array>;

async function readFully(fh: FileHandle, buf: Uint8Array, position: number, path: string, what: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new FormatError('safetensors', `the file ended early (it changed while being read?)`, { file: path, field: what });
    done += bytesRead;
  }
}

/** Streams `path` into the destinations `plan` picks; returns the file's size, sha256 and header. */
export async function streamSafetensorsFile(path: string, plan: StreamPlan, options: StreamOptions = {}): Promise<StreamedSafetensors> {
  const requireFinite = options.requireFinite ?? true;
  const pieceBytes = options.pieceBytes ?? PIECE_BYTES;
  if (!Number.isSafeInteger(pieceBytes) || pieceBytes < 8 || pieceBytes % 8 !== 0) throw new RangeError(`options.pieceBytes must be a positive multiple of 8, got ${pieceBytes}`);
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const hash = createHash('sha256');
    const prefix = new Uint8Array(8);
    if (size >= 8) await readFully(fh, prefix, 0, path, 'header length');
    const n = readHeaderLength(prefix, size, path);
    const headerBytes = new Uint8Array(n);
    await readFully(fh, headerBytes, 8, path, 'header');
    hash.update(prefix).update(headerBytes);
    const { entries, metadata } = parseSafetensorsHeader(headerBytes, size - 8 - n, path);
    const ordered = [...entries].sort((a, b) => a.begin - b.begin);
    const dest = plan(ordered, metadata);

    // A multiple of 8 bytes, so a piece never splits an element.
    const scratch = new Uint8Array(Math.min(pieceBytes, Math.ceil(Math.max(8, size) / 8) * 8));
    const base = 8 + n;
    for (const e of ordered) {
      const out = dest.get(e.name);
      const where = `tensors["${e.name}"]`;
      if (out !== undefined) {
        if (!isFloatDType(e.dtype)) throw new FormatError('safetensors', `dtype ${e.dtype} is not a floating-point type (need F32, F16 or BF16)`, { file: path, field: `${where}.dtype` });
        if (out.length !== numel(e.shape)) throw new RangeError(`streamSafetensorsFile: destination of ${e.name} has ${out.length} elements, the tensor ${numel(e.shape)}`);
      }
      const elem = e.dtype === 'F32' ? 4 : 2;
      for (let pos = e.begin; pos < e.end; ) {
        const len = Math.min(scratch.length, e.end - pos);
        const piece = scratch.subarray(0, len);
        await readFully(fh, piece, base + pos, path, where);
        hash.update(piece);
        if (out !== undefined) {
          const first = (pos - e.begin) / elem;
          const count = len / elem;
          const dst = out.subarray(first, first + count);
          const src = e.dtype === 'F32' ? new Float32Array(scratch.buffer, 0, count) : new Uint16Array(scratch.buffer, 0, count);
          widenToF32(e.dtype as FloatDType, src, dst);
          if (requireFinite) {
            for (let i = 0; i < dst.length; i++) {
              if (!Number.isFinite(dst[i]!)) throw new FormatError('safetensors', `has a non-finite value (${dst[i]}) at flat index ${first + i}`, { file: path, field: where });
            }
          }
        }
        pos += len;
      }
    }
    return { path, bytes: size, sha256: hash.digest('hex'), entries: ordered, metadata };
  } finally {
    await fh.close();
  }
}

/** Hex sha256 of a file, read in pieces (never whole). */
export async function sha256File(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buf = new Uint8Array(PIECE_BYTES);
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return hash.digest('hex');
  } finally {
    await fh.close();
  }
}
