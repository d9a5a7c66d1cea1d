#!/usr/bin/python3
"""PyTorch peer for bench/qwen2.js (bench only, never a test dependency).

A Qwen2 backbone (transformers' eager Qwen2 layer written out: RMSNorm in fp32, q/k/v with
biases, rotate-half RoPE, grouped-query attention with a causal mask and fp32 softmax,
SwiGLU MLP) with PEFT-style LoRA (W x + b + (alpha/r) B A x) on the seven linear layers,
learnable action queries and the action head, on random weights of the given shapes, trained
with the seed's per-tensor CRaFT loop: action and retention losses from one forward, the
anchor features from a no-grad forward with the anchor LoRA weights and queries switched in,
g_act and g_ret by two autograd passes, then per tensor dot, `if dot < 0` (a host sync),
projection, g = g_act' + lambda g_ret, torch.optim.AdamW, the dual update.
Prints one JSON line: seconds per CRaFT step and per baseline step.
--device cuda[:N] runs it on a GPU (fp32 with TF32 off, unless --autocast bf16: the forward
passes under torch.autocast('cuda', dtype=torch.bfloat16), as the seed trains in bf16, the
per-tensor loop and AdamW on the fp32 gradients), reporting torch.cuda.max_memory_allocated and
max_memory_reserved over the run (weights included). --attention sdpa: the causal attention by
F.scaled_dot_product_attention (transformers' default Qwen2 attention) instead of the eager
matmul-softmax-matmul. Exit 2 with a one-line reason when the device or a feature is missing.
"""
import argparse
import json
import contextlib
import math
import sys
import time

import torch
import torch.nn.functional as Fn

p = argparse.ArgumentParser()
p.add_argument('--batch', type=int, default=4)
p.add_argument('--steps', type=int, default=3)
p.add_argument('--reps', type=int, default=3)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--device', default='cpu')
p.add_argument('--layers', type=int, default=4)
p.add_argument('--width', type=int, default=896)
p.add_argument('--heads', type=int, default=14)
p.add_argument('--kv-heads', type=int, default=2)
p.add_argument('--mlp', type=int, default=4864)
p.add_argument('--vocab', type=int, default=1024)
p.add_argument('--rank', type=int, default=64)
p.add_argument('--alpha', type=float, default=128.0)
p.add_argument('--prefix', type=int, default=48)
p.add_argument('--prompt', type=int, default=8)
p.add_argument('--queries', type=int, default=8)
p.add_argument('--action-dims', type=int, default=7)
p.add_argument('--head-width', type=int, default=256)
p.add_argument('--baseline', action='store_true', help='also time the baseline step')
p.add_argument('--autocast', choices=['off', 'bf16'], default='off', help='bf16: forward passes under torch.autocast bf16')
p.add_argument('--attention', choices=['eager', 'sdpa'], default='eager')
a = p.parse_args()
if a.device.startswith('cuda') and not torch.cuda.is_available():
    print(f'bench/qwen2_torch.py: torch {torch.__version__} sees no CUDA device; nothing measured', file=sys.stderr)
    sys.exit(2)
if a.attention == 'sdpa' and not hasattr(Fn, 'scaled_dot_product_attention'):
    print(f'bench/qwen2_torch.py: torch {torch.__version__} has no F.scaled_dot_product_attention (--attention sdpa needs torch >= 2.0)', file=sys.stderr)
    sys.exit(2)
torch.set_num_threads(a.threads)
torch.manual_seed(0)
DEV = torch.device(a.device)
CUDA = DEV.type == 'cuda'
if CUDA:
    # fp32 as craftgrad computes it: no TF32 tensor-core products.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_default_tensor_type(torch.cuda.FloatTensor)

D, L, NH, KVH, I, R = a.width, a.layers, a.heads, a.kv_heads, a.mlp, a.rank
HD = D // NH
P, S, Q, A, H = a.prefix, a.prompt, a.queries, a.action_dims, a.head_width
T = P + S + Q
SCALE = a.alpha / R
EPS, THETA = 1e-6, 1000000.0
M_BRIDGE = (L + 1) // 2


def frozen(*shape, scale):
    return (torch.rand(*shape, device=DEV) * 2 - 1) * scale


class LoraLinear(torch.nn.Module):
    def __init__(self, inp, out, bias):
        super().__init__()
        self.w = frozen(out, inp, scale=1 / math.sqrt(inp))
        self.b = frozen(out, scale=0.02) if bias else None
        self.A = torch.nn.Parameter(frozen(R, inp, scale=1 / math.sqrt(inp)))
        self.B = torch.nn.Parameter(0.01 * torch.randn(out, R, device=DEV))  # mid-training: B != 0

    def forward(self, x):
        return Fn.linear(x, self.w, self.b) + SCALE * Fn.linear(Fn.linear(x, self.A), self.B)


def rms(x, w):
    v = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(v + EPS))


inv_freq = 1.0 / (THETA ** (torch.arange(0, HD, 2, dtype=torch.float32, device=DEV) / HD))
ang = torch.outer(torch.arange(T, dtype=torch.float32, device=DEV), inv_freq)
emb = torch.cat([ang, ang], dim=-1)
COS, SIN = emb.cos(), emb.sin()
MASK = torch.full((T, T), float('-inf'), device=DEV).triu(1)


