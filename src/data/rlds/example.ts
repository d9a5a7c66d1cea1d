// tf.train.Example, decoded and encoded by hand (tensorflow/core/example/example.proto and
// feature.proto):
//   message Example   { Features features = 1; }
//   message Features  { map<string, Feature> feature = 1; }   // map entry: key = 1, value = 2
//   message Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
//   message BytesList { repeated bytes value = 1; }
//   message FloatList { repeated float value = 1 [packed = true]; }
//   message Int64List { repeated int64 value = 1 [packed = true]; }
//
// Why by hand and not protobufjs (or another runtime): six tiny messages whose only payloads
// are typed arrays and byte strings. A generic runtime decodes a FloatList into a JS number[]
// and an Int64List into Long objects, one allocation per value, where an episode holds ~10^4
// floats and a few hundred JPEGs; here a packed FloatList becomes one Float32Array (a single
// copy), an Int64List one BigInt64Array (no BigInt arithmetic), and every bytes value a view
// of the record, no copy. The rest of the repository does the same for the TensorBoard event
// proto (src/formats/protobuf.ts, tfevents-reader.ts). The decoder is bounded: every length is
// checked against the bytes left before it is used, a varint is at most 10 bytes. Memory: a
// packed list's values are ≤ 8× its bytes (an int64 from a 1-byte varint), the record itself
// is shared by the bytes values; each separately framed piece (a bytes value, an unpacked
// scalar) costs a ~100-byte object from as little as 2 bytes of input, so pieces are capped
// at EXAMPLE_MAX_PIECES per Example (~100 MB; an RLDS episode has thousands).
//
// Proto semantics followed: fields of unknown numbers are skipped; a repeated scalar is
// accepted packed or not (a conforming parser must accept both); a message field that occurs
// twice is merged (its repeated values concatenate); for the oneof `kind`, the last member
// seen wins; for a map key seen twice, the last entry wins.
import { ProtoWriter } from '../../formats/protobuf.js';

export type ExampleFeature =
  | { kind: 'bytes'; values: Uint8Array[] }
  | { kind: 'float'; values: Float32Array }
  | { kind: 'int64'; values: BigInt64Array }
  /** A Feature with no member of `kind` set: read as an empty list of any type. */
  | { kind: 'none' };

/** The features of one Example by key, in the order their map entries were first seen. */
export type ExampleFeatures = Map<string, ExampleFeature>;

/** Thrown by decodeExample; `detail` says what was wrong (the caller adds file and record). */
export class ExampleDecodeError extends Error {
  constructor(readonly detail: string, readonly key?: string) {
    super(key === undefined ? detail : `feature '${key}': ${detail}`);
    this.name = 'ExampleDecodeError';
  }
}

/** Most bytes values plus unpacked scalar fields one Example may hold (see the header). */
export const EXAMPLE_MAX_PIECES = 1 << 20;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8 = new TextDecoder('utf-8', { fatal: true });

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

class Reader {
  pos: number;
  constructor(readonly b: Uint8Array, start: number, readonly end: number, private readonly key?: string) {
    this.pos = start;
  }
  fail(detail: string): never {
    throw new ExampleDecodeError(detail, this.key);
  }
  get done(): boolean {
    return this.pos >= this.end;
  }
  /** A varint's value as a JS number (exact below 2^53; used for tags and lengths). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const byte = this.b[this.pos++]!;
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) return result;
      mul *= 128;
    }
    return this.fail('varint longer than 10 bytes');
  }
  /** A varint's low and high 32 bits (int64 values, two's complement). */
  varint64(out: DataView, at: number): void {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const byte = this.b[this.pos++]!;
      const bits = byte & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (byte < 0x80) {
        out.setUint32(at, lo >>> 0, true);
        out.setUint32(at + 4, hi >>> 0, true);
        return;
      }
    }
    this.fail('varint longer than 10 bytes');
  }
  /** A length-delimited field's [start, end) after checking it fits. */
  span(): [number, number] {
    const n = this.varint();
    if (n > this.end - this.pos) this.fail(`length ${n} runs past the end of its message (${this.end - this.pos} bytes left)`);
    const start = this.pos;
    this.pos += n;
    return [start, this.pos];
  }
  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_FIXED64) this.advance(8);
    else if (wire === WIRE_LEN) this.span();
    else if (wire === WIRE_FIXED32) this.advance(4);
    else this.fail(`unsupported wire type ${wire}`);
  }
  advance(n: number): void {
    if (n > this.end - this.pos) this.fail(`field needs ${n} bytes, ${this.end - this.pos} left`);
    this.pos += n;
  }
  /** The next tag as [field number, wire type]. */
  tag(): [number, number] {
    const t = this.varint();
    const field = Math.floor(t / 8);
    if (field === 0) this.fail('field number 0');
    return [field, t % 8];
  }
}

