// The safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes  little-endian u64 N = header length
//   N bytes  UTF-8 JSON {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {k: v}}
//   rest     the data buffer; offsets are relative to its start
// We write what Python's `safetensors.torch.load_file` accepts: header padded with spaces
// to a multiple of 8 (so the data buffer starts 8-aligned), tensors packed with no gaps.
// Bounds: 1× the file (tensors are views) + the header, whose length is checked against
// SAFETENSORS_MAX_HEADER (100 MiB) and the file's length before it is read.
import { FormatError } from './errors.js';
import { readWholeFile, writeChunksSynced } from './fileio.js';
import { topLevelKeys } from './json-keys.js';
import {
  type DType, type Tensor, type TypedArray,
  bytesOf, checkTensor, dtypeSize, isDType, isValidShape, numel, viewAs,
} from './tensor.js';

/** Headers above this are refused before allocating: real ones are kilobytes. */
export const SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024;

export interface SafetensorsInput {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

export interface SafetensorsContent {
  tensors: Record<string, Tensor>;
  /** The `__metadata__` map, or undefined when the file has none. */
  metadata: Record<string, string> | undefined;
}

export interface DecodeOptions {
  /** File name to put in error messages. */
  source?: string;
}

const METADATA_KEY = '__metadata__';

type Fail = (field: string, detail: string) => never;

function failer(file: string | undefined): Fail {
  return (field: string, detail: string): never => {
    throw new FormatError('safetensors', detail, { file, field });
  };
}

// Own-property assignment: a tensor may legitimately be called "__proto__".
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Header bytes (padded) and the data chunks in file order, shared by both writers. */
function layout(
  tensors: Record<string, SafetensorsInput>,
  metadata: Record<string, string> | undefined,
  file: string | undefined,
): { header: Uint8Array; chunks: Uint8Array[] } {
  const fail: Fail = failer(file);
  if (tensors === null || typeof tensors !== 'object') fail('tensors', 'must be an object of name -> tensor');
  const head: Record<string, unknown> = {};
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object') fail(METADATA_KEY, 'must be an object of string -> string');
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') fail(`${METADATA_KEY}.${k}`, `metadata values must be strings, got ${typeof v}`);
    }
    setOwn(head, METADATA_KEY, { ...metadata });
  }
  // Sorted-name order makes the file a pure function of its content.
  const names = Object.keys(tensors).sort();
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) fail(`tensors["${name}"]`, 'the name __metadata__ is reserved');
    const t = tensors[name]!;
    checkTensor(t, `tensors["${name}"]`, fail);
    const bytes = bytesOf(t.data);
    setOwn(head, name, { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.length] });
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(head));
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8); // spaces are valid JSON whitespace
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, chunks };
}

/** Encodes tensors (and optional string metadata) into one safetensors byte array. */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const { header, chunks } = layout(tensors, metadata, undefined);
  const total = chunks.reduce((s, c) => s + c.length, header.length);
  const out = new Uint8Array(total);
  out.set(header, 0);
  let pos = header.length;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/**
 * Writes a safetensors file straight from the tensors' memory (no full in-memory copy),
 * fsynced before it returns. Atomic publication (temp name + rename) is the caller's job.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  const { header, chunks } = layout(tensors, metadata, path);
  await writeChunksSynced(path, [header, ...chunks]);
}


/** One tensor of a parsed header: where its bytes lie in the data buffer. */
export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte offsets relative to the start of the data buffer (after the header). */
  begin: number;
  end: number;
}

/** The 8-byte length prefix: the header's byte length, checked against the cap and the file size. */
export function readHeaderLength(prefix: Uint8Array, fileLength: number, source?: string): number {
  const fail: Fail = failer(source);
  if (fileLength < 8 || prefix.length < 8) fail('header length', `file is ${fileLength} bytes, shorter than the 8-byte header length`);
  const n64 = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(SAFETENSORS_MAX_HEADER)) fail('header length', `${n64} exceeds the ${SAFETENSORS_MAX_HEADER}-byte cap`);
  const n = Number(n64);
  if (8 + n > fileLength) fail('header length', `${n} runs past the end of the file (${fileLength} bytes)`);
  return n;
}

