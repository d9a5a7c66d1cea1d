// PyTorch `.pt` files: what `torch.save(obj, path)` writes since torch 1.6 (the zip format),
// read safely, and state dicts written so that `torch.load(path, weights_only=True)` reads
// them back exactly.
//
// The container is a zip archive of stored (uncompressed) members, all under one folder
// whose name varies (torch uses the file's base name or "archive"; its reader takes it from
// the first member):
//   <archive>/data.pkl     the object, pickled (protocol 2 by default)
//   <archive>/data/<key>   one member per storage: its raw element bytes
//   <archive>/byteorder    "little" or "big" (torch >= 2.1; absent before: little assumed)
//   <archive>/version      the container version ("3\n"); other members are ignored
// torch pads each local header's extra field ("FB" record) so member data starts on a
// 64-byte boundary. Tensors live in data.pkl as
//   torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
//                                   backward_hooks[, metadata])
// where `storage` comes from a persistent id (BINPERSID) of the tuple
//   ('storage', <storage class, e.g. torch.BFloat16Storage>, key, location, numel)
// (torch 1.x and 2.x both write the legacy typed class there). An nn.Parameter saved as
// such is torch._utils._rebuild_parameter(tensor, requires_grad, backward_hooks).
//
// Safety. Python's pickle runs whatever callables a file names, and no JS library
// unpickles with an allowlist, so the unpickler here is written by hand and strict. It
// knows only the opcodes torch.save emits (protocol 2, plus protocol 4's framing and
// memo forms), never calls anything but the allowed globals below, matched by exact
// "module.name", and refuses every other global naming the file and the global: loading
// a checkpoint never runs code. Allowed: collections.OrderedDict (no arguments),
// torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the storage
// classes of the dtypes in STORAGE_DTYPES (torch.UntypedStorage reads as bytes).
// torch.device, torch.Size and the like are not needed by state dicts and are refused.
//
// Limits (each refused with a FormatError naming the file and the member or pickle
// position at fault): little-endian files only; no deflated members; a storage's bytes
// must lie within its member; every length in data.pkl is checked against the bytes left
// before anything is allocated; a tensor's view (offset, size, stride) must stay inside
// its storage; tensors are views of the file's bytes when contiguous and aligned, and the
// copies made otherwise (non-contiguous views gathered, expanded views, unaligned data)
// together stay under `maxCopyBytes`; MARK nesting and the result's container nesting are
// capped at TORCH_PT_MAX_DEPTH; cyclic structures are refused; the objects the pickle builds
// are capped at TORCH_PT_MAX_OBJECTS (~200 MB). Memory: the file (read whole; tensors are
// views of it) + copies ≤ maxCopyBytes (2× the file + 256 MiB) + the pickle's objects. The result: dicts and
// OrderedDicts as Maps in file order (an OrderedDict's attributes, such as state_dict()'s
// `_metadata` of module versions, are checked and dropped), tuples and lists as arrays,
// tensors as the project's Tensor (nn.Parameter as its tensor), Python ints as numbers
// (bigint beyond 2^53), floats as numbers, str as string, None as null.
import { FormatError } from './errors.js';
import { publishChunksAtomic, readWholeFile } from './fileio.js';
import { isFloatDType, widenToF32 } from './float16.js';
import { type DType, type Tensor, type TypedArray, DTYPE_ARRAY, bytesOf, checkTensor, dtypeSize, numel, viewAs } from './tensor.js';
import { type ZipEntry, readZip, writeZip, zipChunks } from './zip.js';

/** A dict key as read: Python str, int, float, bool or None. */
export type TorchPtKey = string | number | bigint | boolean | null;

/** What a `.pt` file decodes to. */
export type TorchPtValue =
  | null | boolean | number | bigint | string
  | Tensor
  | TorchPtValue[]
  | Map<TorchPtKey, TorchPtValue>;

/** Deepest MARK nesting in data.pkl, and deepest nesting of containers in the result. */
export const TORCH_PT_MAX_DEPTH = 100;

/**
 * The most the unpickler may build, in units of about 50 bytes of heap: a dict counts 4, a
 * list 2, a tuple, MARK, global, storage or memo entry 1. One byte of data.pkl can make one
 * dict (~200 bytes), so without this a 10 MB data.pkl could take 2 GB; with it the pickle's
 * objects stay under ~200 MB. A state dict takes ~20 units a tensor: 200k tensors fit.
 */
export const TORCH_PT_MAX_OBJECTS = 4 << 20;

/** Most dimensions a tensor may have (torch's own limit is 64 too). */
const MAX_DIMS = 64;

/** Longest module or name line a GLOBAL opcode may carry. */
const MAX_GLOBAL_LINE = 1024;

export interface TorchPtDecodeOptions {
  /** File name to put in error messages. */
  source?: string;
  /**
   * Most bytes the reader may allocate for tensors it cannot hand out as views of the file
   * (non-contiguous or expanded views, unaligned storages), all tensors together. Default:
   * twice the file's size plus 256 MiB, which every file torch writes stays under.
   */
  maxCopyBytes?: number;
}

