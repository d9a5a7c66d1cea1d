// fast-check arbitraries that turn small valid seed files into hostile ones: bit flips,
// byte sets, truncations, deletions, insertions, spliced copies, integer fields set to
// extremes (little- or big-endian, 1 to 8 bytes wide), numbers in text set to extremes,
// and for JSON seeds a value anywhere in the tree replaced or a key removed. A case is a
// plain value (which seed, which operations), so fast-check can replay and shrink it;
// applyBytes/applyJson turn it into the bytes a reader gets.
import fc from 'fast-check';

/** Integers a length or count field is set to: the edges where readers go wrong. */
export const EXTREME_INTS = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000,
  0xffffffff, 0x100000000, 2 ** 53 - 1, 2 ** 53, 2 ** 63, 2 ** 64 - 1, -1, -(2 ** 31)];
/** Numbers written into text formats (npy headers, JSON, YAML). */
export const EXTREME_TEXT_NUMBERS = ['0', '-1', '1', '-0', '4294967296', '2147483648', '9007199254740993', '1e308', '1e309', '-1e309',
  '99999999999999999999999', '0.5', 'NaN', 'Infinity', '18446744073709551616', '65536', '1e-320'];
/** Values a JSON field is set to. */
export const EXTREME_JSON = [null, true, false, 0, -1, 1, 0.5, -0.0, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e308, -1e308, 5e-324,
  '', 'x', '-1', '1e400', '__proto__', 'constructor', '../../etc/passwd', '{SPLIT}', '{', 'a'.repeat(300), [], [[]], [-1], [0, 0],
  [2 ** 40, 2 ** 40], {}, { __proto__: null }, { dimensions: ['-1'] }, { a: { b: { c: { d: {} } } } }];

const position = fc.oneof({ weight: 2, arbitrary: fc.integer({ min: 0, max: 127 }) }, fc.integer({ min: 0, max: 0x3fffffff }));

/** One byte-level operation (positions are taken modulo the current length). */
export const byteOp = fc.oneof(
  fc.record({ op: fc.constant('flip'), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set'), at: position, value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('truncate'), at: position }),
  fc.record({ op: fc.constant('delete'), at: position, length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('insert'), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ op: fc.constant('splice'), from: position, length: fc.integer({ min: 1, max: 256 }), at: position }),
  fc.record({
    op: fc.constant('int'), at: position, width: fc.constantFrom(1, 2, 4, 8), littleEndian: fc.boolean(),
    value: fc.constantFrom(...EXTREME_INTS),
  }),
  fc.record({ op: fc.constant('number'), which: fc.nat(), text: fc.constantFrom(...EXTREME_TEXT_NUMBERS) }),
);

/** A mutation case over `seedCount` seeds: which seed, 1 to 4 operations. */
export function bytesCase(seedCount) {
  return fc.record({ seed: fc.integer({ min: 0, max: seedCount - 1 }), ops: fc.array(byteOp, { minLength: 1, maxLength: 4 }) });
}

const latin1 = new TextDecoder('latin1');

function writeInt(out, at, width, littleEndian, value) {
  let v = BigInt.asUintN(64, BigInt(Math.trunc(value)));
  const bytes = [];
  for (let i = 0; i < width; i++) { bytes.push(Number(v & 0xffn)); v >>= 8n; }
  if (!littleEndian) bytes.reverse();
  for (let i = 0; i < width && at + i < out.length; i++) out[at + i] = bytes[i];
}

/** Applies one operation; returns the new bytes (the input is never changed). */
export function applyOp(bytes, o) {
  const n = bytes.length;
  const at = n === 0 ? 0 : o.at % (n + (o.op === 'insert' || o.op === 'truncate' ? 1 : 0));
  switch (o.op) {
    case 'flip': { if (n === 0) return bytes; const out = bytes.slice(); out[at] ^= 1 << o.bit; return out; }
    case 'set': { if (n === 0) return bytes; const out = bytes.slice(); out[at] = o.value; return out; }
    case 'truncate': return bytes.slice(0, at);
    case 'delete': return concat(bytes.subarray(0, at), bytes.subarray(Math.min(n, at + o.length)));
    case 'insert': return concat(bytes.subarray(0, at), o.bytes, bytes.subarray(at));
    case 'splice': {
      if (n === 0) return bytes;
      const from = o.from % n;
      return concat(bytes.subarray(0, at), bytes.subarray(from, Math.min(n, from + o.length)), bytes.subarray(at));
    }
    case 'int': { if (n === 0) return bytes; const out = bytes.slice(); writeInt(out, at, o.width, o.littleEndian, o.value); return out; }
    case 'number': {
      // The which-th run of digits in the bytes (read as latin1) becomes the extreme text.
      const text = latin1.decode(bytes);
      const runs = [...text.matchAll(/-?\d+(\.\d+)?([eE][-+]?\d+)?/g)];
      if (runs.length === 0) return bytes;
      const m = runs[o.which % runs.length];
      return concat(bytes.subarray(0, m.index), new TextEncoder().encode(o.text), bytes.subarray(m.index + m[0].length));
    }
    default: throw new Error(`unknown op ${o.op}`);
  }
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** The seed's bytes after the case's operations. */
export function applyBytes(seeds, c) {
  let b = seeds[c.seed % seeds.length];
  for (const o of c.ops) b = applyOp(b, o);
  return b;
}

// ---- JSON-aware mutation: values replaced anywhere in the tree ----

export const jsonValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...EXTREME_JSON) },
  fc.double(), fc.integer(), fc.string({ maxLength: 12 }),
  fc.array(fc.oneof(fc.integer({ min: -2, max: 70000 }), fc.string({ maxLength: 4 })), { maxLength: 5 }),
);