/**
 * Parses and checks a header (the N bytes after the length prefix) for a data buffer of
 * `dataLength` bytes: every structural rule, including that the tensors tile the buffer
 * exactly. Entries come back in header order. Shared by the whole-file decoder and the
 * streaming reader (src/formats/safetensors-stream.ts).
 */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  dataLength: number,
  source?: string,
): { entries: SafetensorsEntry[]; metadata: Record<string, string> | undefined } {
  const fail: Fail = failer(source);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch (e) {
    return fail('header', 'is not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return fail('header', `is not valid JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    fail('header', 'must be a JSON object');
  }
  const header = parsed as Record<string, unknown>;
  const seen = new Set<string>();
  for (const key of topLevelKeys(text)) {
    if (seen.has(key)) fail(key === METADATA_KEY ? METADATA_KEY : `tensors["${key}"]`, 'appears more than once in the header');
    seen.add(key);
  }

  let metadata: Record<string, string> | undefined;
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (info === null || typeof info !== 'object' || Array.isArray(info)) fail(METADATA_KEY, 'must be an object of string -> string');
      metadata = {};
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`${METADATA_KEY}.${k}`, `metadata values must be strings, got ${JSON.stringify(v)}`);
        setOwn(metadata, k, v);
      }
      continue;
    }
    const where = `tensors["${name}"]`;
    if (info === null || typeof info !== 'object' || Array.isArray(info)) fail(where, 'must be an object {dtype, shape, data_offsets}');
    const { dtype, shape, data_offsets: offs } = info as Record<string, unknown>;
    if (!isDType(dtype)) fail(`${where}.dtype`, `unknown dtype ${JSON.stringify(dtype)}`);
    if (!isValidShape(shape)) fail(`${where}.shape`, `must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`${where}.data_offsets`, `must be [begin, end] non-negative integers, got ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) fail(`${where}.data_offsets`, `begin ${begin} is after end ${end}`);
    if (end > dataLength) fail(`${where}.data_offsets`, `end ${end} is beyond the data buffer (${dataLength} bytes)`);
    const expected = numel(shape) * dtypeSize(dtype);
    if (end - begin !== expected) {
      fail(`${where}.data_offsets`, `span ${end - begin} bytes does not match shape [${shape.join(', ')}] of ${dtype} (${expected} bytes)`);
    }
    entries.push({ name, dtype, shape, begin, end });
  }

  // The tensors must tile the data buffer exactly: no overlap, no gap, nothing after.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: SafetensorsEntry | undefined;
  for (const e of sorted) {
    if (e.begin < cursor) fail(`tensors["${e.name}"].data_offsets`, `[${e.begin}, ${e.end}] overlaps tensor "${prev!.name}" [${prev!.begin}, ${prev!.end}]`);
    if (e.begin > cursor) fail(`tensors["${e.name}"].data_offsets`, `leaves a gap: bytes [${cursor}, ${e.begin}) of the data buffer belong to no tensor`);
    cursor = e.end;
    prev = e;
  }
  if (cursor !== dataLength) fail('data_offsets', `tensors cover ${cursor} bytes but the data buffer has ${dataLength} (trailing bytes)`);
  return { entries, metadata };
}

/**
 * Decodes a safetensors buffer. Tensors are views into `bytes` when aligned (copies
 * otherwise), so keep `bytes` unmodified while they are in use. Every structural rule
 * is checked; errors are FormatError naming the file (options.source) and the field.
 */
export function decodeSafetensors(bytes: Uint8Array, options: DecodeOptions = {}): SafetensorsContent {
  const n = readHeaderLength(bytes, bytes.length, options.source);
  const { entries, metadata } = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n, options.source);
  const data = bytes.subarray(8 + n);
  const tensors: Record<string, Tensor> = {};
  for (const e of entries) {
    setOwn(tensors, e.name, { dtype: e.dtype, shape: e.shape, data: viewAs(data.subarray(e.begin, e.end), e.dtype) });
  }
  return { tensors, metadata };
}

/** Reads and decodes a safetensors file; errors name the path. */
export async function readSafetensorsFile(path: string): Promise<SafetensorsContent> {
  return decodeSafetensors(await readWholeFile(path), { source: path });
}
