// Just enough of the zip format (PKWARE APPNOTE) for .npz: read stored and deflated
// entries through the central directory, with zip64 sizes/offsets, checking every CRC32;
// write stored or deflated archives (zip64 when needed or asked for), optionally with each
// entry's data aligned (PyTorch's writer pads the local header's extra field with an "FB"
// record so every member starts on a 64-byte boundary). No encryption, no multi-disk
// archives, no data descriptors needed (sizes come from the central directory).
// Bounds: the whole central directory is checked before any member is inflated (listZip):
// members lie inside the archive and do not overlap, and a deflated member may claim at most
// 1032× its compressed bytes, so all declared sizes together are at most 1032× the archive.
// Inflating allocates the declared size once and stops the moment the stream passes it;
// zipMemberPrefix inflates only a member's first bytes (npz reads npy headers that way).
import { kMaxLength } from 'node:buffer';
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { crc32 } from './crc.js';
import { FormatError } from './errors.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
const FLAG_ENCRYPTED = 0x1;
const FLAG_UTF8 = 0x800;

export interface ZipEntry {
  name: string;
  data: Uint8Array;
}

export interface ZipReadOptions {
  /** File name to put in error messages. */
  source?: string;
  /** Refuse deflated entries (before inflating anything): for containers whose writers only store. */
  storedOnly?: boolean;
}

/** One member as the central directory describes it, checked but not yet read or inflated. */
export interface ZipMember {
  name: string;
  method: number;
  crc: number;
  /** Bytes of (compressed) data in the archive. */
  compressedSize: number;
  /** Bytes once inflated: the central directory's claim, already checked against the deflate bound. */
  size: number;
  /** Offset of the member's data in the archive. */
  dataStart: number;
}

/** The most a deflate stream can expand: 258 bytes per 2 bits (PKWARE APPNOTE / zlib's own bound). */
export const DEFLATE_MAX_RATIO = 1032;

/**
 * Reads and checks the central directory without inflating anything: every member's data
 * lies inside the archive, no two members' bytes overlap (so one deflate stream cannot be
 * counted twice), a stored member's size equals its compressed size and a deflated one claims
 * at most DEFLATE_MAX_RATIO times its compressed size. The members' declared sizes together
 * are thus at most 1032 times the archive's length.
 */
