#!/usr/bin/python3
"""PyTorch peer for bench/bf16-cuda.js (bench only, never a test dependency; issue #29).

Reads a JSON spec (--spec, a string) and prints one JSON line:
- products: bf16 torch.matmul (bf16 operands and output, fp32 accumulation as cuBLAS does) of
  the spec's `peak` shapes [M, N, K] (large squares: the bf16 dense peak) and `products`
  shapes [M, N, K, transA, transB] (the models'), GFLOP/s from the median of `reps` CUDA-event
  timings after 3 warm-ups, operands torch.randn (never zeros or constants);
- attention: F.scaled_dot_product_attention on bf16 q (B, heads, T, hd), k and v (B, kvHeads,
  Tk, hd) under torch.nn.attention.sdpa_kernel(SDPBackend.FLASH_ATTENTION), forward and
  backward (torch.autograd.grad of the output against q, k, v with a random upstream gradient)
  timed separately, the median of `reps` CUDA-event timings. Grouped-query shapes use
  enable_gqa=True; if the flash backend refuses that, k and v are expanded to every head
  outside the timing and the entry says so. A gated entry (VLA-Adapter's Pro head: a tanh gate
  on the task keys' logits) has no SDPA form: the ungated attention of the same size is timed
  and the entry says so. A refused shape gets its error text instead of times.
--device cpu runs the same code with host timers (a rehearsal of the script on a machine
without a GPU: its figures mean nothing and bench/bf16-cuda.js never records them).
Exit 2 with a one-line reason when the device or a needed torch feature is missing.
"""
import argparse
import json
import sys
import time

try:
    import torch
    import torch.nn.functional as Fn
except Exception as e:  # noqa: BLE001
    print(f'bench/bf16_torch.py: PyTorch is not importable ({e})', file=sys.stderr)
    sys.exit(2)

p = argparse.ArgumentParser()
p.add_argument('--device', default='cuda')
p.add_argument('--spec', required=True, help='JSON: {peak, products, attention, reps}')
p.add_argument('--no-attention', action='store_true', help='skip the attention part (a torch without sdpa_kernel)')
a = p.parse_args()
spec = json.loads(a.spec)
DEV = torch.device(a.device)
CUDA = DEV.type == 'cuda'
if CUDA and not torch.cuda.is_available():
    print(f'bench/bf16_torch.py: torch {torch.__version__} sees no CUDA device; nothing measured', file=sys.stderr)
    sys.exit(2)
if not a.no_attention and spec.get('attention'):
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except Exception as e:  # noqa: BLE001
        print(f'bench/bf16_torch.py: torch {torch.__version__} has no torch.nn.attention.sdpa_kernel ({e}); needs torch >= 2.3', file=sys.stderr)
        sys.exit(2)
REPS = int(spec.get('reps', 20))
torch.manual_seed(0)


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def time_ms(fn, reps=REPS, warmup=3):
    """Milliseconds of each of `reps` runs of fn: CUDA events on a GPU, host clock on the CPU."""
    for _ in range(warmup):
        fn()
    out = []
    if CUDA:
        torch.cuda.synchronize(DEV)
        for _ in range(reps):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            fn()
            e1.record()
            e1.synchronize()
            out.append(e0.elapsed_time(e1))
    else:
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def operand(rows, cols, trans):
    """A rows×cols bf16 operand; transposed: a (cols×rows) tensor's transpose view, as cuBLAS reads it."""
    if trans:
        return torch.randn(cols, rows, device=DEV, dtype=torch.bfloat16).t()
    return torch.randn(rows, cols, device=DEV, dtype=torch.bfloat16)


def product(m, n, k, ta=False, tb=False):
    A, B = operand(m, k, ta), operand(k, n, tb)
    C = torch.empty(m, n, device=DEV, dtype=torch.bfloat16)
    ms = time_ms(lambda: torch.matmul(A, B, out=C))
    del A, B, C
    med = median(ms)
    return {'M': m, 'N': n, 'K': k, 'transA': ta, 'transB': tb, 'median_ms': med, 'gflops': 2 * m * n * k / (med / 1e3) / 1e9}


def attention(e):
    B, T, Tk, H, KVH, hd = e['B'], e['T'], e.get('Tk') or e['T'], e['heads'], e['kvHeads'], e['hd']
    res = {'name': e['name'], 'B': B, 'T': T, 'Tk': Tk, 'heads': H, 'kvHeads': KVH, 'hd': hd, 'causal': bool(e['causal']), 'notes': []}
    if e.get('gated'):
        res['notes'].append('gate not expressible in SDPA: the ungated attention of the same size timed')
    q = torch.randn(B, H, T, hd, device=DEV, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, KVH, Tk, hd, device=DEV, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, KVH, Tk, hd, device=DEV, dtype=torch.bfloat16, requires_grad=True)
    dout = torch.randn(B, H, T, hd, device=DEV, dtype=torch.bfloat16)
    scale = hd ** -0.5
    kwargs = {'is_causal': bool(e['causal']), 'scale': scale}
    backend = SDPBackend.FLASH_ATTENTION if CUDA else SDPBackend.MATH
    if not CUDA:
        res['notes'].append('CPU rehearsal: the math backend, not flash')

    def call(kk, vv, **extra):
        with sdpa_kernel(backend):
            return Fn.scaled_dot_product_attention(q, kk, vv, **kwargs, **extra)

    kk, vv, extra = k, v, {}
    if KVH != H:
        try:
            call(k, v, enable_gqa=True)
            extra = {'enable_gqa': True}
            res['notes'].append('grouped-query: enable_gqa=True')
        except Exception as err:  # noqa: BLE001
            rep = H // KVH
            kk = k.detach().repeat_interleave(rep, dim=1).requires_grad_(True)
            vv = v.detach().repeat_interleave(rep, dim=1).requires_grad_(True)
            res['notes'].append(f'flash refused enable_gqa ({str(err).splitlines()[0][:160]}): k, v expanded to {H} heads outside the timing')
    try:
        with torch.no_grad():
            fwd = time_ms(lambda: call(kk, vv, **extra))
        out = call(kk, vv, **extra)
        bwd = time_ms(lambda: torch.autograd.grad(out, (q, kk, vv), dout, retain_graph=True))
    except Exception as err:  # noqa: BLE001
        res['error'] = str(err).splitlines()[0][:300]
        return res
    res['forward_ms'], res['backward_ms'] = median(fwd), median(bwd)
    return res


out = {'torch': torch.__version__, 'device': torch.cuda.get_device_name(DEV) if CUDA else 'cpu (rehearsal)', 'reps': REPS,
       'peak': [product(*s) for s in spec.get('peak', [])],
       'products': [product(*s) for s in spec.get('products', [])]}
if CUDA:
    torch.cuda.empty_cache()
if not a.no_attention:
    out['attention'] = [attention(e) for e in spec.get('attention', [])]
print(json.dumps(out))