type Pending =
  | { kind: 'bytes'; values: Uint8Array[] }
  | { kind: 'float'; chunks: Array<[number, number]>; count: number }
  | { kind: 'int64'; chunks: Array<[number, number]>; count: number }
  | { kind: 'none' };

/** Counts the varints in [start, end) (each ends with a byte < 0x80); the last must be complete. */
function countVarints(b: Uint8Array, start: number, end: number, r: Reader): number {
  let n = 0;
  for (let i = start; i < end; i++) if (b[i]! < 0x80) n++;
  if (end > start && b[end - 1]! >= 0x80) r.fail('truncated varint in a packed Int64List');
  return n;
}

function decodeFeature(b: Uint8Array, start: number, end: number, key: string, budget: { pieces: number }): Pending {
  const r = new Reader(b, start, end, key);
  const piece = (): void => {
    if (--budget.pieces < 0) r.fail(`the Example holds more than ${EXAMPLE_MAX_PIECES} separately framed values (bytes values and unpacked scalars); refused`);
  };
  let cur: Pending = { kind: 'none' };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (wire !== WIRE_LEN || field > 3) {
      r.skip(wire);
      continue;
    }
    const [s, e] = r.span();
    const list = new Reader(b, s, e, key);
    if (field === 1) {
      if (cur.kind !== 'bytes') cur = { kind: 'bytes', values: [] };
      while (!list.done) {
        const [f, w] = list.tag();
        if (f === 1 && w === WIRE_LEN) {
          const [vs, ve] = list.span();
          piece();
          cur.values.push(b.subarray(vs, ve));
        } else list.skip(w);
      }
    } else if (field === 2) {
      if (cur.kind !== 'float') cur = { kind: 'float', chunks: [], count: 0 };
      while (!list.done) {
        const [f, w] = list.tag();
        if (f === 1 && w === WIRE_LEN) {
          const [vs, ve] = list.span();
          if ((ve - vs) % 4 !== 0) list.fail(`packed FloatList of ${ve - vs} bytes is not a multiple of 4`);
          piece();
          cur.chunks.push([vs, ve]);
          cur.count += (ve - vs) / 4;
        } else if (f === 1 && w === WIRE_FIXED32) {
          const at = list.pos;
          list.advance(4);
          piece();
          cur.chunks.push([at, at + 4]);
          cur.count += 1;
        } else list.skip(w);
      }
    } else {
      if (cur.kind !== 'int64') cur = { kind: 'int64', chunks: [], count: 0 };
      while (!list.done) {
        const [f, w] = list.tag();
        if (f === 1 && w === WIRE_LEN) {
          const [vs, ve] = list.span();
          cur.count += countVarints(b, vs, ve, list);
          piece();
          cur.chunks.push([vs, ve]);
        } else if (f === 1 && w === WIRE_VARINT) {
          const at = list.pos;
          list.varint();
          piece();
          cur.chunks.push([at, list.pos]);
          cur.count += 1;
        } else list.skip(w);
      }
    }
  }
  return cur;
}