export function listZip(bytes: Uint8Array, options: ZipReadOptions = {}): ZipMember[] {
  const fail = (field: string, detail: string): never => {
    throw new FormatError('zip', detail, { file: options.source, field });
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);
  const u64 = (o: number, field: string) => {
    const v = dv.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(field, `zip64 value ${v} is too large`);
    return Number(v);
  };

  // The end-of-central-directory record sits at the end, before a comment of up to 64 KiB.
  let eocd = -1;
  for (let p = bytes.length - EOCD_SIZE; p >= 0 && p >= bytes.length - EOCD_SIZE - U16_MAX; p--) {
    if (u32(p) === SIG_EOCD && p + EOCD_SIZE + u16(p + 20) === bytes.length) { eocd = p; break; }
  }
  if (eocd < 0) fail('end of central directory', 'not found: not a zip archive, or truncated');
  if (u16(eocd + 4) !== 0 || u16(eocd + 6) !== 0) fail('end of central directory', 'multi-disk archives are not supported');
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  if (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX) {
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== SIG_ZIP64_LOCATOR) fail('zip64 locator', 'missing although the end record says zip64');
    const rec = u64(loc + 8, 'zip64 locator');
    if (rec + 56 > loc || u32(rec) !== SIG_ZIP64_EOCD) fail('zip64 end of central directory', `not found at offset ${rec}`);
    count = u64(rec + 32, 'zip64 entry count');
    cdSize = u64(rec + 40, 'zip64 central directory size');
    cdOffset = u64(rec + 48, 'zip64 central directory offset');
  }
  if (cdOffset + cdSize > eocd) fail('central directory', `[${cdOffset}, ${cdOffset + cdSize}) runs past the end records: archive truncated or corrupt`);
  // Each entry takes at least 46 bytes of the directory: a larger count is a lie.
  if (count > cdSize / 46) fail('central directory', `claims ${count} entries in ${cdSize} bytes`);

  const members: ZipMember[] = [];
  const spans: Array<{ start: number; end: number; name: string }> = [];
  const names = new Set<string>();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    const at = `central directory entry ${i}`;
    if (p + 46 > cdOffset + cdSize || u32(p) !== SIG_CENTRAL) fail(at, `bad signature at offset ${p}`);
    const flags = u16(p + 8);
    const method = u16(p + 10);
    const crc = u32(p + 16);
    let csize = u32(p + 20);
    let usize = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    let localOffset = u32(p + 42);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cdOffset + cdSize) fail(at, 'runs past the central directory');
    const name = new TextDecoder(flags & FLAG_UTF8 ? 'utf-8' : 'latin1').decode(bytes.subarray(p + 46, p + 46 + nameLen));
    const field = `entry "${name}"`;
    // Zip64 extra field: the 64-bit values, in this order, of those fields that are 0xFFFFFFFF.
    for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen; ) {
      const id = u16(x);
      const len = u16(x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        const take = () => {
          if (q + 8 > x + 4 + len) fail(field, 'zip64 extra field too short');
          const v = u64(q, `${field} zip64 extra`);
          q += 8;
          return v;
        };
        if (usize === U32_MAX) usize = take();
        if (csize === U32_MAX) csize = take();
        if (localOffset === U32_MAX) localOffset = take();
      }
      x += 4 + len;
    }
    p = end;
    if (flags & FLAG_ENCRYPTED) fail(field, 'encrypted entries are not supported');
    if (names.has(name)) fail(field, 'appears twice in the archive');
    names.add(name);

    if (localOffset + 30 > cdOffset || u32(localOffset) !== SIG_LOCAL) fail(field, `no local header at offset ${localOffset}`);
    const dataStart = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
    if (dataStart + csize > cdOffset) fail(field, `data [${dataStart}, ${dataStart + csize}) runs past the central directory: archive truncated or corrupt`);
    if (method === METHOD_STORED) {
      if (csize !== usize) fail(field, `stored entry has compressed size ${csize} != size ${usize}`);
    } else if (method === METHOD_DEFLATE) {
      if (options.storedOnly) fail(field, 'is deflated; this container only holds stored (uncompressed) entries');
      // Deflate expands at most 1032:1: a bigger claim is a lie, refused before inflating.
      if (usize > DEFLATE_MAX_RATIO * csize + 64) fail(field, `claims ${usize} bytes inflated from ${csize}: impossible for deflate (at most ${DEFLATE_MAX_RATIO}:1)`);
    } else {
      fail(field, `compression method ${method} is not supported (only stored and deflate)`);
    }
    spans.push({ start: localOffset, end: dataStart + csize, name });
    members.push({ name, method, crc, compressedSize: csize, size: usize, dataStart });
  }
  spans.sort((a, b) => a.start - b.start);
  for (let i = 1; i < spans.length; i++) {
    const a = spans[i - 1]!;
    const b = spans[i]!;
    if (b.start < a.end) fail(`entry "${b.name}"`, `local header and data [${b.start}, ${b.end}) overlap entry "${a.name}" [${a.start}, ${a.end}): refused (the same bytes counted twice)`);
  }
  return members;
}

function zipFailer(options: ZipReadOptions, m: ZipMember): (detail: string) => never {
  return (detail: string): never => {
    throw new FormatError('zip', detail, { file: options.source, field: `entry "${m.name}"` });
  };
}

function zlibCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * The first min(n, member size) bytes of a member, inflating only as much of its data as
 * that takes: growing prefixes of the compressed bytes, each inflate capped a little past
 * `n`, so a bomb costs about n bytes here however much it would inflate to. No CRC check
 * (that needs the whole member).
 */
export function zipMemberPrefix(bytes: Uint8Array, m: ZipMember, n: number, options: ZipReadOptions = {}): Uint8Array {
  const fail = zipFailer(options, m);
  const want = Math.min(n, m.size);
  const raw = bytes.subarray(m.dataStart, m.dataStart + m.compressedSize);
  if (m.method === METHOD_STORED) return raw.subarray(0, want);
  if (want === 0) return new Uint8Array(0);
  // One compressed byte yields at most ~1 KiB, so some prefix lands within `slack` past `want`.
  const slack = 64 * 1024;
  const limit = want + slack;
  let lo = 0; // a prefix length known to give fewer than `want` bytes
  let hi = raw.length + 1; // one known to give more than `limit` (none yet)
  let k = Math.min(raw.length, 64);
  for (;;) {
    let out: Uint8Array | undefined;
    try {
      out = inflateRawSync(raw.subarray(0, k), { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: limit });
    } catch (e) {
      if (zlibCode(e) !== 'ERR_BUFFER_TOO_LARGE') return fail(`deflate data is corrupt (${(e as Error).message})`);
    }
    if (out === undefined) hi = k;
    else if (out.length >= want) return out.subarray(0, want);
    else if (k === raw.length) return fail(`inflates to ${out.length} bytes, central directory says ${m.size}`);
    else lo = k;
    if (hi - lo <= 1) return fail(`deflate data is corrupt (${hi - lo} byte(s) of it inflate to more than ${slack} bytes)`);
    k = hi > raw.length ? Math.min(raw.length, 2 * k) : lo + Math.floor((hi - lo) / 2);
  }
}

