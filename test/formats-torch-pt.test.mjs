// PyTorch .pt files (src/formats/torch-pt.ts): files torch.save wrote read back bit for
// bit, files craftgrad wrote read by torch.load(weights_only=True) bit for bit (both need a
// python3 with torch, else skipped saying so), a JS-only round trip, and hostile files:
// disallowed globals, truncation, short storages, absurd sizes, deep nesting, cycles and
// mutated pickles, each refused with a FormatError naming the file and the fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FormatError, TORCH_PT_MAX_DEPTH, decodeTorchPt, encodeTorchPt, readTorchPtFile, torchStateDict, torchTensorToF32, writeTorchPtFile,
} from '../dist/formats/index.js';
import { readZip, writeZip } from '../dist/formats/zip.js';
import { tempDir } from './helpers/temp-dir.mjs';

const enc = new TextEncoder();
const hexOf = (ta) => Buffer.from(ta.buffer, ta.byteOffset, ta.byteLength).toString('hex');

// ---------------------------------------------------------------------------------------
// A python with torch, found once.

const TORCH_PY = ['python3', '/usr/bin/python3'].find((p) =>
  spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore', timeout: 120_000 }).status === 0);
const NO_TORCH = TORCH_PY === undefined
  ? 'no python3 imports torch (tried python3 on PATH and /usr/bin/python3): the torch interop tests are skipped'
  : false;
if (NO_TORCH) console.log(`# ${NO_TORCH}`);

function runPython(script, args) {
  const r = spawnSync(TORCH_PY, ['-c', script, ...args], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `python failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// The python side's description of a tensor: dtype, shape and the bytes of its contiguous
// copy in hex (bf16 through an int16 view: numpy has no bfloat16).
const PY_ENC = `
import sys, os, json, copy, collections, struct, zipfile, torch
DT = {torch.float32: 'F32', torch.float64: 'F64', torch.float16: 'F16', torch.bfloat16: 'BF16',
      torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8', torch.uint8: 'U8', torch.bool: 'BOOL'}
def enc(t):
    assert type(t) in (torch.Tensor, torch.nn.Parameter), type(t)
    t = t.detach().contiguous()
    raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
    return {'dtype': DT[t.dtype], 'shape': list(t.shape), 'hex': raw.hex()}
def flat(obj, prefix=''):
    res = []
    for k, v in obj.items():
        p = prefix + '/' + k if prefix else k
        res += flat(v, p) if isinstance(v, dict) else [[p, enc(v)]]
    return res
`;

/** [path, {dtype, shape, hex}] for every tensor of a decoded value, dicts joined by '/', in order. */
function flatten(value, prefix = '') {
  const out = [];
  for (const [k, v] of value) {
    const p = prefix ? `${prefix}/${k}` : k;
    if (v instanceof Map) out.push(...flatten(v, p));
    else out.push([p, { dtype: v.dtype, shape: v.shape, hex: hexOf(v.data) }]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// torch.save -> craftgrad

const GEN = `${PY_ENC}
out = sys.argv[1]
torch.manual_seed(0)
files = {}
def save(name, obj):
    torch.save(obj, os.path.join(out, name))
    files[name] = flat(obj)
lin = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.GELU(), torch.nn.Linear(3, 2))
save('f32.pt', lin.state_dict())  # an OrderedDict with _metadata: pickled with BUILD
save('bf16.pt', copy.deepcopy(lin).to(torch.bfloat16).state_dict())
save('f16.pt', copy.deepcopy(lin).half().state_dict())
special = torch.tensor([0.0, -0.0, float('inf'), float('-inf'), float('nan'), 1e-40, 3.4e38, -1.5, 1/3])
save('special.pt', collections.OrderedDict(f32=special, bf16=special.bfloat16(), f16=special.half(), f64=special.double()))
save('module_prefix.pt', collections.OrderedDict(('module.' + k, v) for k, v in lin.state_dict().items()))
proj = torch.nn.Linear(5, 2).to(torch.bfloat16)
llm = torch.nn.Embedding(7, 3)
save('nested.pt', {'model': {'projector': proj.state_dict(), 'llm_backbone': llm.state_dict()}})
x = torch.arange(24, dtype=torch.float32).reshape(4, 6)
y = torch.randn(3, 5, 2).to(torch.bfloat16)
save('views.pt', collections.OrderedDict(
    t=x.t(), cols=x[:, 1::2], row=x[2], tail=x.flatten()[5:9], expand=torch.tensor([1.5, 2.5, 3.5]).expand(4, 3),
    perm=y.permute(2, 0, 1), tied_a=x, tied_b=x))
save('scalar.pt', collections.OrderedDict(s=torch.tensor(2.75), s_bf16=torch.tensor(-1.0, dtype=torch.bfloat16)))
save('param.pt', collections.OrderedDict(gating_factor=torch.nn.Parameter(torch.full((1,), 0.25)), w=torch.nn.Parameter(torch.randn(2, 2))))
save('dtypes.pt', collections.OrderedDict(
    i64=torch.tensor([-(2**62), 2**53 + 1, 7]), i32=torch.tensor([-(2**31), 2**31 - 1], dtype=torch.int32),
    i16=torch.tensor([-300, 300], dtype=torch.int16), i8=torch.tensor([-128, 127], dtype=torch.int8),
    u8=torch.tensor([0, 255], dtype=torch.uint8), b=torch.tensor([True, False, True]), empty=torch.zeros(0, 5),
    wide=torch.zeros(70000, dtype=torch.float16)))
json.dump(files, open(os.path.join(out, 'expected.json'), 'w'))
`;

test('files torch.save wrote read back exactly: dtypes, BUILD _metadata, module. prefix, nested dicts, views, 0-d, nn.Parameter',
  { skip: NO_TORCH, timeout: 300_000 }, async (t) => {
    const dir = tempDir(t, 'craftgrad-torchpt-');
    runPython(GEN, [dir]);
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
    assert.equal(Object.keys(expected).length, 10);
    for (const [name, want] of Object.entries(expected)) {
      const value = await readTorchPtFile(join(dir, name));
      assert.ok(value instanceof Map, `${name} decodes to a Map`);
      assert.deepEqual(flatten(value), want, `${name}: every tensor, in order, bit for bit`);
    }

    // Contiguous tensors are views of the file's bytes (torch aligns members to 64).
    const bytes = readFileSync(join(dir, 'f32.pt'));
    const file = new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    for (const [k, v] of torchStateDict(decodeTorchPt(file))) assert.equal(v.data.buffer, file.buffer, `${k} is a view`);

    // The module. prefix, stripped on request.
    const sd = torchStateDict(await readTorchPtFile(join(dir, 'module_prefix.pt')), { stripPrefix: 'module.' });
    assert.deepEqual([...sd.keys()], ['0.weight', '0.bias', '2.weight', '2.bias']);

    // The nested Prismatic layout: {"model": {"projector": ..., "llm_backbone": ...}}.
    const nested = await readTorchPtFile(join(dir, 'nested.pt'));
    assert.deepEqual([...nested.get('model').keys()], ['projector', 'llm_backbone']);
    const projector = torchStateDict(nested, { path: ['model', 'projector'] });
    assert.deepEqual([...projector.keys()], ['weight', 'bias']);
    assert.equal(projector.get('weight').dtype, 'BF16');
    assert.deepEqual(projector.get('weight').shape, [2, 5]);
    const w32 = torchTensorToF32(projector.get('weight'));
    assert.equal(w32.dtype, 'F32');
    const bits = projector.get('weight').data;
    assert.deepEqual(Array.from(new Uint32Array(w32.data.buffer)), Array.from(bits, (b) => (b << 16) >>> 0));
    assert.throws(() => torchStateDict(nested, { path: ['model', 'vision_backbone'], source: 'nested.pt' }),
      (e) => e instanceof FormatError && /nested\.pt.*\["model"\]\["vision_backbone"\].*is missing/.test(e.message));
    assert.throws(() => torchStateDict(nested, { source: 'nested.pt' }),
      (e) => e instanceof FormatError && /\["model"\].*is not a tensor/.test(e.message));

    // The saved nn.Parameter (through _rebuild_parameter) is its tensor.
    const gating = torchStateDict(await readTorchPtFile(join(dir, 'param.pt'))).get('gating_factor');
    assert.deepEqual(gating, { dtype: 'F32', shape: [1], data: new Float32Array([0.25]) });
  });

// ---------------------------------------------------------------------------------------
// craftgrad -> torch.load(weights_only=True)

const specialF32 = new Float32Array(new Uint32Array([0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00001, 0x00000001, 0x7f7fffff, 0xbfc00000]).buffer);
const OURS = [
  ['module.proprio.weight', { dtype: 'F32', shape: [2, 4], data: specialF32 }],
  ['action_head.fc1.weight', { dtype: 'BF16', shape: [3, 2], data: new Uint16Array([0x3f80, 0xbf80, 0x7fc1, 0x0001, 0x8000, 0x4049]) }],
  ['f16', { dtype: 'F16', shape: [2, 1, 2], data: new Uint16Array([0x3c00, 0x7c00, 0x0001, 0xfe01]) }],
  ['gating_factor', { dtype: 'F32', shape: [1], data: new Float32Array([0.5]) }],
  ['scalar', { dtype: 'F64', shape: [], data: new Float64Array([Math.PI]) }],
  ['i64', { dtype: 'I64', shape: [3], data: new BigInt64Array([-(2n ** 63n), 2n ** 53n + 1n, 2n ** 63n - 1n]) }],
  ['i32', { dtype: 'I32', shape: [2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) }],
  ['i16', { dtype: 'I16', shape: [1], data: new Int16Array([-2]) }],
  ['i8', { dtype: 'I8', shape: [2], data: new Int8Array([-128, 127]) }],
  ['u8', { dtype: 'U8', shape: [2], data: new Uint8Array([0, 255]) }],
  ['mask', { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) }],
  ['empty', { dtype: 'F32', shape: [0, 5], data: new Float32Array(0) }],
  ['wide', { dtype: 'F16', shape: [70000], data: new Uint16Array(70000).map((_, i) => i & 0xffff) }],
  ['déjà vu', { dtype: 'F32', shape: [1, 1, 1, 1, 2], data: new Float32Array([1, 2]) }],
];
const oursExpected = OURS.map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, hex: hexOf(t.data) }]);

const LOAD = `${PY_ENC}
p = sys.argv[1]
obj = torch.load(p, weights_only=True)
raw = open(p, 'rb').read()
z = zipfile.ZipFile(p)
assert z.testzip() is None
starts = []
for i in z.infolist():
    n, m = struct.unpack('<HH', raw[i.header_offset + 26:i.header_offset + 30])
    starts.append(i.header_offset + 30 + n + m)
print(json.dumps({'type': type(obj).__name__, 'items': [[k, enc(v)] for k, v in obj.items()],
                  'names': z.namelist(), 'misaligned': [s for s in starts if s % 64]}))
`;

test('files craftgrad wrote: torch.load(weights_only=True) gives an OrderedDict of those names, in order, bit for bit; members 64-aligned',
  { skip: NO_TORCH, timeout: 300_000 }, async (t) => {
    const dir = tempDir(t, 'craftgrad-torchpt-');
    const path = join(dir, 'action_head--150000_checkpoint.pt');
    await writeTorchPtFile(path, OURS);
    const got = JSON.parse(runPython(LOAD, [path]));
    assert.equal(got.type, 'OrderedDict');
    assert.deepEqual(got.items, oursExpected);
    assert.deepEqual(got.misaligned, []);
    assert.equal(got.names[0], 'archive/data.pkl');
    // A Map works as the input too, and the encoder's bytes are the file's.
    assert.deepEqual(new Uint8Array(readFileSync(path)), encodeTorchPt(new Map(OURS)));
  });

test('craftgrad round trip without python: decode(encode(x)) is x, contiguous tensors are views, atomic write leaves no temp file', async (t) => {
  const bytes = encodeTorchPt(OURS, { archiveName: 'proprio_projector--150000_checkpoint' });
  for (const e of readZip(bytes)) assert.equal(e.data.byteOffset % 64, 0, `${e.name} starts 64-aligned`);
  const back = decodeTorchPt(bytes);
  assert.deepEqual(flatten(back), oursExpected);
  for (const [k, v] of back) if (v.data.length > 0) assert.equal(v.data.buffer, bytes.buffer, `${k} is a view`);

  const dir = tempDir(t, 'craftgrad-torchpt-');
  const path = join(dir, 'x.pt');
  writeFileSync(path, 'old');
  await writeTorchPtFile(path, OURS.slice(0, 2));
  assert.deepEqual(flatten(await readTorchPtFile(path)), oursExpected.slice(0, 2));
  assert.ok(!existsSync(`${path}.tmp-${process.pid}`));
  // A refused input leaves the old file and no temp file.
  await assert.rejects(writeTorchPtFile(path, [['a', OURS[0][1]], ['a', OURS[1][1]]]),
    (e) => e instanceof FormatError && e.file === path && /tensors\["a"\].*appears twice/.test(e.message));
  assert.deepEqual(flatten(await readTorchPtFile(path)), oursExpected.slice(0, 2));
  await assert.rejects(writeTorchPtFile(path, [['u', { dtype: 'U32', shape: [1], data: new Uint32Array(1) }]]),
    (e) => e instanceof FormatError && /tensors\["u"\]\.dtype.*U32 has no torch storage class/.test(e.message));
  await assert.rejects(writeTorchPtFile(path, [['bad', { dtype: 'F32', shape: [3], data: new Float32Array(2) }]]),
    (e) => e instanceof FormatError && /tensors\["bad"\]\.data.*2 elements/.test(e.message));
  assert.ok(!existsSync(`${path}.tmp-${process.pid}`));

  // torchTensorToF32: fp16 widened exactly, integers refused naming the field.
  const f16 = torchTensorToF32({ dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x0001]) });
  assert.deepEqual(Array.from(f16.data), [1, -2, 2 ** -24]);
  assert.throws(() => torchTensorToF32({ dtype: 'I32', shape: [1], data: new Int32Array(1) }, { source: 'f.pt', field: 'w' }),
    (e) => e instanceof FormatError && /f\.pt, w: is I32/.test(e.message));
});

// ---------------------------------------------------------------------------------------
// Hostile files, built by hand.

const u32le = (n) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
const K = {
  proto: [0x80, 2], mark: [0x28], tuple: [0x74], emptyTuple: [0x29], reduce: [0x52], setitems: [0x75], stop: [0x2e],
  persid: [0x51], newfalse: [0x89], emptyList: [0x5d], append: [0x61],
};
const str = (s) => { const b = enc.encode(s); return [0x58, ...u32le(b.length), ...b]; };
const glob = (m, n) => [0x63, ...enc.encode(`${m}\n${n}\n`)];
function int(n) {
  if (n >= 0 && n < 256) return [0x4b, n];
  if (n >= -(2 ** 31) && n < 2 ** 31) return [0x4a, ...u32le(n >>> 0)];
  const bytes = [];
  let v = BigInt(n);
  for (;;) {
    const b = Number(v & 0xffn);
    bytes.push(b);
    v >>= 8n;
    if ((v === 0n && !(b & 0x80)) || (v === -1n && (b & 0x80))) break;
  }
  return [0x8a, bytes.length, ...bytes];
}
const tuple = (items) => [...K.mark, ...items.flatMap(int), ...K.tuple];

/** data.pkl of {name: one tensor}, each part overridable. */
function tensorPickle({ cls = 'FloatStorage', key = '0', numel = 4, offset = 0, size = [4], stride = [1], name = 'w' } = {}) {
  return Uint8Array.from([
    ...K.proto, ...glob('collections', 'OrderedDict'), ...K.emptyTuple, ...K.reduce, ...K.mark, ...str(name),
    ...glob('torch._utils', '_rebuild_tensor_v2'), ...K.mark,
    ...K.mark, ...str('storage'), ...glob('torch', cls), ...str(key), ...str('cpu'), ...int(numel), ...K.tuple, ...K.persid,
    ...int(offset), ...tuple(size), ...tuple(stride), ...K.newfalse, ...glob('collections', 'OrderedDict'), ...K.emptyTuple, ...K.reduce,
    ...K.tuple, ...K.reduce, ...K.setitems, ...K.stop,
  ]);
}

/** A .pt archive around `pkl`, with storages {key: bytes}. */
function archive(pkl, storages = { 0: new Uint8Array(16) }, { prefix = 'a', byteorder = 'little', compress = false } = {}) {
  const entries = [{ name: `${prefix}/data.pkl`, data: pkl }];
  if (byteorder !== undefined) entries.push({ name: `${prefix}/byteorder`, data: enc.encode(byteorder) });
  for (const [k, b] of Object.entries(storages)) entries.push({ name: `${prefix}/data/${k}`, data: b });
  entries.push({ name: `${prefix}/version`, data: enc.encode('3\n') });
  return writeZip(entries, { align: 64, compress });
}

/** decodeTorchPt refuses `bytes` with a FormatError naming `source`, a field, and matching `pattern`. */
function expectRefused(bytes, pattern, options = {}) {
  const source = options.source ?? 'hostile.pt';
  assert.throws(() => decodeTorchPt(bytes, { source, ...options }), (e) => {
    assert.ok(e instanceof FormatError, `expected a FormatError, got ${e?.stack ?? e}`);
    assert.equal(e.file, source);
    assert.ok(e.message.includes(source), `the message names the file: ${e.message}`);
    assert.ok(typeof e.field === 'string' && e.field.length > 0, `the error names a field: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('the hand-built pickle is accepted as is (so the hostile variants below fail for their own fault)', () => {
  const data = new Float32Array([1, 2, 3, 4]);
  const v = decodeTorchPt(archive(tensorPickle(), { 0: new Uint8Array(data.buffer) }));
  assert.deepEqual(flatten(v), [['w', { dtype: 'F32', shape: [4], hex: hexOf(data) }]]);
  // and its strided, offset form gathers the right elements
  const s = decodeTorchPt(archive(tensorPickle({ offset: 1, size: [2, 2], stride: [1, 2], numel: 5 }), { 0: new Uint8Array(new Float32Array([0, 1, 2, 3, 4]).buffer) }));
  assert.deepEqual(Array.from(s.get('w').data), [1, 3, 2, 4]);
});

test('globals other than the allowed ones are refused by name, and nothing runs', (t) => {
  const dir = tempDir(t, 'craftgrad-torchpt-');
  const marker = join(dir, 'pwned');
  const call = (m, n) => Uint8Array.from([...K.proto, ...glob(m, n), ...str(`touch ${marker}`), 0x85, ...K.reduce, ...K.stop]);
  expectRefused(archive(call('os', 'system')), /global "os\.system" is not allowed/);
  expectRefused(archive(call('posix', 'system')), /global "posix\.system" is not allowed/);
  expectRefused(archive(call('builtins', 'eval')), /global "builtins\.eval" is not allowed/);
  expectRefused(archive(call('__builtin__', 'exec')), /global "__builtin__\.exec" is not allowed/);
  expectRefused(archive(call('subprocess', 'Popen')), /global "subprocess\.Popen" is not allowed/);
  // Exact names only: near misses of allowed ones, and torch functions torch.load itself would refuse.
  expectRefused(archive(call('torch._utils', '_rebuild_parameter_with_state')), /"torch\._utils\._rebuild_parameter_with_state" is not allowed/);
  expectRefused(archive(call('collections', 'OrderedDict ')), /"collections\.OrderedDict " is not allowed/);
  expectRefused(archive(call('torch', 'load')), /"torch\.load" is not allowed/);
  // Protocol 4's STACK_GLOBAL is checked the same way.
  const stackGlobal = Uint8Array.from([0x80, 4, 0x8c, 8, ...enc.encode('builtins'), 0x8c, 4, ...enc.encode('exec'), 0x93, ...str('1'), 0x85, ...K.reduce, ...K.stop]);
  expectRefused(archive(stackGlobal), /global "builtins\.exec" is not allowed/);
  // The error names where in data.pkl.
  expectRefused(archive(call('os', 'system')), /a\/data\.pkl byte 2/);
  assert.ok(!existsSync(marker), 'nothing was executed');
  // An allowed global called in a way torch never does is refused too.
  const odd = Uint8Array.from([...K.proto, ...glob('collections', 'OrderedDict'), ...str('x'), 0x85, ...K.reduce, ...K.stop]);
  expectRefused(archive(odd), /collections\.OrderedDict called with 1 arguments/);
  const storageCall = Uint8Array.from([...K.proto, ...glob('torch', 'FloatStorage'), ...int(5), 0x85, ...K.reduce, ...K.stop]);
  expectRefused(archive(storageCall), /torch\.FloatStorage is not callable here/);
  const bareGlobal = Uint8Array.from([...K.proto, ...glob('torch', 'FloatStorage'), ...K.stop]);
  expectRefused(archive(bareGlobal), /holds torch\.FloatStorage itself/);
});

test('truncated archives and truncated pickles are refused with the file named, never another error', () => {
  const good = encodeTorchPt(OURS.slice(0, 3));
  for (let n = 0; n < good.length; n += 7) expectRefused(good.subarray(0, n), /./);
  // A pickle cut short inside an otherwise sound archive.
  const pkl = tensorPickle();
  for (let n = 0; n < pkl.length; n++) expectRefused(archive(pkl.subarray(0, n)), /truncated|empty|STOP|MARK|needs|stack/);
  expectRefused(archive(pkl.subarray(0, 40)), /a\/data\.pkl byte \d+: .*truncated/);
});

test('storages shorter than their tensors and views outside their storage are refused', () => {
  const f4 = (n) => new Uint8Array(4 * n);
  // The persistent id claims more elements than the member holds.
  expectRefused(archive(tensorPickle({ numel: 100, size: [100] }), { 0: f4(4) }),
    /storage "0" claims 100 F32 elements \(400 bytes\) but member a\/data\/0 holds 16 bytes/);
  // The view reaches past its storage: by size, by offset, by stride.
  expectRefused(archive(tensorPickle({ numel: 4, size: [5] }), { 0: f4(4) }), /reach element 4 but the storage has 4 F32 elements/);
  expectRefused(archive(tensorPickle({ numel: 4, offset: 1, size: [4] }), { 0: f4(4) }), /reach element 4/);
  expectRefused(archive(tensorPickle({ numel: 4, size: [2, 2], stride: [3, 1] }), { 0: f4(4) }), /reach element 4/);
  expectRefused(archive(tensorPickle({ numel: 4, size: [0], offset: 5 }), { 0: f4(4) }), /storage_offset 5 is past/);
  // Missing member, wrong storage class, malformed arguments.
  expectRefused(archive(tensorPickle({ key: '7' }), { 0: f4(4) }), /no member a\/data\/7/);
  expectRefused(archive(tensorPickle({ cls: 'ComplexFloatStorage' }), { 0: f4(4) }), /"torch\.ComplexFloatStorage" is not allowed/);
  expectRefused(archive(tensorPickle({ size: [4], stride: [1, 1] }), { 0: f4(4) }), /size has 1 dimensions but stride 2/);
  expectRefused(archive(tensorPickle({ size: [-1] }), { 0: f4(4) }), /size\[0\] is number -1, not a non-negative integer/);
  // The error names the key the tensor was for.
  expectRefused(archive(tensorPickle({ numel: 4, size: [5], name: 'module.fc1.weight' }), { 0: f4(4) }), /key "module\.fc1\.weight"/);
  // The same storage loaded twice as different types.
  const twice = Uint8Array.from([
    ...K.proto, ...K.mark,
    ...K.mark, ...str('storage'), ...glob('torch', 'FloatStorage'), ...str('0'), ...str('cpu'), ...int(4), ...K.tuple, ...K.persid,
    ...K.mark, ...str('storage'), ...glob('torch', 'IntStorage'), ...str('0'), ...str('cpu'), ...int(4), ...K.tuple, ...K.persid,
    ...K.tuple, ...K.stop]);
  expectRefused(archive(twice, { 0: f4(4) }), /storage "0" is loaded twice with different types/);
});

test('absurd sizes are refused before anything is allocated', () => {
  const before = process.memoryUsage().arrayBuffers;
  const f4 = new Uint8Array(16);
  // 2^40 elements on a 4-element storage.
  expectRefused(archive(tensorPickle({ size: [2 ** 20, 2 ** 20], stride: [2 ** 20, 1] }), { 0: f4 }), /reach element/);
  expectRefused(archive(tensorPickle({ size: [2 ** 40], stride: [1] }), { 0: f4 }), /reach element 1099511627775/);
  // A storage claiming 2^40 elements.
  expectRefused(archive(tensorPickle({ numel: 2 ** 40, size: [4] }), { 0: f4 }), /claims 1099511627776 F32 elements/);
  // 2^40 elements through stride 0 (an expanded view) stays inside the storage: the copy cap refuses it.
  expectRefused(archive(tensorPickle({ size: [2 ** 40], stride: [0] }), { 0: f4 }), /maxCopyBytes/);
  expectRefused(archive(tensorPickle({ size: [1000], stride: [0] }), { 0: f4 }), /copying it would take 4000 bytes/, { maxCopyBytes: 3999 });
  // Beyond 2^53 elements, and an int too big to be a dimension.
  expectRefused(archive(tensorPickle({ size: [2 ** 30, 2 ** 30, 2 ** 30], stride: [0, 0, 0] }), { 0: f4 }), /more than 2\^53 elements/);
  expectRefused(archive(tensorPickle({ size: [2 ** 70], stride: [0] }), { 0: f4 }), /size\[0\] is bigint/);
  // Lengths in the pickle larger than what is left of it.
  const longStr = Uint8Array.from([...K.proto, 0x58, 0xf0, 0xff, 0xff, 0xff, ...enc.encode('abc')]);
  expectRefused(archive(longStr), /BINUNICODE needs 4294967280 bytes but only 3 remain/);
  const longInt = Uint8Array.from([...K.proto, 0x8a, 200, 1, 2]);
  expectRefused(archive(longInt), /LONG1 needs 200 bytes but only 2 remain/);
  const noNewline = Uint8Array.from([...K.proto, 0x63, ...new Uint8Array(5000).fill(0x41)]);
  expectRefused(archive(noNewline), /GLOBAL module has no end of line within 1024 bytes/);
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 2 ** 20, 'no large allocation happened');
});

test('deep nesting, cycles and stray values are refused', () => {
  const marks = Uint8Array.from([...K.proto, ...new Array(100_000).fill(0x28)]);
  expectRefused(archive(marks), new RegExp(`MARKs nest deeper than ${TORCH_PT_MAX_DEPTH}`));
  // Lists in lists, no MARK: EMPTY_LIST x n, then APPEND x (n-1).
  const n = 50_000;
  const lists = Uint8Array.from([...K.proto, ...new Array(n).fill(0x5d), ...new Array(n - 1).fill(0x61), ...K.stop]);
  expectRefused(archive(lists), new RegExp(`containers nest deeper than ${TORCH_PT_MAX_DEPTH}`));
  // Nesting just under the cap is fine.
  const ok = TORCH_PT_MAX_DEPTH;
  const fine = Uint8Array.from([...K.proto, ...new Array(ok).fill(0x5d), ...new Array(ok - 1).fill(0x61), ...K.stop]);
  let v = decodeTorchPt(archive(fine));
  for (let d = 1; d < ok; d++) v = v[0];
  assert.deepEqual(v, []);
  // A list holding itself (BINPUT 0, BINGET 0, APPEND).
  const cycle = Uint8Array.from([...K.proto, 0x5d, 0x71, 0, 0x68, 0, 0x61, ...K.stop]);
  expectRefused(archive(cycle), /contains itself/);
  // A DAG of shared lists is fine and is walked once per list, not once per path (2^59 here):
  // lists L59..L0 are pushed (and memoized), then each L(d) takes L(d-1) twice.
  const levels = 60;
  const dag = [...K.proto];
  for (let i = levels - 1; i >= 0; i--) dag.push(0x5d, 0x71, i);
  for (let d = 1; d < levels; d++) dag.push(0x61, 0x68, d - 1, 0x61);
  const top = decodeTorchPt(archive(Uint8Array.from([...dag, ...K.stop])));
  assert.equal(top.length, 2);
  assert.equal(top[0], top[1], 'shared, not copied');
  // Missing memo entry, stray opcodes, bytes after STOP, persistent ids that are not storages.
  expectRefused(archive(Uint8Array.from([...K.proto, 0x6a, 9, 0, 0, 0, ...K.stop])), /LONG_BINGET 9: no such memo entry/);
  expectRefused(archive(Uint8Array.from([...K.proto, 0x69, ...K.stop])), /opcode 0x69 .* refused/); // INST
  expectRefused(archive(Uint8Array.from([...K.proto, 0x4e, ...K.stop, 0x4e])), /1 bytes follow STOP/);
  expectRefused(archive(Uint8Array.from([...K.proto, ...str('x'), ...K.persid, ...K.stop])), /persistent id the str "x" is not \('storage'/);
  expectRefused(archive(Uint8Array.from([...K.proto, 0x61, ...K.stop])), /stack is empty/);
  expectRefused(archive(Uint8Array.from([...K.proto, ...K.emptyTuple, 0x4e, 0x61, ...K.stop])), /only lists can be appended to/);
});

test('container faults: not a zip, legacy format, big-endian, deflated members, no data.pkl, stray members', (t) => {
  const pkl = tensorPickle();
  expectRefused(pkl, /legacy \(pre-zip\) torch\.save file/);
  expectRefused(enc.encode('definitely not a checkpoint'), /not a zip archive/);
  expectRefused(archive(pkl, undefined, { byteorder: 'big' }), /a\/byteorder.*only little-endian/);
  expectRefused(archive(pkl, undefined, { compress: true }), /is deflated/);
  expectRefused(writeZip([{ name: 'a/version', data: enc.encode('3\n') }]), /a\/data\.pkl.*is missing/);
  expectRefused(writeZip([]), /empty zip archive/);
  expectRefused(writeZip([{ name: 'data.pkl', data: pkl }]), /not inside an archive folder/);
  expectRefused(writeZip([{ name: 'a/data.pkl', data: pkl }, { name: 'b/data/0', data: new Uint8Array(16) }]), /entry "b\/data\/0".*outside the archive folder "a"/);
  // No byteorder member (torch < 2.1): little-endian assumed; any archive folder name works.
  const v = decodeTorchPt(archive(pkl, undefined, { byteorder: undefined, prefix: 'action_head--150000_checkpoint' }));
  assert.deepEqual(v.get('w').shape, [4]);
});

test('mutated pickles: every one decodes or is refused with a FormatError, quickly', { timeout: 120_000 }, () => {
  const base = encodeTorchPt(OURS.slice(0, 6));
  const entries = readZip(base);
  const pkl = entries[0].data;
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const m = Uint8Array.from(pkl);
    const k = 1 + Math.floor(rand() * 3);
    for (let j = 0; j < k; j++) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
    const bytes = writeZip([{ name: entries[0].name, data: m }, ...entries.slice(1)], { align: 64 });
    try {
      decodeTorchPt(bytes, { source: 'mutant.pt', maxCopyBytes: 1 << 20 });
    } catch (e) {
      assert.ok(e instanceof FormatError, `mutation ${i}: ${e?.stack ?? e}`);
      assert.ok(e.message.includes('mutant.pt'));
      refused++;
    }
  }
  assert.ok(refused > 1000, `most mutations are refused (${refused})`);
});
