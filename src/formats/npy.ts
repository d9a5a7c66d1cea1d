// The .npy format (numpy/lib/format.py): magic "\x93NUMPY", version byte pair, header
// length (u16 LE in v1, u32 LE in v2/v3), then a Python dict literal
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and ended by '\n' so the data starts 64-byte aligned, then the data.
// v1/v2 headers are latin-1, v3 headers UTF-8.
// Bounds: 1× the input (the data is a view; big-endian data is swapped into one copy); the
// header length is checked against NPY_MAX_HEADER (1 MiB) and the input before it is parsed.
import { FormatError } from './errors.js';
import { readWholeFile } from './fileio.js';
import { type DType, type Tensor, bytesOf, checkTensor, dtypeSize, isValidShape, numel, viewAs } from './tensor.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ARRAY_ALIGN = 64; // numpy's own alignment of the data start

// numpy type char + size -> our dtype. Byte order is handled apart ('<', '>', '=', '|').
const FROM_NUMPY: Record<string, DType> = {
  f2: 'F16', f4: 'F32', f8: 'F64',
  i1: 'I8', i2: 'I16', i4: 'I32', i8: 'I64',
  u1: 'U8', u2: 'U16', u4: 'U32', u8: 'U64',
  b1: 'BOOL',
};
const TO_NUMPY: Partial<Record<DType, string>> = {
  F16: '<f2', F32: '<f4', F64: '<f8',
  I8: '|i1', I16: '<i2', I32: '<i4', I64: '<i8',
  U8: '|u1', U16: '<u2', U32: '<u4', U64: '<u8',
  BOOL: '|b1',
};

export interface NpyDecodeOptions {
  /** File (or `archive.npz:entry`) to put in error messages. */
  source?: string;
}

type PyValue = string | number | boolean | null | PyValue[] | { [k: string]: PyValue };

/** Parses the small Python-literal subset numpy writes: dict, tuple/list, str, int, True/False/None. */
function parsePyLiteral(text: string, fail: (detail: string) => never): PyValue {
  let i = 0;
  let depth = 0;
  const ws = () => { while (i < text.length && /\s/.test(text[i]!)) i++; };
  const value = (): PyValue => {
    ws();
    const ch = text[i];
    if (ch === '{' || ch === '(' || ch === '[') {
      const close = ch === '{' ? '}' : ch === '(' ? ')' : ']';
      if (++depth > 32) fail('nested deeper than 32 levels');
      i++;
      const items: PyValue[] = [];
      const dict: Record<string, PyValue> = {};
      for (;;) {
        ws();
        if (text[i] === close) { i++; break; }
        const v = value();
        if (ch === '{') {
          ws();
          if (text[i] !== ':' || typeof v !== 'string') fail(`expected 'key': value at offset ${i}`);
          i++;
          Object.defineProperty(dict, v as string, { value: value(), enumerable: true, writable: true, configurable: true });
        } else {
          items.push(v);
        }
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === close) { i++; break; }
        fail(`unexpected ${JSON.stringify(text[i] ?? 'end of header')} at offset ${i}`);
      }
      depth--;
      return ch === '{' ? dict : items;
    }
    if (ch === "'" || ch === '"') {
      const end = text.indexOf(ch, i + 1);
      if (end < 0) fail('unterminated string');
      const s = text.slice(i + 1, end);
      if (s.includes('\\')) fail('escaped characters in header strings are not supported');
      i = end + 1;
      return s;
    }
    const m = /^(-?\d+|True|False|None)/.exec(text.slice(i, i + 32));
    if (!m) fail(`unexpected ${JSON.stringify(ch ?? 'end of header')} at offset ${i}`);
    i += m![0].length;
    return m![0] === 'True' ? true : m![0] === 'False' ? false : m![0] === 'None' ? null : Number(m![0]);
  };
  const v = value();
  ws();
  if (i !== text.length) fail(`trailing characters at offset ${i}`);
  return v;
}

/** Headers above this are refused before they are read or parsed: numpy's own are ~128 bytes. */
export const NPY_MAX_HEADER = 1 << 20;

/** Bytes numpy's header takes before the data at most need reading to learn its length. */
export const NPY_PREAMBLE = 12;

type Fail = (field: string, detail: string) => never;

function npyFailer(source: string | undefined): Fail {
  return (field: string, detail: string): never => {
    throw new FormatError('npy', detail, { file: source, field });
  };
}

/**
 * Where the data starts (magic, version, header length and header), read from the first
 * NPY_PREAMBLE bytes (fewer when the file is shorter); the header length is checked against
 * NPY_MAX_HEADER and `fileLength`.
 */
export function npyDataOffset(preamble: Uint8Array, fileLength: number, source?: string): number {
  const fail = npyFailer(source);
  if (preamble.length < 10 || MAGIC.some((b, k) => preamble[k] !== b)) fail('magic', 'not a .npy file (missing \\x93NUMPY magic)');
  const major = preamble[6]!;
  const dv = new DataView(preamble.buffer, preamble.byteOffset, preamble.byteLength);
  let headerStart: number;
  let headerLen: number;
  if (major === 1) {
    headerStart = 10;
    headerLen = dv.getUint16(8, true);
  } else if (major === 2 || major === 3) {
    if (preamble.length < 12) fail('header length', 'file truncated inside the header length');
    headerStart = 12;
    headerLen = dv.getUint32(8, true);
  } else {
    return fail('version', `unsupported .npy version ${major}.${preamble[7]}`);
  }
  if (headerLen > NPY_MAX_HEADER) fail('header length', `${headerLen} exceeds the ${NPY_MAX_HEADER}-byte cap`);
  if (headerStart + headerLen > fileLength) fail('header length', `${headerLen} runs past the end of the file (${fileLength} bytes)`);
  return headerStart + headerLen;
}