function finish(b: Uint8Array, p: Pending, key: string): ExampleFeature {
  if (p.kind === 'bytes' || p.kind === 'none') return p;
  if (p.kind === 'float') {
    const out = new Float32Array(p.count);
    let at = 0;
    const bytes = new Uint8Array(out.buffer);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (const [s, e] of p.chunks) {
      if (LITTLE_ENDIAN) bytes.set(b.subarray(s, e), at * 4);
      else for (let i = s; i < e; i += 4) out[at + (i - s) / 4] = dv.getFloat32(i, true);
      at += (e - s) / 4;
    }
    return { kind: 'float', values: out };
  }
  const out = new BigInt64Array(p.count);
  const dv = new DataView(out.buffer);
  let at = 0;
  for (const [s, e] of p.chunks) {
    const r = new Reader(b, s, e, key);
    while (!r.done) {
      r.varint64(dv, at * 8);
      at++;
    }
  }
  return { kind: 'int64', values: out };
}

/**
 * Decodes a serialized tf.train.Example. Values of bytes features are views of `bytes` (keep
 * `bytes` alive while they are used). Throws ExampleDecodeError on malformed protobuf.
 */
export function decodeExample(bytes: Uint8Array): ExampleFeatures {
  const pending = new Map<string, Pending>();
  const budget = { pieces: EXAMPLE_MAX_PIECES };
  const top = new Reader(bytes, 0, bytes.length);
  while (!top.done) {
    const [field, wire] = top.tag();
    if (field !== 1 || wire !== WIRE_LEN) {
      top.skip(wire);
      continue;
    }
    const [fs, fe] = top.span();
    const features = new Reader(bytes, fs, fe);
    while (!features.done) {
      const [f, w] = features.tag();
      if (f !== 1 || w !== WIRE_LEN) {
        features.skip(w);
        continue;
      }
      const [es, ee] = features.span();
      const entry = new Reader(bytes, es, ee);
      let key = '';
      let value: [number, number] | undefined;
      while (!entry.done) {
        const [ef, ew] = entry.tag();
        if (ef === 1 && ew === WIRE_LEN) {
          const [ks, ke] = entry.span();
          try {
            key = utf8.decode(bytes.subarray(ks, ke));
          } catch {
            entry.fail('a feature key is not valid UTF-8');
          }
        } else if (ef === 2 && ew === WIRE_LEN) value = entry.span();
        else entry.skip(ew);
      }
      if (--budget.pieces < 0) entry.fail(`the Example holds more than ${EXAMPLE_MAX_PIECES} features and separately framed values; refused`);
      // A map entry's value is a fresh Feature; a missing value is the default (empty) Feature.
      pending.set(key, value === undefined ? { kind: 'none' } : decodeFeature(bytes, value[0], value[1], key, budget));
    }
  }
  const out: ExampleFeatures = new Map();
  for (const [key, p] of pending) out.set(key, finish(bytes, p, key));
  return out;
}

function encodeFeature(f: ExampleFeature): ProtoWriter {
  const feature = new ProtoWriter();
  if (f.kind === 'none') return feature;
  const list = new ProtoWriter();
  if (f.kind === 'bytes') {
    for (const v of f.values) list.bytes(1, v);
    return feature.message(1, list);
  }
  if (f.kind === 'float') {
    const packed = new Uint8Array(f.values.length * 4);
    const dv = new DataView(packed.buffer);
    f.values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    if (packed.length > 0) list.bytes(1, packed);
    return feature.message(2, list);
  }
  const parts: number[] = [];
  for (const v of f.values) {
    let u = BigInt.asUintN(64, v);
    while (u >= 0x80n) {
      parts.push(Number(u & 0x7fn) | 0x80);
      u >>= 7n;
    }
    parts.push(Number(u));
  }
  if (parts.length > 0) list.bytes(1, Uint8Array.from(parts));
  return feature.message(3, list);
}

/**
 * Serializes an Example with the features in the given order (as TFDS's serializer builds
 * one: tensorflow_datasets/core/example_serializer.py _dict_to_tf_example). Float and int64
 * lists are written packed, as the C++ and Python protobuf serializers do.
 */
export function encodeExample(features: Iterable<[string, ExampleFeature]>): Uint8Array {
  const fs = new ProtoWriter();
  for (const [key, f] of features) {
    const entry = new ProtoWriter().string(1, key).message(2, encodeFeature(f));
    fs.message(1, entry);
  }
  return new ProtoWriter().message(1, fs).finish();
}
