#!/usr/bin/env python3
"""Reads every .safetensors file of a craftgrad run's checkpoints with the safetensors
package (safetensors.torch, the reader PyTorch users have) and compares it with what
craftgrad's own reader saw (scripts/device/dump-checkpoints.mjs): the same tensor names,
dtypes and shapes, the same bytes (SHA-256), the same metadata. Exits 1 on any difference.

    node scripts/device/dump-checkpoints.mjs RUN_DIR > craftgrad.json
    python3 scripts/device/check_safetensors.py RUN_DIR craftgrad.json [--reader torch|numpy]

--reader numpy (safetensors.numpy) is for machines without PyTorch; the GPU session uses torch.
"""
import argparse
import hashlib
import json
import os
import sys

# safetensors' dtype names, as craftgrad writes them, for each reader.
TORCH_DTYPES = {
    'F64': 'float64', 'F32': 'float32', 'F16': 'float16', 'BF16': 'bfloat16',
    'I64': 'int64', 'I32': 'int32', 'I16': 'int16', 'I8': 'int8', 'U8': 'uint8',
    'U16': 'uint16', 'U32': 'uint32', 'U64': 'uint64', 'BOOL': 'bool',
}
NUMPY_DTYPES = {k: v for k, v in TORCH_DTYPES.items() if k != 'BF16'}


def load(path, reader):
    """name -> (dtype name, shape, little-endian bytes), and the metadata."""
    from safetensors import safe_open
    with safe_open(path, framework='pt' if reader == 'torch' else 'np') as f:
        metadata = f.metadata()
    if reader == 'torch':
        import torch
        from safetensors.torch import load_file
        out = {}
        for name, t in load_file(path).items():
            raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            out[name] = (str(t.dtype).removeprefix('torch.'), list(t.shape), raw)
        return out, metadata
    import numpy as np
    from safetensors.numpy import load_file
    out = {}
    for name, a in load_file(path).items():
        out[name] = (a.dtype.name, list(a.shape), np.ascontiguousarray(a).astype(a.dtype.newbyteorder('<')).tobytes())
    return out, metadata


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('run_dir')
    parser.add_argument('craftgrad_json', help="scripts/device/dump-checkpoints.mjs's output")
    parser.add_argument('--reader', choices=['torch', 'numpy'], default='torch')
    args = parser.parse_args()
    with open(args.craftgrad_json, encoding='utf-8') as f:
        want = json.load(f)['files']
    dtypes = TORCH_DTYPES if args.reader == 'torch' else NUMPY_DTYPES

    on_disk = sorted(os.path.relpath(os.path.join(d, n), args.run_dir)
                     for d, _, names in os.walk(os.path.join(args.run_dir, 'checkpoints'))
                     for n in names if n.endswith('.safetensors'))
    problems = []
    if on_disk != sorted(want):
        problems.append(f'files: on disk {on_disk}, craftgrad read {sorted(want)}')
    tensors = 0
    for rel in sorted(set(on_disk) & set(want)):
        got, metadata = load(os.path.join(args.run_dir, rel), args.reader)
        expect = want[rel]
        if (metadata or None) != expect['metadata']:
            problems.append(f'{rel}: metadata {metadata} vs craftgrad {expect["metadata"]}')
        if sorted(got) != sorted(expect['tensors']):
            problems.append(f'{rel}: tensor names {sorted(got)} vs craftgrad {sorted(expect["tensors"])}')
        for name in sorted(set(got) & set(expect['tensors'])):
            dtype, shape, raw = got[name]
            e = expect['tensors'][name]
            if dtypes.get(e['dtype']) != dtype:
                problems.append(f'{rel}: {name}: dtype {dtype} vs craftgrad {e["dtype"]}')
            if shape != e['shape']:
                problems.append(f'{rel}: {name}: shape {shape} vs craftgrad {e["shape"]}')
            if hashlib.sha256(raw).hexdigest() != e['sha256']:
                problems.append(f'{rel}: {name}: the values differ (SHA-256 of the bytes)')
            tensors += 1
    for p in problems:
        print(f'check_safetensors: {p}', file=sys.stderr)
    print(json.dumps({'check': 'safetensors', 'reader': f'safetensors.{args.reader}', 'files': len(on_disk),
                      'tensors': tensors, 'ok': not problems, 'problems': len(problems)}))
    return 0 if not problems and tensors > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