/** A JSON mutation case: which seed, 1 to 3 edits (node index mod the node count). */
export function jsonCase(seedCount) {
  return fc.record({
    seed: fc.integer({ min: 0, max: seedCount - 1 }),
    edits: fc.array(fc.record({ node: fc.nat(), kind: fc.constantFrom('replace', 'replace', 'replace', 'remove', 'duplicate'), value: jsonValue }), { minLength: 1, maxLength: 3 }),
  });
}

function nodes(root) {
  const out = [];
  const walk = (parent, key, v) => {
    out.push({ parent, key });
    if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) walk(v, Array.isArray(v) ? Number(k) : k, v[k]);
  };
  walk(null, null, root);
  return out;
}

/** The seed JSON text after the edits, as UTF-8 bytes. */
export function applyJson(seedTexts, c) {
  let root = JSON.parse(seedTexts[c.seed % seedTexts.length]);
  for (const e of c.edits) {
    const all = nodes(root);
    const { parent, key } = all[e.node % all.length];
    const value = structuredClone(e.value);
    if (parent === null) { if (e.kind === 'replace') root = value; continue; }
    if (e.kind === 'replace') parent[key] = value;
    else if (e.kind === 'remove') { if (Array.isArray(parent)) parent.splice(key, 1); else delete parent[key]; }
    else if (Array.isArray(parent)) parent.push(structuredClone(parent[key]));
    else parent[`${key}_`] = structuredClone(parent[key]);
  }
  return new TextEncoder().encode(JSON.stringify(root, null, 1));
}

/** Either a JSON edit (mostly) or a byte mutation of the JSON text. */
export function jsonOrBytesCase(seedCount) {
  return fc.oneof({ weight: 3, arbitrary: jsonCase(seedCount).map((j) => ({ json: j })) }, bytesCase(seedCount).map((b) => ({ bytes: b })));
}

export function applyJsonOrBytes(seedTexts, seedBytes, c) {
  return c.json ? applyJson(seedTexts, c.json) : applyBytes(seedBytes, c.bytes);
}

// ---- TFRecord framing (TFRecord shards and TensorBoard event files share it) ----

/** The payloads of a well-framed file (no checks: only for seeds the tests wrote). */
export function splitRecords(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = [];
  for (let off = 0; off + 16 <= bytes.length;) {
    const len = Number(dv.getBigUint64(off, true));
    out.push(bytes.slice(off + 12, off + 12 + len));
    off += 16 + len;
  }
  return out;
}

/**
 * A framed-file case: either the raw file mutated (framing and CRCs hit), or one record's
 * payload mutated and the file framed again with valid CRCs (the decoder behind them hit).
 */
export function framedCase(seedCount) {
  return fc.oneof(
    bytesCase(seedCount).map((b) => ({ raw: b })),
    { weight: 2, arbitrary: fc.record({ seed: fc.integer({ min: 0, max: seedCount - 1 }), record: fc.nat(), ops: fc.array(byteOp, { minLength: 1, maxLength: 4 }) }) },
  );
}

export function applyFramed(seeds, c, frame) {
  if (c.raw) return applyBytes(seeds, c.raw);
  const records = splitRecords(seeds[c.seed % seeds.length]);
  const k = c.record % records.length;
  records[k] = applyBytes([records[k]], { seed: 0, ops: c.ops });
  return concat(...records.map(frame));
}