/** The storage classes read and written, by their pickled name. */
const STORAGE_DTYPES: ReadonlyMap<string, DType> = new Map<string, DType>([
  ['torch.FloatStorage', 'F32'], ['torch.DoubleStorage', 'F64'],
  ['torch.HalfStorage', 'F16'], ['torch.BFloat16Storage', 'BF16'],
  ['torch.LongStorage', 'I64'], ['torch.IntStorage', 'I32'],
  ['torch.ShortStorage', 'I16'], ['torch.CharStorage', 'I8'],
  ['torch.ByteStorage', 'U8'], ['torch.BoolStorage', 'BOOL'],
  ['torch.UntypedStorage', 'U8'],
]);

const ORDERED_DICT = 'collections.OrderedDict';
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const REBUILD_PARAMETER = 'torch._utils._rebuild_parameter';
const CALLABLES: ReadonlySet<string> = new Set([ORDERED_DICT, REBUILD_TENSOR, REBUILD_PARAMETER]);

/** An allowed global, as the unpickler holds it: a name, never a function. */
class GlobalRef {
  constructor(readonly name: string) {}
}

/** A storage loaded through a persistent id: its member's bytes, cut to numel elements. */
class StorageRef {
  constructor(readonly key: string, readonly dtype: DType, readonly numel: number, readonly bytes: Uint8Array) {}
}

// Opcodes (CPython Lib/pickle.py).
const OP = {
  MARK: 0x28, STOP: 0x2e, BINFLOAT: 0x47, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, NONE: 0x4e,
  BINPERSID: 0x51, REDUCE: 0x52, BINUNICODE: 0x58, EMPTY_LIST: 0x5d, APPEND: 0x61, BUILD: 0x62,
  GLOBAL: 0x63, APPENDS: 0x65, BINGET: 0x68, LONG_BINGET: 0x6a, BINPUT: 0x71, LONG_BINPUT: 0x72,
  SETITEM: 0x73, TUPLE: 0x74, SETITEMS: 0x75, EMPTY_DICT: 0x7d, EMPTY_TUPLE: 0x29,
  PROTO: 0x80, NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  SHORT_BINUNICODE: 0x8c, STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95,
} as const;

const OP_NAMES = new Map<number, string>(Object.entries(OP).map(([k, v]) => [v, k]));

type Fail = (field: string, detail: string) => never;

function failer(file: string | undefined): Fail {
  return (field: string, detail: string): never => {
    throw new FormatError('torch-pt', detail, { file, field });
  };
}

/**
 * Decodes a `.pt` file's bytes. Tensors are views into `bytes` where they can be (keep it
 * unmodified while they are in use). Errors are FormatError naming options.source and the
 * member or data.pkl position at fault.
 */
export function decodeTorchPt(bytes: Uint8Array, options: TorchPtDecodeOptions = {}): TorchPtValue {
  const file = options.source;
  const fail: Fail = failer(file);
  const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  if (!isZip && bytes.length >= 2 && bytes[0] === OP.PROTO) {
    fail('file', 'is a legacy (pre-zip) torch.save file (torch < 1.6 or _use_new_zipfile_serialization=False): not supported; re-save it with a current torch');
  }
  const entries = readZip(bytes, { source: file, storedOnly: true });
  if (entries.length === 0) fail('archive', 'is an empty zip archive: no data.pkl');
  // torch's reader takes the archive folder from the first member's name.
  const first = entries[0]!.name;
  const slash = first.indexOf('/');
  if (slash <= 0) fail(`entry "${first}"`, 'is not inside an archive folder (torch writes <folder>/data.pkl, <folder>/data/<key>, ...)');
  const prefix = first.slice(0, slash + 1);
  const records = new Map<string, Uint8Array>();
  for (const e of entries) {
    if (!e.name.startsWith(prefix)) fail(`entry "${e.name}"`, `is outside the archive folder "${prefix.slice(0, -1)}"`);
    records.set(e.name.slice(prefix.length), e.data);
  }
  const byteorder = records.get('byteorder');
  if (byteorder !== undefined) {
    const text = new TextDecoder('latin1').decode(byteorder);
    if (text !== 'little') fail(`${prefix}byteorder`, `says ${JSON.stringify(text.slice(0, 16))}; only little-endian files are supported`);
  }
  const pkl = records.get('data.pkl');
  if (pkl === undefined) fail(`${prefix}data.pkl`, 'is missing (is this a TorchScript archive or another zip file?)');
  const maxCopyBytes = options.maxCopyBytes ?? 2 * bytes.length + 256 * 1024 * 1024;
  return new Unpickler(pkl!, `${prefix}data.pkl`, prefix, records, maxCopyBytes, fail).load();
}

/** Reads and decodes a `.pt` file; errors name the path. */
export async function readTorchPtFile(path: string, options: Omit<TorchPtDecodeOptions, 'source'> = {}): Promise<TorchPtValue> {
  return decodeTorchPt(await readWholeFile(path), { ...options, source: path });
}

type Indexable = { [i: number]: number | bigint; length: number };