/**
 * A member's whole data, CRC32 checked. Stored members are views into `bytes`. Deflated ones
 * are inflated into one buffer of the declared size (plus one byte): a stream that would
 * inflate past its declared size is refused when it gets there, one that ends short is
 * refused after, so memory is the declared size whatever the stream holds.
 */
export function zipMemberData(bytes: Uint8Array, m: ZipMember, options: ZipReadOptions = {}): Uint8Array {
  const fail = zipFailer(options, m);
  const raw = bytes.subarray(m.dataStart, m.dataStart + m.compressedSize);
  let data: Uint8Array;
  if (m.method === METHOD_STORED) {
    data = raw;
  } else {
    if (m.size >= kMaxLength) fail(`declares ${m.size} bytes, more than one buffer can hold here (${kMaxLength})`);
    try {
      // chunkSize one past the declared size: zlib inflates into a single buffer and stops
      // (ERR_BUFFER_TOO_LARGE) as soon as it has more than the declared size.
      const out = inflateRawSync(raw, { maxOutputLength: Math.max(1, m.size), chunkSize: Math.max(64, m.size + 1) });
      data = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } catch (e) {
      if (zlibCode(e) === 'ERR_BUFFER_TOO_LARGE') return fail(`inflates past its declared size of ${m.size} bytes (refused there)`);
      return fail(`deflate data is corrupt (${(e as Error).message})`);
    }
    if (data.length !== m.size) fail(`inflated to ${data.length} bytes, central directory says ${m.size}`);
  }
  const actual = crc32(data);
  if (actual !== m.crc) fail(`CRC32 mismatch: stored ${hex(m.crc)}, computed ${hex(actual)}`);
  return data;
}

/**
 * Reads every entry of a zip archive, verifying sizes and CRC32. Stored entries are views into
 * `bytes`. The whole directory is checked (listZip) before any member is inflated.
 */
