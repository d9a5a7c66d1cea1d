// Python + torch for the VLA file tests: is torch there, run a snippet, and a TorchPtIo
// (src/model/vla/torch-pt-io.ts) backed by torch itself for as long as the formats layer has
// no .pt reader/writer (branch torch-pt). Tensors cross between node and python as
// safetensors files that the python side reads and writes by hand (this torch has no
// safetensors package); the names are JSON key paths, so nested dicts survive.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as formats from '../../dist/formats/index.js';

export const PYTHON = '/usr/bin/python3';

/** Null when python3 has torch, else why not (for the skip message). */
export function torchMissing() {
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? null : `${PYTHON} has no torch (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`;
}

/** Python helpers every snippet gets: read_st / write_st (safetensors by hand). */
export const PY_PRELUDE = String.raw`
import json, struct, sys, os, collections
import torch
DT = {'F32': torch.float32, 'BF16': torch.bfloat16, 'F16': torch.float16, 'I64': torch.int64}
TD = {v: k for k, v in DT.items()}
def read_st(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n]); data = b[8 + n:]
    items = sorted(((k, v) for k, v in h.items() if k != '__metadata__'), key=lambda kv: kv[1]['data_offsets'][0])
    out = collections.OrderedDict()
    for k, v in items:
        s, e = v['data_offsets']; dt = DT[v['dtype']]
        raw = bytearray(data[s:e])
        if dt in (torch.bfloat16, torch.float16):
            t = torch.frombuffer(raw, dtype=torch.int16).view(dt) if e > s else torch.zeros(0, dtype=dt)
        else:
            t = torch.frombuffer(raw, dtype=dt) if e > s else torch.zeros(0, dtype=dt)
        out[k] = t.reshape(v['shape']).clone()
    return out
def write_st(path, d):
    hdr = {}; off = 0; blobs = []
    for k, t in d.items():
        t = t.detach().contiguous().cpu()
        raw = (t.view(torch.int16) if t.dtype in (torch.bfloat16, torch.float16) else t).numpy().tobytes()
        hdr[k] = {'dtype': TD[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(raw)]}
        off += len(raw); blobs.append(raw)
    h = json.dumps(hdr).encode(); h += b' ' * ((8 - len(h) % 8) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
def nest(flat):
    # names are JSON key paths -> nested OrderedDicts
    top = collections.OrderedDict()
    for k, t in flat.items():
        path = json.loads(k); node = top
        for p in path[:-1]:
            node = node.setdefault(p, collections.OrderedDict())
        node[path[-1]] = t
    return top
`;

/** Runs `code` (after the prelude) with `args` in sys.argv[1:]; returns stdout, throws with stderr on failure. */
export function py(code, ...args) {
  const r = spawnSync(PYTHON, ['-c', PY_PRELUDE + code, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    const e = new Error(`python failed (${r.status}): ${r.stderr}`);
    e.stderr = r.stderr;
    throw e;
  }
  return r.stdout;
}

/** Writes {jsonPath -> tensor} as a safetensors for python (tensors: [path array, {dtype, shape, data}]). */
export function writeForPython(path, entries) {
  const obj = {};
  for (const [keyPath, t] of entries) obj[JSON.stringify(keyPath)] = t;
  writeFileSync(path, formats.encodeSafetensors(obj));
}

/** torch.save(nest(entries), pt), keys in the order given, with optional per-tensor casts to bf16 done in python. */
export function torchSave(ptPath, entries, { bf16 = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'vla-pt-'));
  try {
    const st = join(dir, 'in.safetensors');
    writeForPython(st, entries);
    const order = join(dir, 'order.json');
    writeFileSync(order, JSON.stringify(entries.map(([p]) => JSON.stringify(p))));
    py(`
read = read_st(sys.argv[1])
flat = collections.OrderedDict((k, read[k]) for k in json.load(open(sys.argv[4])))  # the caller's order
cast = set(json.loads(sys.argv[3]))
for k in list(flat):
    if k in cast: flat[k] = flat[k].to(torch.bfloat16)
torch.save(nest(flat), sys.argv[2])
`, st, ptPath, JSON.stringify(bf16.map((p) => JSON.stringify(p))), order);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A TorchPtIo backed by torch.load(weights_only=True) / torch.save (for when the formats layer has none). */
export function pythonTorchPtIo() {
  return {
    async readTorchPtFile(path) {
      const dir = mkdtempSync(join(tmpdir(), 'vla-ptr-'));
      try {
        const st = join(dir, 'out.safetensors');
        let order;
        try {
          order = py(`
obj = torch.load(sys.argv[1], weights_only=True)
flat = collections.OrderedDict()
def walk(node, path):
    if isinstance(node, torch.Tensor): flat[json.dumps(path)] = node; return
    if not isinstance(node, dict): raise SystemExit('non-tensor leaf at %r' % (path,))
    for k, v in node.items(): walk(v, path + [k])
walk(obj, [])
write_st(sys.argv[2], flat)
print(json.dumps(list(flat.keys())))
`, path, st);
        } catch (e) {
          throw new formats.FormatError('torch-pt', (e.stderr ?? e.message).trim().split('\n').slice(-3).join(' '), { file: path });
        }
        const { tensors } = formats.decodeSafetensors(readFileSync(st));
        const top = new Map();
        for (const k of JSON.parse(order.trim().split('\n').pop())) {
          const t = tensors[k];
          const keyPath = JSON.parse(k);
          let node = top;
          for (const p of keyPath.slice(0, -1)) {
            if (!node.has(p)) node.set(p, new Map());
            node = node.get(p);
          }
          node.set(keyPath[keyPath.length - 1], { dtype: t.dtype, shape: [...t.shape], data: t.data.slice() });
        }
        return top;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    async writeTorchPtFile(path, tensors) {
      const entries = [...tensors].map(([k, t]) => [[k], t]);
      const tmp = `${path}.tmp-py`;
      torchSave(tmp, entries);
      py('os.replace(sys.argv[1], sys.argv[2])', tmp, path);
    },
  };
}

/** The formats layer's reader/writer when it has one (then undefined: the module's default), else the torch-backed one. */
export function testTorchPtIo() {
  return typeof formats.readTorchPtFile === 'function' ? undefined : pythonTorchPtIo();
}
