// A safetensors file written piece by piece: the header first (every shape is known up
// front), then each tensor's bytes in the header's order, some of them produced while the
// file is written (an async iterable of chunks), so a file larger than memory can be made
// from a stream (`craftgrad data --export` writes the decoded images this way). The layout
// is safetensors.ts's: names sorted, header padded with spaces to a multiple of 8, tensors
// packed with no gaps; the same tensors give the same bytes as encodeSafetensors. Published
// atomically: a sibling temp file, fsynced, renamed over the path, the directory fsynced;
// on any failure the temp file is removed and the path is left as it was.
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FormatError } from './errors.js';
import { type DType, type TypedArray, bytesOf, dtypeSize, isDType, isValidShape, numel } from './tensor.js';

/** One tensor: its bytes at hand, or produced in order while the file is written. */
export interface StreamedTensor {
  dtype: DType;
  shape: number[];
  /** Either the whole tensor ... */
  data?: TypedArray;
  /** ... or its bytes in order (any chunking); they must add up to numel(shape)·dtypeSize. */
  chunks?: () => AsyncIterable<Uint8Array>;
}

const METADATA_KEY = '__metadata__';
const IO_CHUNK = 1 << 30;

/** The header bytes (length prefix included) and the names in data order. */
export function streamedSafetensorsHeader(tensors: Record<string, StreamedTensor>, metadata: Record<string, string> | undefined, file?: string): { header: Uint8Array; names: string[]; bytes: number[] } {
  const fail = (field: string, detail: string): never => {
    throw new FormatError('safetensors', detail, { file, field });
  };
  const head: Record<string, unknown> = {};
  const put = (k: string, v: unknown): void => void Object.defineProperty(head, k, { value: v, enumerable: true, writable: true, configurable: true });
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') fail(`${METADATA_KEY}.${k}`, `metadata values must be strings, got ${typeof v}`);
    put(METADATA_KEY, { ...metadata });
  }
  const names = Object.keys(tensors).sort();
  const bytes: number[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) fail(`tensors["${name}"]`, 'the name __metadata__ is reserved');
    const t = tensors[name]!;
    if (!isDType(t.dtype)) fail(`tensors["${name}"].dtype`, `unknown dtype ${JSON.stringify(t.dtype)}`);
    if (!isValidShape(t.shape)) fail(`tensors["${name}"].shape`, `must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`);
    if ((t.data === undefined) === (t.chunks === undefined)) fail(`tensors["${name}"]`, 'give either data or chunks');
    const n = numel(t.shape) * dtypeSize(t.dtype);
    if (t.data !== undefined && t.data.byteLength !== n) fail(`tensors["${name}"].data`, `holds ${t.data.byteLength} bytes, shape [${t.shape.join(', ')}] of ${t.dtype} needs ${n}`);
    put(name, { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + n] });
    bytes.push(n);
    offset += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(head));
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, names, bytes };
}

/**
 * Writes the tensors to `path` as one safetensors file, streaming the `chunks` tensors, and
 * publishes it atomically. A chunk source that yields too few or too many bytes is an error
 * (nothing is published).
 */
export async function publishSafetensorsStreamed(path: string, tensors: Record<string, StreamedTensor>, metadata?: Record<string, string>): Promise<void> {
  const { header, names, bytes } = streamedSafetensorsHeader(tensors, metadata, path);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, 'w');
    try {
      const write = async (chunk: Uint8Array): Promise<void> => {
        for (let off = 0; off < chunk.length;) {
          const { bytesWritten } = await fh.write(chunk, off, Math.min(IO_CHUNK, chunk.length - off));
          off += bytesWritten;
        }
      };
      await write(header);
      for (const [i, name] of names.entries()) {
        const t = tensors[name]!;
        if (t.data !== undefined) {
          await write(bytesOf(t.data));
          continue;
        }
        let written = 0;
        for await (const chunk of t.chunks!()) {
          written += chunk.length;
          if (written > bytes[i]!) break;
          await write(chunk);
        }
        if (written !== bytes[i]) {
          throw new FormatError('safetensors', `the stream gave ${written > bytes[i]! ? 'more than' : written} bytes, the header promises ${bytes[i]}`, { file: path, field: `tensors["${name}"]` });
        }
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
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