class Unpickler {
  private pos = 0;
  private stack: unknown[] = [];
  private readonly metastack: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly lists = new WeakSet<unknown[]>();
  private readonly tensors = new WeakSet<object>();
  private readonly storages = new Map<string, StorageRef>();
  private opStart = 0;
  private objects = 0;

  constructor(
    private readonly data: Uint8Array,
    private readonly member: string,
    private readonly prefix: string,
    private readonly records: ReadonlyMap<string, Uint8Array>,
    private copyBudget: number,
    private readonly failFile: Fail,
  ) {}

  private fail(detail: string): never {
    return this.failFile(`${this.member} byte ${this.opStart}`, detail);
  }

  private need(n: number, what: string): void {
    if (n > this.data.length - this.pos) {
      this.fail(`${what} needs ${n} bytes but only ${this.data.length - this.pos} remain: data.pkl truncated or corrupt`);
    }
  }

  private u8(what: string): number {
    this.need(1, what);
    return this.data[this.pos++]!;
  }

  private view(n: number, what: string): DataView {
    this.need(n, what);
    const dv = new DataView(this.data.buffer, this.data.byteOffset + this.pos, n);
    this.pos += n;
    return dv;
  }

  private utf8(n: number, what: string): string {
    this.need(n, what);
    const b = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      return this.fail(`${what} is not valid UTF-8`);
    }
  }

  private line(what: string): string {
    const limit = Math.min(this.data.length, this.pos + MAX_GLOBAL_LINE + 1);
    const end = this.data.subarray(this.pos, limit).indexOf(0x0a);
    if (end < 0 && limit === this.data.length) this.fail(`${what} has no end of line before the end: data.pkl truncated or corrupt`);
    if (end < 0) this.fail(`${what} has no end of line within ${MAX_GLOBAL_LINE} bytes`);
    const text = this.utf8(end, what);
    this.pos++; // the newline
    return text;
  }

  private push(v: unknown): void {
    this.stack.push(v);
  }

  /** Counts `units` of objects built against TORCH_PT_MAX_OBJECTS. */
  private made(units: number): void {
    this.objects += units;
    if (this.objects > TORCH_PT_MAX_OBJECTS) this.fail(`builds more than ${TORCH_PT_MAX_OBJECTS} units of objects (dicts, lists, tuples, memo entries): far beyond any state dict; refused`);
  }

  private pop(what: string): unknown {
    if (this.stack.length === 0) this.fail(`${what}: the stack is empty (a MARK or value is missing)`);
    return this.stack.pop();
  }

  private top(what: string): unknown {
    if (this.stack.length === 0) this.fail(`${what}: the stack is empty (a MARK or value is missing)`);
    return this.stack[this.stack.length - 1];
  }

  private popMark(what: string): unknown[] {
    const items = this.stack;
    const outer = this.metastack.pop();
    if (outer === undefined) this.fail(`${what} without a MARK`);
    this.stack = outer!;
    return items;
  }

  private tuple(items: unknown[]): unknown[] {
    return Object.freeze(items) as unknown[];
  }

  private isDict(v: unknown): v is Map<TorchPtKey, unknown> {
    return v instanceof Map;
  }

  private key(k: unknown, what: string): TorchPtKey {
    if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return k;
    return this.fail(`${what}: a dict key must be a str, int, float, bool or None, got ${this.describe(k)}`);
  }

  private describe(v: unknown): string {
    if (v instanceof GlobalRef) return v.name;
    if (v instanceof StorageRef) return `storage "${v.key}"`;
    if (v instanceof Map) return 'a dict';
    if (Array.isArray(v)) return Object.isFrozen(v) ? `a tuple of ${v.length}` : 'a list';
    if (v !== null && typeof v === 'object' && this.tensors.has(v)) return 'a tensor';
    return v === null ? 'None' : typeof v === 'string' ? `the str ${JSON.stringify(v.slice(0, 40))}` : `${typeof v} ${String(v)}`;
  }

  /** The dict key the value being built will go under, when the current frame shows one. */
  private nearKey(): string {
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const v = this.stack[i];
      if (typeof v === 'string') return ` (the value for key ${JSON.stringify(v)})`;
    }
    return '';
  }

  load(): TorchPtValue {
    for (;;) {
      this.opStart = this.pos;
      const op = this.u8('opcode');
      switch (op) {
        case OP.PROTO: {
          const v = this.u8('PROTO');
          if (v < 2 || v > 5) this.fail(`pickle protocol ${v} is not supported (torch.save writes 2)`);
          break;
        }
        case OP.FRAME:
          this.view(8, 'FRAME'); // protocol 4 framing: a length hint, nothing to do
          break;
        case OP.STOP: {
          if (this.metastack.length !== 0) this.fail('STOP inside an unclosed MARK');
          if (this.stack.length !== 1) this.fail(`STOP with ${this.stack.length} values on the stack, 1 expected`);
          if (this.pos !== this.data.length) this.fail(`${this.data.length - this.pos} bytes follow STOP`);
          const result = this.stack[0];
          this.checkResult(result);
          return result as TorchPtValue;
        }
        case OP.MARK:
          if (this.metastack.length >= TORCH_PT_MAX_DEPTH) this.fail(`MARKs nest deeper than ${TORCH_PT_MAX_DEPTH}`);
          this.made(1);
          this.metastack.push(this.stack);
          this.stack = [];
          break;
        case OP.GLOBAL: {
          const module = this.line('GLOBAL module');
          const name = this.line('GLOBAL name');
          this.made(1);
          this.push(this.global(`${module}.${name}`));
          break;
        }
        case OP.STACK_GLOBAL: {
          const name = this.pop('STACK_GLOBAL');
          const module = this.pop('STACK_GLOBAL');
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings');
          this.made(1);
          this.push(this.global(`${module as string}.${name as string}`));
          break;
        }
        case OP.BINPERSID:
          this.made(1);
          this.push(this.persistentLoad(this.pop('BINPERSID')));
          break;
        case OP.REDUCE: {
          const args = this.pop('REDUCE');
          const func = this.top('REDUCE');
          this.made(4);
          this.stack[this.stack.length - 1] = this.reduce(func, args);
          break;
        }
        case OP.BUILD: {
          const state = this.pop('BUILD');
          const inst = this.top('BUILD');
          // Only OrderedDict attributes (state_dict()'s _metadata): checked, then dropped.
          if (!this.isDict(inst)) this.fail(`BUILD on ${this.describe(inst)}: only an OrderedDict's attributes may be set`);
          if (!this.isDict(state)) this.fail(`BUILD with ${this.describe(state)}: an OrderedDict's attributes must be a dict`);
          break;
        }
        case OP.EMPTY_DICT:
          this.made(4);
          this.push(new Map());
          break;
        case OP.EMPTY_LIST: {
          this.made(2);
          const list: unknown[] = [];
          this.lists.add(list);
          this.push(list);
          break;
        }
        case OP.EMPTY_TUPLE:
          this.made(1);
          this.push(this.tuple([]));
          break;
        case OP.TUPLE:
          this.made(1);
          this.push(this.tuple(this.popMark('TUPLE')));
          break;
        case OP.TUPLE1:
        case OP.TUPLE2:
        case OP.TUPLE3: {
          const n = op - OP.TUPLE1 + 1;
          this.made(1);
          if (this.stack.length < n) this.fail(`TUPLE${n} needs ${n} values, the stack has ${this.stack.length}`);
          this.push(this.tuple(this.stack.splice(this.stack.length - n, n)));
          break;
        }
        case OP.APPEND: {
          const item = this.pop('APPEND');
          this.appendTo(this.top('APPEND'), [item]);
          break;
        }
        case OP.APPENDS: {
          const items = this.popMark('APPENDS');
          this.appendTo(this.top('APPENDS'), items);
          break;
        }
        case OP.SETITEM: {
          const value = this.pop('SETITEM');
          const key = this.pop('SETITEM');
          this.setItems(this.top('SETITEM'), [key, value]);
          break;
        }
        case OP.SETITEMS: {
          const items = this.popMark('SETITEMS');
          if (items.length % 2 !== 0) this.fail(`SETITEMS with an odd number (${items.length}) of keys and values`);
          this.setItems(this.top('SETITEMS'), items);
          break;
        }
        case OP.BINPUT:
          this.made(1);
          this.memo.set(this.u8('BINPUT'), this.top('BINPUT'));
          break;
        case OP.LONG_BINPUT:
          this.made(1);
          this.memo.set(this.view(4, 'LONG_BINPUT').getUint32(0, true), this.top('LONG_BINPUT'));
          break;
        case OP.MEMOIZE:
          this.made(1);
          this.memo.set(this.memo.size, this.top('MEMOIZE'));
          break;
        case OP.BINGET:
        case OP.LONG_BINGET: {
          const i = op === OP.BINGET ? this.u8('BINGET') : this.view(4, 'LONG_BINGET').getUint32(0, true);
          if (!this.memo.has(i)) this.fail(`${OP_NAMES.get(op)} ${i}: no such memo entry`);
          this.push(this.memo.get(i));
          break;
        }
        case OP.BININT:
          this.push(this.view(4, 'BININT').getInt32(0, true));
          break;
        case OP.BININT1:
          this.push(this.u8('BININT1'));
          break;
        case OP.BININT2:
          this.push(this.view(2, 'BININT2').getUint16(0, true));
          break;
        case OP.LONG1: {
          const n = this.u8('LONG1');
          this.need(n, 'LONG1');
          this.push(decodeLong(this.data.subarray(this.pos, this.pos + n)));
          this.pos += n;
          break;
        }
        case OP.BINFLOAT:
          this.push(this.view(8, 'BINFLOAT').getFloat64(0, false));
          break;
        case OP.BINUNICODE: {
          const n = this.view(4, 'BINUNICODE').getUint32(0, true);
          this.push(this.utf8(n, 'BINUNICODE'));
          break;
        }
        case OP.SHORT_BINUNICODE:
          this.push(this.utf8(this.u8('SHORT_BINUNICODE'), 'SHORT_BINUNICODE'));
          break;
        case OP.NONE:
          this.push(null);
          break;
        case OP.NEWTRUE:
          this.push(true);
          break;
        case OP.NEWFALSE:
          this.push(false);
          break;
        default:
          this.fail(`opcode 0x${op.toString(16).padStart(2, '0')} (${JSON.stringify(String.fromCharCode(op))}) is not one torch.save writes for a state dict; refused`);
      }
    }
  }

  private global(full: string): GlobalRef {
    if (!CALLABLES.has(full) && !STORAGE_DTYPES.has(full)) {
      this.fail(`global ${JSON.stringify(full)} is not allowed: a .pt file may only name collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and torch's storage classes (nothing is ever called)`);
    }
    return new GlobalRef(full);
  }

  private appendTo(target: unknown, items: unknown[]): void {
    if (!Array.isArray(target) || !this.lists.has(target)) this.fail(`append to ${this.describe(target)}: only lists can be appended to`);
    for (const item of items) (target as unknown[]).push(item);
  }

  private setItems(target: unknown, items: unknown[]): void {
    if (!this.isDict(target)) this.fail(`set an item of ${this.describe(target)}: only dicts have items`);
    const dict = target as Map<TorchPtKey, unknown>;
    for (let i = 0; i < items.length; i += 2) dict.set(this.key(items[i], 'SETITEM'), items[i + 1]);
  }

  private persistentLoad(pid: unknown): StorageRef {
    if (!Array.isArray(pid) || !Object.isFrozen(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      this.fail(`persistent id ${this.describe(pid)} is not ('storage', storage class, key, location, numel)`);
    }
    const [, cls, key, location, count] = pid as unknown[];
    if (!(cls instanceof GlobalRef) || !STORAGE_DTYPES.has(cls.name)) this.fail(`persistent id: ${this.describe(cls)} is not a storage class`);
    if (typeof key !== 'string') this.fail(`persistent id: the storage key is ${this.describe(key)}, not a str`);
    if (typeof location !== 'string') this.fail(`persistent id of storage "${key as string}": the location is ${this.describe(location)}, not a str`);
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
      this.fail(`persistent id of storage "${key as string}": numel ${this.describe(count)} is not a non-negative integer`);
    }
    const dtype = STORAGE_DTYPES.get((cls as GlobalRef).name)!;
    const k = key as string;
    const n = count as number;
    const seen = this.storages.get(k);
    if (seen !== undefined) {
      if (seen.dtype !== dtype || seen.numel !== n) {
        this.fail(`storage "${k}" is loaded twice with different types (${seen.numel} ${seen.dtype}, then ${n} ${dtype})`);
      }
      return seen;
    }
    const record = this.records.get(`data/${k}`);
    if (record === undefined) this.fail(`storage "${k}": the archive has no member ${this.prefix}data/${k}`);
    const bytes = n * dtypeSize(dtype);
    if (bytes > record!.length) {
      this.fail(`storage "${k}" claims ${n} ${dtype} elements (${bytes} bytes) but member ${this.prefix}data/${k} holds ${record!.length} bytes`);
    }
    const ref = new StorageRef(k, dtype, n, record!.subarray(0, bytes));
    this.storages.set(k, ref);
    return ref;
  }

  private reduce(func: unknown, args: unknown): unknown {
    if (!(func instanceof GlobalRef)) this.fail(`REDUCE calls ${this.describe(func)}, which is not an allowed global`);
    if (!Array.isArray(args) || !Object.isFrozen(args)) this.fail(`REDUCE of ${(func as GlobalRef).name} with ${this.describe(args)} instead of an argument tuple`);
    const a = args as unknown[];
    switch ((func as GlobalRef).name) {
      case ORDERED_DICT:
        if (a.length !== 0) this.fail(`collections.OrderedDict called with ${a.length} arguments; torch.save writes none`);
        return new Map();
      case REBUILD_TENSOR:
        return this.rebuildTensor(a);
      case REBUILD_PARAMETER: {
        if (a.length !== 3) this.fail(`_rebuild_parameter takes (tensor, requires_grad, backward_hooks), got ${a.length} arguments`);
        const [t, grad, hooks] = a;
        if (t === null || typeof t !== 'object' || !this.tensors.has(t)) this.fail(`_rebuild_parameter of ${this.describe(t)}, not a tensor`);
        if (typeof grad !== 'boolean') this.fail(`_rebuild_parameter: requires_grad is ${this.describe(grad)}, not a bool`);
        if (!this.isDict(hooks)) this.fail(`_rebuild_parameter: backward_hooks is ${this.describe(hooks)}, not an OrderedDict`);
        return t;
      }
      default:
        return this.fail(`${(func as GlobalRef).name} is not callable here`);
    }
  }

  private rebuildTensor(a: unknown[]): Tensor {
    const what = `_rebuild_tensor_v2${this.nearKey()}`;
    if (a.length !== 6 && a.length !== 7) this.fail(`${what} takes 6 or 7 arguments, got ${a.length}`);
    const [storage, offset, size, stride, grad, hooks, metadata] = a;
    if (!(storage instanceof StorageRef)) this.fail(`${what}: the storage is ${this.describe(storage)}, not a storage`);
    const s = storage as StorageRef;
    const w = `${what} of storage "${s.key}"`;
    const int = (v: unknown, name: string): number => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(`${w}: ${name} is ${this.describe(v)}, not a non-negative integer`);
      return v as number;
    };
    const dims = (v: unknown, name: string): number[] => {
      if (!Array.isArray(v)) this.fail(`${w}: ${name} is ${this.describe(v)}, not a tuple`);
      const arr = v as unknown[];
      if (arr.length > MAX_DIMS) this.fail(`${w}: ${name} has ${arr.length} dimensions, more than ${MAX_DIMS}`);
      return arr.map((d, i) => int(d, `${name}[${i}]`));
    };
    const off = int(offset, 'storage_offset');
    const shape = dims(size, 'size');
    const strides = dims(stride, 'stride');
    if (strides.length !== shape.length) this.fail(`${w}: size has ${shape.length} dimensions but stride ${strides.length}`);
    if (typeof grad !== 'boolean') this.fail(`${w}: requires_grad is ${this.describe(grad)}, not a bool`);
    if (!this.isDict(hooks)) this.fail(`${w}: backward_hooks is ${this.describe(hooks)}, not an OrderedDict`);
    if (metadata !== undefined && !(this.isDict(metadata) && metadata.size === 0)) {
      this.fail(`${w}: tensor metadata (${this.describe(metadata)}) is not supported`);
    }

    // Element count and the furthest element the view reaches, in safe integers.
    let count = 1;
    let last = off;
    for (let d = 0; d < shape.length; d++) {
      const n = shape[d]!;
      if (n === 0) { count = 0; break; }
      if (count > Number.MAX_SAFE_INTEGER / n) this.fail(`${w}: size [${shape.join(', ')}] has more than 2^53 elements`);
      count *= n;
      const reach = (n - 1) * strides[d]!;
      if (!Number.isSafeInteger(reach) || !Number.isSafeInteger(last + reach)) this.fail(`${w}: stride [${strides.join(', ')}] reaches beyond 2^53`);
      last += reach;
    }
    const Ctor = DTYPE_ARRAY[s.dtype];
    const esize = Ctor.BYTES_PER_ELEMENT;
    let data: TypedArray;
    if (count === 0) {
      if (off > s.numel) this.fail(`${w}: storage_offset ${off} is past the storage's ${s.numel} elements`);
      data = new Ctor(0);
    } else {
      if (last >= s.numel) {
        this.fail(`${w}: size [${shape.join(', ')}], stride [${strides.join(', ')}] at offset ${off} reach element ${last} but the storage has ${s.numel} ${s.dtype} elements`);
      }
      if (isContiguous(shape, strides)) {
        const bytes = s.bytes.subarray(off * esize, (off + count) * esize);
        if (bytes.byteOffset % esize !== 0) this.charge(bytes.length, w);
        data = viewAs(bytes, s.dtype);
      } else {
        this.charge(count * esize, w);
        const src = viewAs(s.bytes, s.dtype) as unknown as Indexable;
        const out = new Ctor(count);
        gather(src, out as unknown as Indexable, off, shape, strides);
        data = out;
      }
    }
    const t: Tensor = { dtype: s.dtype, shape, data };
    this.tensors.add(t);
    return t;
  }

  private charge(bytes: number, w: string): void {
    if (bytes > this.copyBudget) {
      this.fail(`${w}: copying it would take ${bytes} bytes, beyond what is left (${this.copyBudget}) of maxCopyBytes for views that cannot be handed out in place`);
    }
    this.copyBudget -= bytes;
  }

  /** The result holds only plain values, tensors, lists, tuples and dicts: no cycle, nesting capped. */
  private checkResult(root: unknown): void {
    const done = new Set<object>();
    const open = new Set<object>();
    type Frame = { node: object; children: unknown[]; next: number };
    const frames: Frame[] = [];
    const enter = (v: unknown, path: string): void => {
      if (v === null || typeof v !== 'object') return;
      if (v instanceof GlobalRef) this.failFile(this.member, `the result holds ${v.name} itself at ${path}; only data may be returned`);
      if (v instanceof StorageRef) this.failFile(this.member, `the result holds storage "${v.key}" outside a tensor at ${path}`);
      if (this.tensors.has(v) || done.has(v)) return;
      if (open.has(v)) this.failFile(this.member, `the result contains itself at ${path} (a cycle)`);
      if (frames.length >= TORCH_PT_MAX_DEPTH) this.failFile(this.member, `containers nest deeper than ${TORCH_PT_MAX_DEPTH} at ${path}`);
      open.add(v);
      const children = v instanceof Map ? [...v.values()] : (v as unknown[]);
      frames.push({ node: v, children, next: 0 });
    };
    enter(root, 'the top');
    while (frames.length > 0) {
      const f = frames[frames.length - 1]!;
      if (f.next < f.children.length) {
        enter(f.children[f.next++], `depth ${frames.length}`);
      } else {
        frames.pop();
        open.delete(f.node);
        done.add(f.node);
      }
    }
  }
}

