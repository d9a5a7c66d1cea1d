#!/usr/bin/env python3
"""The PyTorch side of the GPU surgery benchmark (ARCHITECTURE.md §1, §3).

Times, on one GPU and the VLA-adapter-like layout of src/bench/layouts.ts:
  * the per-tensor loop a PyTorch user writes (the seed's loop): per tensor a dot
    product, a host synchronisation on `if dot < 0`, the projection, + lambda * r, and
    the global gradient norm at the end;
  * the HBM floor: a device-to-device copy (read + write bytes over time), from which
    the surgery's floor is 12 bytes per element (a and r read once, out written once).
craftgrad itself is timed by `npm run bench:surgery -- --device cuda` (node); this
script prints one JSON object on stdout so the two can be put side by side.

    python3 bench/surgery-cuda-torch.py [--reps 20] [--device cuda:0] [--sizes-json FILE]

Needs PyTorch with CUDA. Timing is by CUDA events around whole calls (including the
loop's host syncs), median of --reps runs after warm-up.
"""
import argparse
import json
import platform
import statistics
import sys
import time


def vla_adapter_layout():
    """The same sizes as vlaAdapterLayout() in src/bench/layouts.ts (484 tensors, ~114 M)."""
    hidden, inter, kv, rank, layers = 896, 4864, 128, 64, 24
    sizes = []

    def lora(in_dim, out_dim):
        sizes.extend([rank * in_dim, out_dim * rank])

    for _ in range(layers):
        lora(hidden, hidden)  # q
        lora(hidden, kv)  # k
        lora(hidden, kv)  # v
        lora(hidden, hidden)  # o
        lora(hidden, inter)  # gate
        lora(hidden, inter)  # up
        lora(inter, hidden)  # down
        sizes.extend([hidden * hidden] * 4)  # bridge attention q, k, v, o
        sizes.extend([hidden, hidden])  # norms
    sizes.extend([hidden * hidden, hidden, hidden * hidden, hidden])  # action head
    return sizes


def make_grads(torch, sizes, device, seed=1):
    """Separate tensors per parameter (as p.grad is); about half of them conflict."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    act, ret = [], []
    for i, n in enumerate(sizes):
        a = torch.randn(n, device=device, generator=g)
        r = 0.5 * torch.randn(n, device=device, generator=g)
        r.add_(a, alpha=(-0.7 if i % 2 == 0 else 0.7))
        act.append(a)
        ret.append(r)
    return act, ret


def torch_loop(torch, act, ret, lam, eps=1e-8, projection=True):
    """The seed's per-tensor loop, as a PyTorch user writes it."""
    combined = []
    num_conflicts = 0
    for g_act, g_ret in zip(act, ret):
        dot = torch.dot(g_act.flatten(), g_ret.flatten())
        if projection and dot < 0:  # host synchronisation, once per tensor
            num_conflicts += 1
            g_act = g_act - dot / (torch.dot(g_ret.flatten(), g_ret.flatten()) + eps) * g_ret
        combined.append(g_act + lam * g_ret)
    grad_norm = torch.norm(torch.stack([torch.norm(g) for g in combined]))
    return combined, num_conflicts / max(1, len(act)), grad_norm.item()


def time_cuda(torch, fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), min(times)


def copy_bandwidth(torch, elements, device, reps):
    """Device-to-device copy: (read + write bytes) / time, in GB/s."""
    src = torch.empty(elements, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    med, best = time_cuda(torch, lambda: dst.copy_(src), reps)
    del src, dst
    return 8.0 * elements / (med * 1e-3) / 1e9, 8.0 * elements / (best * 1e-3) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--lam", type=float, default=0.05)
    ap.add_argument("--sizes-json", help="a JSON array of tensor sizes (default: the VLA-adapter-like layout)")
    args = ap.parse_args()

    try:
        import torch
    except ImportError:
        print(json.dumps({"error": "PyTorch is not installed"}))
        return 2
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device visible to PyTorch"}))
        return 2

    device = torch.device(args.device)
    torch.cuda.set_device(device)
    sizes = json.load(open(args.sizes_json)) if args.sizes_json else vla_adapter_layout()
    total = sum(sizes)
    props = torch.cuda.get_device_properties(device)

    act, ret = make_grads(torch, sizes, device)
    loop_med, loop_best = time_cuda(torch, lambda: torch_loop(torch, act, ret, args.lam), args.reps)
    _, ratio, norm = torch_loop(torch, act, ret, args.lam)
    del act, ret
    torch.cuda.empty_cache()

    copy_same, copy_same_best = copy_bandwidth(torch, total, device, args.reps)
    copy_big, copy_big_best = copy_bandwidth(torch, max(total, 256 * 2**20), device, args.reps)
    copy_gbs = max(copy_same, copy_big)
    floor_ms = 12.0 * total / (copy_gbs * 1e9) * 1e3

    print(json.dumps({
        "benchmark": "surgery-cuda-torch",
        "date": time.strftime("%Y-%m-%d"),
        "gpu": props.name,
        "gpu_memory_bytes": props.total_memory,
        "compute_capability": f"{props.major}.{props.minor}",
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "python": platform.python_version(),
        "layout": {"name": "VLA-adapter-like" if not args.sizes_json else args.sizes_json,
                   "tensors": len(sizes), "elements": total},
        "reps": args.reps,
        "copy_GBps": {"same_size_median": copy_same, "same_size_best": copy_same_best,
                      "256M_median": copy_big, "256M_best": copy_big_best, "used": copy_gbs},
        "floor_ms": floor_ms,
        "torch_loop_ms": {"median": loop_med, "best": loop_best},
        "torch_loop_over_floor": loop_med / floor_ms,
        "torch_loop_conflict_ratio": ratio,
        "torch_loop_grad_norm": norm,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