/** What a .npy header says: the dtype, the shape and how many data bytes follow it. */
export interface NpyHeader {
  descr: string;
  dtype: DType;
  shape: number[];
  /** Offset of the data from the start of the .npy bytes. */
  dataOffset: number;
  /** Bytes of data the shape and dtype need. */
  dataBytes: number;
}

/**
 * Parses and checks the header of a .npy whose first bytes are `head` (at least up to the
 * data: npyDataOffset says how many) and whose whole length is `fileLength`. Nothing is
 * allocated beyond the header's own text, so a reader can check a member's claim (an npz's
 * central directory size) before inflating or reading its data.
 */
export function readNpyHeader(head: Uint8Array, fileLength: number, options: NpyDecodeOptions = {}): NpyHeader {
  const fail = npyFailer(options.source);
  const dataOffset = npyDataOffset(head.subarray(0, NPY_PREAMBLE), fileLength, options.source);
  if (head.length < dataOffset) fail('header', `needs ${dataOffset} bytes, only ${head.length} given`);
  const headerStart = head[6] === 1 ? 10 : 12;
  const text = new TextDecoder(head[6] === 3 ? 'utf-8' : 'latin1').decode(head.subarray(headerStart, dataOffset));
  const header = parsePyLiteral(text, (d) => fail('header', `not a valid header dict: ${d}`));
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return fail('header', 'must be a dict');
  const { descr, fortran_order: fortran, shape } = header as Record<string, PyValue>;

  if (typeof descr !== 'string') return fail('descr', `structured or missing dtype ${JSON.stringify(descr)} is not supported`);
  const order = descr[0]!;
  const dtype = FROM_NUMPY[descr.slice(1)];
  if (!'<>=|'.includes(order) || dtype === undefined) fail('descr', `unsupported dtype '${descr}'`);
  if (typeof fortran !== 'boolean') fail('fortran_order', `must be True or False, got ${JSON.stringify(fortran)}`);
  // A Fortran-order array would come back silently transposed; ask for C order instead.
  if (fortran) fail('fortran_order', 'Fortran-order arrays are not supported; save with np.ascontiguousarray(a)');
  if (!isValidShape(shape)) fail('shape', `must be a tuple of non-negative integers, got ${JSON.stringify(shape)}`);
  const dims = shape as number[];
  return { descr, dtype: dtype as DType, shape: dims, dataOffset, dataBytes: numel(dims) * dtypeSize(dtype as DType) };
}

/**
 * Decodes one .npy buffer into a C-order little-endian tensor (big-endian data is byte-swapped).
 * Allocation: the data is a view of `bytes`, except big-endian data, swapped into one copy.
 */
export function decodeNpy(bytes: Uint8Array, options: NpyDecodeOptions = {}): Tensor {
  const fail = npyFailer(options.source);
  const { descr, dtype: dt, shape: dims, dataOffset: start, dataBytes: expected } = readNpyHeader(bytes, bytes.length, options);
  const available = bytes.length - start;
  if (available < expected) fail('data', `truncated: shape (${dims.join(', ')}) of ${descr} needs ${expected} bytes, file has ${available}`);
  if (available > expected) fail('data', `${available - expected} unexpected bytes after the array data`);
  let data = bytes.subarray(start, start + expected);
  const size = dtypeSize(dt);
  if (descr[0] === '>' && size > 1) {
    // Big-endian on disk: swap into a fresh little-endian copy.
    const swapped = new Uint8Array(expected);
    for (let p = 0; p < expected; p += size) for (let k = 0; k < size; k++) swapped[p + k] = data[p + size - 1 - k]!;
    data = swapped;
  }
  return { dtype: dt, shape: dims, data: viewAs(data, dt) };
}

export interface NpyEncodeOptions {
  /** Format version; default 1, or 2 when the header does not fit v1's u16 length. */
  version?: 1 | 2 | 3;
}

/** Encodes a tensor as .npy (C order, little-endian). BF16 has no numpy dtype and is refused. */
export function encodeNpy(tensor: Tensor, options: NpyEncodeOptions = {}): Uint8Array {
  const fail = (field: string, detail: string): never => {
    throw new FormatError('npy', detail, { field });
  };
  checkTensor(tensor, 'tensor', fail);
  const descr = TO_NUMPY[tensor.dtype];
  if (descr === undefined) fail('tensor.dtype', `${tensor.dtype} has no numpy equivalent`);
  const s = tensor.shape;
  const shapeText = s.length === 1 ? `(${s[0]},)` : `(${s.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = options.version ?? 1;
  const lenBytes = () => (version === 1 ? 2 : 4);
  const pad = (prefix: number) => (ARRAY_ALIGN - ((prefix + dict.length + 1) % ARRAY_ALIGN)) % ARRAY_ALIGN;
  let headerLen = dict.length + pad(8 + lenBytes()) + 1;
  if (version === 1 && headerLen > 0xffff) {
    version = 2;
    headerLen = dict.length + pad(8 + lenBytes()) + 1;
  }
  const start = 8 + lenBytes();
  const body = bytesOf(tensor.data);
  const out = new Uint8Array(start + headerLen + body.length);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, headerLen, true);
  else dv.setUint32(8, headerLen, true);
  // The dict is ASCII, so latin-1 (v1/v2) and UTF-8 (v3) agree byte for byte.
  out.set(new TextEncoder().encode(dict), start);
  out.fill(0x20, start + dict.length, start + headerLen - 1);
  out[start + headerLen - 1] = 0x0a;
  out.set(body, start + headerLen);
  return out;
}

/** Reads and decodes a .npy file; errors name the path. */
export async function readNpyFile(path: string): Promise<Tensor> {
  return decodeNpy(await readWholeFile(path), { source: path });
}
