#!/usr/bin/python3
"""PyTorch peer baseline for bench/model.js (bench only, never a test dependency).

The same AdapterPolicy (ARCHITECTURE.md §4) in fp32 on the CPU (or, with --device cuda, on the
GPU: bench/model.js --device cuda, the larger configuration via --tokens/--width/...), trained with the seed's
per-tensor CRaFT loop (ARCHITECTURE.md §1): g_act and g_ret by two autograd passes, the anchor
features by a no-grad forward with the anchor LoRA weights switched in, then per tensor
dot/norm, `if dot < 0` (a host sync), projection, out = a' + lambda*r, AdamW, dual update.
Prints one JSON line: seconds per CRaFT step and per baseline step (on a GPU also the
device's name).
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as Fn

p = argparse.ArgumentParser()
p.add_argument('--batch', type=int, default=32)
p.add_argument('--steps', type=int, default=20)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--device', default='cpu')
p.add_argument('--tokens', type=int, default=16)
p.add_argument('--width', type=int, default=256)
p.add_argument('--blocks', type=int, default=4)
p.add_argument('--rank', type=int, default=16)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
DEV = torch.device(a.device)
CUDA = DEV.type == 'cuda'
if CUDA:
    # fp32 as craftgrad computes it: no TF32 tensor-core products.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_default_device(DEV)

T, D, L, R, ALPHA, H, K, A = a.tokens, a.width, a.blocks, a.rank, 32.0, 256, 8, 7
M_BRIDGE = L // 2
S = ALPHA / R


class Policy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.W = [torch.randn(D, D) * (0.5 / math.sqrt(D)) for _ in range(L)]
        self.b = [torch.randn(D) * 0.02 for _ in range(L)]
        self.lora_A = torch.nn.ParameterList([torch.nn.Parameter(torch.empty(R, D).uniform_(-1 / math.sqrt(D), 1 / math.sqrt(D))) for _ in range(L)])
        self.lora_B = torch.nn.ParameterList([torch.nn.Parameter(0.01 * torch.randn(D, R)) for _ in range(L)])
        self.fc1 = torch.nn.Linear(2 * D, H)
        self.fc2 = torch.nn.Linear(H, K * A)

    def features(self, x):
        h = x
        raw = None
        for l in range(L):
            z = Fn.linear(h, self.W[l], self.b[l]) + S * Fn.linear(Fn.linear(h, self.lora_A[l]), self.lora_B[l])
            h = h + Fn.gelu(z, approximate='tanh')
            if l + 1 == M_BRIDGE:
                raw = h.mean(dim=1)
        return torch.cat([raw, h.mean(dim=1)], dim=1)

    def head(self, f):
        return self.fc2(Fn.gelu(self.fc1(f), approximate='tanh'))


model = Policy()
params = list(model.parameters())
lora = list(model.lora_A) + list(model.lora_B)
anchor = [t.detach().clone() for t in lora]
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
x = torch.randn(a.batch, T, D)
y = torch.randn(a.batch, K * A)
lam = 0.05


def craft_step():
    global lam
    f = model.features(x)
    act_loss = Fn.l1_loss(model.head(f), y)
    with torch.no_grad():  # online weight switching: swap the anchor LoRA weights in, then back
        saved = [t.detach().clone() for t in lora]
        for t, s in zip(lora, anchor):
            t.data.copy_(s)
        f_anchor = model.features(x)
        for t, s in zip(lora, saved):
            t.data.copy_(s)
    ret_loss = Fn.mse_loss(f, f_anchor)
    g_act = torch.autograd.grad(act_loss, params, retain_graph=True, allow_unused=True)
    g_ret = torch.autograd.grad(ret_loss, params, allow_unused=True)
    for prm, ga, gr in zip(params, g_act, g_ret):
        ga = torch.zeros_like(prm) if ga is None else ga
        gr = torch.zeros_like(prm) if gr is None else gr
        dot = torch.sum(ga * gr)
        if dot < 0:  # host synchronisation per tensor, as in the seed
            ga = ga - dot / (torch.sum(gr * gr) + 1e-8) * gr
        prm.grad = ga + lam * gr
    opt.step()
    lam = max(0.0, lam + 0.01 * (ret_loss.item() - 1e-3))


def baseline_step():
    opt.zero_grad(set_to_none=True)
    loss = Fn.l1_loss(model.head(model.features(x)), y)
    loss.backward()
    opt.step()


def sync():
    if CUDA:
        torch.cuda.synchronize()


def timed(fn):
    fn()
    sync()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / a.steps)
    return min(times)  # best of 5: the machine may be shared, interference only adds time


# Debian's torch calls the system libblas.so.3 (update-alternatives: reference BLAS or
# OpenBLAS); name the library actually mapped into this process.
with open('/proc/self/maps') as maps:
    libs = sorted({l.split()[-1] for l in maps if 'blas' in l.lower() and '/' in l})
blas = ', '.join(libs) or '?'
out = {'version': torch.__version__, 'blas': blas, 'threads': torch.get_num_threads(), 'craft_s': timed(craft_step), 'baseline_s': timed(baseline_step)}
if CUDA:
    out['device'] = torch.cuda.get_device_name(DEV)
print(json.dumps(out))