/** Python's LONG1 payload: little-endian two's complement. A number when safe, else a bigint. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Row-major with no gaps; dimensions of size 1 may have any stride (torch's rule). */
function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] === 1) continue;
    if (strides[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/** out[i] = src[offset + Σ index_d·stride_d] over the row-major indices of `shape`. */
function gather(src: Indexable, out: Indexable, offset: number, shape: readonly number[], strides: readonly number[]): void {
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  let pos = offset;
  for (let i = 0; i < out.length; i++) {
    out[i] = src[pos]!;
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++;
      pos += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      pos -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

export interface TorchStateDictOptions {
  /** File name to put in error messages. */
  source?: string;
  /** Keys leading from the top to the state dict, e.g. ['model', 'projector']. Default: the top. */
  path?: readonly string[];
  /** A prefix removed from every name that has it, e.g. 'module.' (DistributedDataParallel's). */
  stripPrefix?: string;
}

/**
 * The state dict (name -> tensor, in file order) at `options.path` inside a decoded `.pt`:
 * every key must be a str and every value a tensor; errors name the file and the key.
 */
export function torchStateDict(value: TorchPtValue, options: TorchStateDictOptions = {}): Map<string, Tensor> {
  const fail: Fail = failer(options.source);
  let node: TorchPtValue = value;
  let where = 'the top';
  for (const k of options.path ?? []) {
    if (!(node instanceof Map)) fail(where, `is not a dict, so has no key ${JSON.stringify(k)}`);
    const next = (node as Map<TorchPtKey, TorchPtValue>).get(k);
    where = where === 'the top' ? `[${JSON.stringify(k)}]` : `${where}[${JSON.stringify(k)}]`;
    if (next === undefined) fail(where, 'is missing');
    node = next!;
  }
  if (!(node instanceof Map)) fail(where, 'is not a dict (a state dict is an OrderedDict of name -> tensor)');
  const out = new Map<string, Tensor>();
  const prefix = options.stripPrefix ?? '';
  for (const [k, v] of node as Map<TorchPtKey, TorchPtValue>) {
    const field = `${where === 'the top' ? '' : where}[${JSON.stringify(k)}]`;
    if (typeof k !== 'string') fail(field, `key is ${typeof k}, not a str`);
    if (!isTensor(v)) fail(field, 'is not a tensor');
    const name = prefix !== '' && (k as string).startsWith(prefix) ? (k as string).slice(prefix.length) : (k as string);
    if (out.has(name)) fail(field, `is "${name}" once "${prefix}" is removed, which another key also is`);
    out.set(name, v as Tensor);
  }
  return out;
}

function isTensor(v: unknown): v is Tensor {
  return v !== null && typeof v === 'object' && !(v instanceof Map) && !Array.isArray(v);
}

/**
 * `t` as float32: F16 and BF16 widened exactly into a fresh array, F32 returned as is.
 * Other dtypes are refused (a FormatError naming options.source and options.field).
 */
export function torchTensorToF32(t: Tensor, options: { source?: string; field?: string } = {}): Tensor & { dtype: 'F32'; data: Float32Array } {
  if (!isFloatDType(t.dtype)) failer(options.source)(options.field ?? 'tensor', `is ${t.dtype}; only F32, F16 and BF16 convert to float32`);
  if (t.dtype === 'F32') return t as Tensor & { dtype: 'F32'; data: Float32Array };
  const out = new Float32Array(t.data.length);
  widenToF32(t.dtype as 'F16' | 'BF16', t.data as Uint16Array, out);
  return { dtype: 'F32', shape: [...t.shape], data: out };
}

// ---------------------------------------------------------------------------------------
// Writing.

/** The storage class torch 1.13+ reads for each dtype it has (U16/U32/U64 have none there). */
const STORAGE_OF: Partial<Record<DType, string>> = {
  F32: 'FloatStorage', F64: 'DoubleStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage',
  I64: 'LongStorage', I32: 'IntStorage', I16: 'ShortStorage', I8: 'CharStorage',
  U8: 'ByteStorage', BOOL: 'BoolStorage',
};

export interface TorchPtEncodeOptions {
  /** The archive folder inside the zip. Default "archive" (torch's for buffers). */
  archiveName?: string;
}

/** Appends pickle opcodes; only those torch 1.13's weights_only unpickler knows. */
class PickleWriter {
  private readonly parts: number[] = [];
  op(...bytes: number[]): void {
    for (const b of bytes) this.parts.push(b);
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.op(OP.BINUNICODE, b.length & 0xff, (b.length >>> 8) & 0xff, (b.length >>> 16) & 0xff, b.length >>> 24);
    for (const x of b) this.parts.push(x);
  }
  global(module: string, name: string): void {
    this.op(OP.GLOBAL);
    for (const x of new TextEncoder().encode(`${module}\n${name}\n`)) this.parts.push(x);
  }
  /** As Python's pickler: BININT1, BININT2, BININT, else LONG1. */
  int(n: number): void {
    if (n >= 0 && n < 0x100) this.op(OP.BININT1, n);
    else if (n >= 0 && n < 0x10000) this.op(OP.BININT2, n & 0xff, n >>> 8);
    else if (n >= -0x80000000 && n < 0x80000000) this.op(OP.BININT, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
    else {
      const bytes: number[] = [];
      let v = BigInt(n);
      // Minimal two's complement, little-endian.
      for (;;) {
        const b = Number(v & 0xffn);
        bytes.push(b);
        v >>= 8n;
        if ((v === 0n && (b & 0x80) === 0) || (v === -1n && (b & 0x80) !== 0)) break;
      }
      this.op(OP.LONG1, bytes.length, ...bytes);
    }
  }
  tuple(items: readonly number[]): void {
    if (items.length === 0) return this.op(OP.EMPTY_TUPLE);
    if (items.length > 3) this.op(OP.MARK);
    for (const n of items) this.int(n);
    this.op(items.length === 1 ? OP.TUPLE1 : items.length === 2 ? OP.TUPLE2 : items.length === 3 ? OP.TUPLE3 : OP.TUPLE);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function torchPtEntries(tensors: Iterable<readonly [string, Tensor]>, options: TorchPtEncodeOptions, file: string | undefined): ZipEntry[] {
  const fail: Fail = failer(file);
  const archive = options.archiveName ?? 'archive';
  if (typeof archive !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(archive) || archive === '.' || archive === '..') {
    fail('archiveName', `must be a non-empty name of letters, digits, '_', '-' and '.', got ${JSON.stringify(archive)}`);
  }
  if (tensors === null || typeof tensors !== 'object' || typeof (tensors as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    fail('tensors', 'must be an iterable of [name, tensor] pairs (an array or a Map)');
  }
  const p = new PickleWriter();
  p.op(OP.PROTO, 2);
  p.global('collections', 'OrderedDict');
  p.op(OP.EMPTY_TUPLE, OP.REDUCE);
  const storages: ZipEntry[] = [];
  const names = new Set<string>();
  let i = 0;
  for (const pair of tensors) {
    if (!Array.isArray(pair) || pair.length !== 2) fail(`tensors[${i}]`, 'must be a [name, tensor] pair');
    const [name, t] = pair as readonly [string, Tensor];
    if (typeof name !== 'string') fail(`tensors[${i}]`, `name must be a string, got ${typeof name}`);
    const where = `tensors["${name}"]`;
    if (names.has(name)) fail(where, 'appears twice');
    names.add(name);
    checkTensor(t, where, fail);
    const cls = STORAGE_OF[t.dtype];
    if (cls === undefined) fail(`${where}.dtype`, `${t.dtype} has no torch storage class that torch 1.13 reads`);
    if (i === 0) p.op(OP.MARK);
    const key = String(i);
    p.str(name);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.op(OP.MARK);
    p.op(OP.MARK);
    p.str('storage');
    p.global('torch', cls!);
    p.str(key);
    p.str('cpu');
    p.int(numel(t.shape));
    p.op(OP.TUPLE, OP.BINPERSID);
    p.int(0);
    p.tuple(t.shape);
    p.tuple(contiguousStrides(t.shape));
    p.op(OP.NEWFALSE);
    p.global('collections', 'OrderedDict');
    p.op(OP.EMPTY_TUPLE, OP.REDUCE, OP.TUPLE, OP.REDUCE);
    storages.push({ name: `${archive}/data/${key}`, data: bytesOf(t.data) });
    i++;
  }
  if (i > 0) p.op(OP.SETITEMS);
  p.op(OP.STOP);
  const text = (s: string) => new TextEncoder().encode(s);
  return [
    { name: `${archive}/data.pkl`, data: p.bytes() },
    { name: `${archive}/byteorder`, data: text('little') },
    ...storages,
    { name: `${archive}/version`, data: text('3\n') },
  ];
}

/** Row-major strides, as torch computes them (a size-0 dimension counts as 1). */
function contiguousStrides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = s;
    s *= Math.max(shape[d]!, 1);
  }
  return out;
}

/**
 * Encodes `tensors` ([name, tensor] pairs in order: an array or a Map) as a `.pt` file that
 * `torch.load(path, weights_only=True)` returns as an OrderedDict of those names, in that
 * order, with those dtypes, shapes and values. Members are stored, 64-byte aligned.
 */
export function encodeTorchPt(tensors: Iterable<readonly [string, Tensor]>, options: TorchPtEncodeOptions = {}): Uint8Array {
  return writeZip(torchPtEntries(tensors, options, undefined), { align: 64 });
}

/**
 * Writes encodeTorchPt's bytes to `path` atomically (a temp file fsynced, renamed over
 * `path`, the directory fsynced), streaming the tensors' own memory.
 */
export async function writeTorchPtFile(
  path: string, tensors: Iterable<readonly [string, Tensor]>, options: TorchPtEncodeOptions = {},
): Promise<void> {
  await publishChunksAtomic(path, zipChunks(torchPtEntries(tensors, options, path), { align: 64 }));
}