def rot(x):
    return torch.cat([-x[..., HD // 2:], x[..., :HD // 2]], dim=-1)


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1 = 1 + frozen(D, scale=0.05)
        self.n2 = 1 + frozen(D, scale=0.05)
        self.q = LoraLinear(D, NH * HD, True)
        self.k = LoraLinear(D, KVH * HD, True)
        self.v = LoraLinear(D, KVH * HD, True)
        self.o = LoraLinear(NH * HD, D, False)
        self.gate = LoraLinear(D, I, False)
        self.up = LoraLinear(D, I, False)
        self.down = LoraLinear(I, D, False)

    def forward(self, x):
        B = x.shape[0]
        y = rms(x, self.n1)
        q = self.q(y).view(B, T, NH, HD).transpose(1, 2)
        k = self.k(y).view(B, T, KVH, HD).transpose(1, 2)
        v = self.v(y).view(B, T, KVH, HD).transpose(1, 2)
        q = q * COS + rot(q) * SIN
        k = k * COS + rot(k) * SIN
        k = k.repeat_interleave(NH // KVH, dim=1)
        v = v.repeat_interleave(NH // KVH, dim=1)
        if a.attention == 'sdpa':
            att = Fn.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(HD) + MASK
            att = torch.matmul(torch.softmax(s, dim=-1, dtype=torch.float32), v)
        x = x + self.o(att.transpose(1, 2).reshape(B, T, NH * HD))
        y = rms(x, self.n2)
        return x + self.down(Fn.silu(self.gate(y)) * self.up(y))


class Policy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = frozen(a.vocab, D, scale=0.05)
        self.layers = torch.nn.ModuleList([Layer() for _ in range(L)])
        self.norm = 1 + frozen(D, scale=0.05)
        self.queries = torch.nn.Parameter(0.02 * torch.randn(Q, D, device=DEV))
        self.fc1 = torch.nn.Linear(D, H)
        self.fc2 = torch.nn.Linear(H, A)

    def forward(self, prefix, ids):
        B = prefix.shape[0]
        h = torch.cat([prefix, self.embed[ids], self.queries.expand(B, Q, D)], dim=1)
        raw = None
        for l, layer in enumerate(self.layers):
            h = layer(h)
            if l + 1 == M_BRIDGE:
                raw = h[:, :P].mean(dim=1)  # C_R: hidden_states[m] at the prefix
        hn = rms(h, self.norm)
        aq = hn[:, T - Q:]
        f = torch.cat([raw, aq.mean(dim=1)], dim=1)  # concat(pool C_R, pool C_AQ)
        out = self.fc2(Fn.gelu(self.fc1(aq), approximate='tanh'))  # query i -> step i
        return out.reshape(B, Q * A), f


model = Policy()
params = [t for t in model.parameters()]
switched = [t for n, t in model.named_parameters() if n.endswith('.A') or n.endswith('.B') or n == 'queries']
anchor = [t.detach().clone() for t in switched]
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
prefix = torch.randn(a.batch, P, D, device=DEV)
ids = torch.randint(0, a.vocab, (a.batch, S), device=DEV)
y = torch.randn(a.batch, Q * A, device=DEV)
lam = 0.05


def autocast():
    """The forward's precision: torch.autocast bf16 on the device's type with --autocast bf16."""
    if a.autocast == 'bf16':
        return torch.autocast(DEV.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def craft_step():
    global lam
    with autocast():
        out, f = model(prefix, ids)
        act_loss = Fn.l1_loss(out.float(), y)
    with torch.no_grad(), autocast():  # online weight switching: the anchor LoRA weights and queries in, then back
        saved = [t.detach().clone() for t in switched]
        for t, s in zip(switched, anchor):
            t.data.copy_(s)
        _, f_anchor = model(prefix, ids)
        for t, s in zip(switched, saved):
            t.data.copy_(s)
    ret_loss = Fn.mse_loss(f.float(), f_anchor.float())
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
    with autocast():
        out, _ = model(prefix, ids)
        loss = Fn.l1_loss(out.float(), y)
    loss.backward()
    opt.step()


def sync():
    if CUDA:
        torch.cuda.synchronize()


def timed(fn):
    fn()
    sync()
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / a.steps)
    return min(times)  # best of reps: the machine may be shared, interference only adds time


with open('/proc/self/maps') as maps:
    libs = sorted({l.split()[-1] for l in maps if 'blas' in l.lower() and '/' in l})
out = {'version': torch.__version__, 'blas': ', '.join(libs) or '?', 'threads': torch.get_num_threads(), 'craft_s': timed(craft_step)}
if a.baseline:
    out['baseline_s'] = timed(baseline_step)
out['autocast'] = a.autocast
out['attention'] = a.attention
if CUDA:
    out['device'] = torch.cuda.get_device_name(DEV)
    out['peak_bytes'] = torch.cuda.max_memory_allocated(DEV)
    out['peak_reserved_bytes'] = torch.cuda.max_memory_reserved(DEV)
print(json.dumps(out))