export function readZip(bytes: Uint8Array, options: ZipReadOptions = {}): ZipEntry[] {
  return listZip(bytes, options).map((m) => ({ name: m.name, data: zipMemberData(bytes, m, options) }));
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

export interface ZipWriteOptions {
  /** Deflate entries (as np.savez_compressed) instead of storing them. Default false. */
  compress?: boolean;
  /** Write zip64 records even when not needed (numpy always does; useful for tests). */
  forceZip64?: boolean;
  /**
   * Start every entry's data at a multiple of this many bytes from the start of the archive,
   * by padding the local header's extra field with an "FB" record as PyTorch does (64 there).
   */
  align?: number;
}

/** Extra-field id of PyTorch's alignment padding: the bytes "FB". */
const EXTRA_PAD_ID = 0x4246;

/** Builds a zip archive in memory. Timestamps are fixed (1980-01-01) so output is deterministic. */
export function writeZip(entries: readonly ZipEntry[], options: ZipWriteOptions = {}): Uint8Array {
  const all = zipChunks(entries, options);
  const out = new Uint8Array(all.reduce((s, a) => s + a.length, 0));
  let pos = 0;
  for (const a of all) {
    out.set(a, pos);
    pos += a.length;
  }
  return out;
}

/**
 * The archive writeZip builds, as chunks in file order: headers are fresh, stored entries'
 * data are the callers' own arrays (not copied), so a file writer can stream them.
 */
export function zipChunks(entries: readonly ZipEntry[], options: ZipWriteOptions = {}): Uint8Array[] {
  const align = options.align ?? 1;
  if (!Number.isSafeInteger(align) || align < 1 || align > 0x8000) throw new RangeError(`zip align must be an integer in [1, 32768], got ${align}`);
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const DOS_DATE = (0 << 9) | (1 << 5) | 1; // 1980-01-01
  for (const e of entries) {
    const name = new TextEncoder().encode(e.name);
    const crc = crc32(e.data);
    const body = options.compress ? deflateRawSync(e.data) : e.data;
    const method = options.compress ? METHOD_DEFLATE : METHOD_STORED;
    const zip64 = !!options.forceZip64 || e.data.length >= U32_MAX || body.length >= U32_MAX || offset >= U32_MAX;

    // Local header: with zip64, sizes go in the extra field and the fixed fields say 0xFFFFFFFF.
    // With alignment, an "FB" record of filler follows (4 bytes of id and length at least).
    const fixedExtra = zip64 ? 20 : 0;
    let padExtra = 0;
    if (align > 1) {
      const start = offset + 30 + name.length + fixedExtra + 4;
      padExtra = 4 + ((align - (start % align)) % align);
    }
    const local = new Uint8Array(30 + name.length + fixedExtra + padExtra);
    const l = new DataView(local.buffer);
    l.setUint32(0, SIG_LOCAL, true);
    l.setUint16(4, zip64 ? 45 : 20, true);
    l.setUint16(6, FLAG_UTF8, true);
    l.setUint16(8, method, true);
    l.setUint16(12, DOS_DATE, true);
    l.setUint32(14, crc, true);
    l.setUint32(18, zip64 ? U32_MAX : body.length, true);
    l.setUint32(22, zip64 ? U32_MAX : e.data.length, true);
    l.setUint16(26, name.length, true);
    l.setUint16(28, fixedExtra + padExtra, true);
    local.set(name, 30);
    if (padExtra > 0) {
      const x = 30 + name.length + fixedExtra;
      l.setUint16(x, EXTRA_PAD_ID, true);
      l.setUint16(x + 2, padExtra - 4, true);
      local.fill(0x5a, x + 4); // 'Z', PyTorch's filler
    }
    if (zip64) {
      const x = 30 + name.length;
      l.setUint16(x, 0x0001, true);
      l.setUint16(x + 2, 16, true);
      l.setBigUint64(x + 4, BigInt(e.data.length), true);
      l.setBigUint64(x + 12, BigInt(body.length), true);
    }

    const cen = new Uint8Array(46 + name.length + (zip64 ? 28 : 0));
    const c = new DataView(cen.buffer);
    c.setUint32(0, SIG_CENTRAL, true);
    c.setUint16(4, zip64 ? 45 : 20, true);
    c.setUint16(6, zip64 ? 45 : 20, true);
    c.setUint16(8, FLAG_UTF8, true);
    c.setUint16(10, method, true);
    c.setUint16(14, DOS_DATE, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, zip64 ? U32_MAX : body.length, true);
    c.setUint32(24, zip64 ? U32_MAX : e.data.length, true);
    c.setUint16(28, name.length, true);
    c.setUint16(30, zip64 ? 28 : 0, true);
    c.setUint32(42, zip64 ? U32_MAX : offset, true);
    cen.set(name, 46);
    if (zip64) {
      const x = 46 + name.length;
      c.setUint16(x, 0x0001, true);
      c.setUint16(x + 2, 24, true);
      c.setBigUint64(x + 4, BigInt(e.data.length), true);
      c.setBigUint64(x + 12, BigInt(body.length), true);
      c.setBigUint64(x + 20, BigInt(offset), true);
    }
    parts.push(local, body);
    central.push(cen);
    offset += local.length + body.length;
  }
  const cdOffset = offset;
  const cdSize = central.reduce((s, c) => s + c.length, 0);
  const zip64End = !!options.forceZip64 || entries.length >= U16_MAX || cdOffset >= U32_MAX || cdSize >= U32_MAX;
  const tail = new Uint8Array((zip64End ? 56 + 20 : 0) + EOCD_SIZE);
  const t = new DataView(tail.buffer);
  let q = 0;
  if (zip64End) {
    t.setUint32(0, SIG_ZIP64_EOCD, true);
    t.setBigUint64(4, 44n, true); // size of the rest of this record
    t.setUint16(12, 45, true);
    t.setUint16(14, 45, true);
    t.setBigUint64(24, BigInt(entries.length), true);
    t.setBigUint64(32, BigInt(entries.length), true);
    t.setBigUint64(40, BigInt(cdSize), true);
    t.setBigUint64(48, BigInt(cdOffset), true);
    t.setUint32(56, SIG_ZIP64_LOCATOR, true);
    t.setBigUint64(64, BigInt(cdOffset + cdSize), true);
    t.setUint32(72, 1, true); // total number of disks
    q = 76;
  }
  t.setUint32(q, SIG_EOCD, true);
  t.setUint16(q + 8, zip64End ? U16_MAX : entries.length, true);
  t.setUint16(q + 10, zip64End ? U16_MAX : entries.length, true);
  t.setUint32(q + 12, zip64End ? U32_MAX : cdSize, true);
  t.setUint32(q + 16, zip64End ? U32_MAX : cdOffset, true);
  return [...parts, ...central, tail];
}
