#!/usr/bin/python3
"""PyTorch peer for bench/vla.js (bench only, never a test dependency).

VLA-Adapter (docs/VLA-ADAPTER.md) in plain torch fp32 on random weights of the given shapes,
written out here (nothing imported from upstream, timm, transformers or PEFT):
- two timm ViT towers run to block depth-2 (patch-embed Conv2d, pos embed, DINOv2's cls and
  4 registers with no_embed_class, pre-norm blocks with LayerScale in the first tower, timm's
  non-fused attention path, GELU erf MLP), prefix tokens dropped, channels concatenated;
- PEFT LoRA (W x + b + (alpha/r) B A x) on every linear, the patch embed's as a Conv2d pair
  (A: Conv2d(3, r, p, stride p), B: Conv2d(r, D, 1));
- the fused projector fc1 -> GELU -> fc2 -> GELU -> fc3;
- the sequence [embed(BOS); vision; embed(prompt); action_queries] through Qwen2 layers as
  bench/qwen2_torch.py writes them (RMSNorm, q/k/v with biases, rotate-half RoPE, GQA, causal
  mask, SwiGLU), every hidden state kept, the final RMSNorm;
- the proprio projector (fc1, GELU, fc2) and the Pro head as upstream's MLPResNet /
  MLPResNetBlock_Pro compute it (LayerNorm1, fc1, ReLU; blocks of self/adapter/task attention
  with the interleaved RoPE and the tanh gate, o_proj, ffn = LayerNorm, Linear, ReLU;
  LayerNorm2, fc2), block i reading hidden_states[i+1]'s task rows [0, P) and action rows
  [T-Q-1, T-1); a fresh N(0, 0.02) input perturbation per call; the L1 loss;
- CRaFT's features (mean of hidden_states[m] over the vision tokens 1..P, mean of the final
  states over the queries, concatenated) and the anchor features from a no-grad forward of
  towers, projector and decoder with the anchor LoRA factors and queries switched in;
trained with the seed's per-tensor CRaFT loop: g_act and g_ret by two autograd passes, then
per tensor dot, `if dot < 0` (a host sync), projection, g = g_act' + lambda g_ret,
torch.optim.AdamW, the dual update. Prints one JSON line: seconds per CRaFT step.
--device cuda[:N] runs it on a GPU (every tensor made there: torch.set_default_device; fp32 with
TF32 off, unless --autocast bf16: the forward passes under torch.autocast('cuda',
dtype=torch.bfloat16), the per-tensor loop and AdamW on the fp32 gradients), reporting
torch.cuda.max_memory_allocated and max_memory_reserved over the run (weights included).
--attention sdpa: the towers' and the decoder's attention by F.scaled_dot_product_attention
(timm's fused path and transformers' default) instead of the eager form; the Pro head's gated
attention stays eager (SDPA has no gate). Exit 2 with a one-line reason when the device or a
feature is missing.
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
p.add_argument('--batch', type=int, default=2)
p.add_argument('--steps', type=int, default=2)
p.add_argument('--reps', type=int, default=3)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--dino-depth', type=int, default=5)
p.add_argument('--siglip-depth', type=int, default=5)
p.add_argument('--image', type=int, default=112)
p.add_argument('--views', type=int, default=2)
p.add_argument('--layers', type=int, default=4)
p.add_argument('--vocab', type=int, default=1024)
p.add_argument('--rank', type=int, default=32)
p.add_argument('--alpha', type=float, default=64.0)
p.add_argument('--prompt', type=int, default=16)
p.add_argument('--queries', type=int, default=64)
p.add_argument('--head-blocks', type=int, default=4)
p.add_argument('--chunk', type=int, default=8)
p.add_argument('--action-dims', type=int, default=7)
p.add_argument('--proprio', type=int, default=8)
p.add_argument('--count', action='store_true', help='print the trainable count and exit')
p.add_argument('--device', default='cpu')
p.add_argument('--autocast', choices=['off', 'bf16'], default='off', help='bf16: forward passes under torch.autocast bf16')
p.add_argument('--attention', choices=['eager', 'sdpa'], default='eager')
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
DEV = torch.device(a.device)
CUDA = DEV.type == 'cuda'
if CUDA:
    if not torch.cuda.is_available():
        print(f'bench/vla_torch.py: torch {torch.__version__} sees no CUDA device; nothing measured', file=sys.stderr)
        sys.exit(2)
    if not hasattr(torch, 'set_default_device'):
        print(f'bench/vla_torch.py: torch {torch.__version__} has no torch.set_default_device (--device cuda needs torch >= 2.0)', file=sys.stderr)
        sys.exit(2)
    torch.set_default_device(DEV)
    # fp32 as craftgrad computes it: no TF32 tensor-core products.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
if a.attention == 'sdpa' and not hasattr(Fn, 'scaled_dot_product_attention'):
    print(f'bench/vla_torch.py: torch {torch.__version__} has no F.scaled_dot_product_attention (--attention sdpa needs torch >= 2.0)', file=sys.stderr)
    sys.exit(2)

R, SCALE = a.rank, a.alpha / a.rank
PATCH = 14
GRID = a.image // PATCH
N = GRID * GRID
V = a.views
P = V * N                       # vision tokens per sample
D, L, NH, KVH, I = 896, a.layers, 14, 2, 4864
HD = D // NH
Q = a.queries
S = 1 + a.prompt + Q            # input ids: BOS, prompt, action placeholders
T = S + P
C, A, PD = a.chunk, a.action_dims, a.proprio
NB = a.head_blocks
HEAD_HEADS = 8
EPS, THETA = 1e-6, 1000000.0
M_BRIDGE = (L + 1) // 2


def frozen(*shape, scale):
    return (torch.rand(*shape) * 2 - 1) * scale


class LoraLinear(torch.nn.Module):
    def __init__(self, inp, out, bias=True):
        super().__init__()
        self.w = frozen(out, inp, scale=1 / math.sqrt(inp))
        self.b = frozen(out, scale=0.02) if bias else None
        self.A = torch.nn.Parameter(torch.randn(R, inp) / R)
        self.B = torch.nn.Parameter(0.01 * torch.randn(out, R))  # mid-training: B != 0

    def forward(self, x):
        return Fn.linear(x, self.w, self.b) + SCALE * Fn.linear(Fn.linear(x, self.A), self.B)


class LoraPatchEmbed(torch.nn.Module):
    """timm PatchEmbed's Conv2d(3, D, p, stride p) with PEFT's LoRA Conv2d pair."""

    def __init__(self, dim):
        super().__init__()
        fan = 3 * PATCH * PATCH
        self.w = frozen(dim, 3, PATCH, PATCH, scale=1 / math.sqrt(fan))
        self.b = frozen(dim, scale=0.02)
        self.A = torch.nn.Parameter(torch.randn(R, 3, PATCH, PATCH) / R)
        self.B = torch.nn.Parameter(0.01 * torch.randn(dim, R, 1, 1))

    def forward(self, x):
        y = Fn.conv2d(x, self.w, self.b, stride=PATCH) + SCALE * Fn.conv2d(Fn.conv2d(x, self.A, stride=PATCH), self.B)
        return y.flatten(2).transpose(1, 2)  # (n, N, D), row-major over the grid


class VitBlock(torch.nn.Module):
    """timm Block (vision_transformer.py:114-161), Attention's non-fused path (torch 1.13 has no SDPA)."""

    def __init__(self, dim, heads, mlp, layer_scale):
        super().__init__()
        self.dim, self.heads, self.hd = dim, heads, dim // heads
        self.n1w, self.n1b = 1 + frozen(dim, scale=0.05), frozen(dim, scale=0.02)
        self.n2w, self.n2b = 1 + frozen(dim, scale=0.05), frozen(dim, scale=0.02)
        self.qkv = LoraLinear(dim, 3 * dim)
        self.proj = LoraLinear(dim, dim)
        self.fc1 = LoraLinear(dim, mlp)
        self.fc2 = LoraLinear(mlp, dim)
        self.ls1 = frozen(dim, scale=0.1) if layer_scale else None
        self.ls2 = frozen(dim, scale=0.1) if layer_scale else None

    def attn(self, x):
        n, t, _ = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if a.attention == 'sdpa':
            return self.proj(Fn.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, self.dim))
        q = q * self.hd ** -0.5
        att = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(n, t, self.dim))

    def forward(self, x):
        y = self.attn(Fn.layer_norm(x, (self.dim,), self.n1w, self.n1b, 1e-6))
        x = x + (y * self.ls1 if self.ls1 is not None else y)
        y = self.fc2(Fn.gelu(self.fc1(Fn.layer_norm(x, (self.dim,), self.n2w, self.n2b, 1e-6))))
        return x + (y * self.ls2 if self.ls2 is not None else y)


class Tower(torch.nn.Module):
    """A timm VisionTransformer run to block depth-2 (get_intermediate_layers), prefix dropped, no norm."""

    def __init__(self, dim, depth, heads, mlp, prefix, layer_scale):
        super().__init__()
        self.dim, self.prefix = dim, prefix
        self.patch = LoraPatchEmbed(dim)
        self.pos = frozen(1, N, dim, scale=0.02)
        self.pre = frozen(1, prefix, dim, scale=0.02) if prefix else None  # [cls; registers]
        self.blocks = torch.nn.ModuleList([VitBlock(dim, heads, mlp, layer_scale) for _ in range(depth - 1)])

    def forward(self, img):
        x = self.patch(img) + self.pos  # no_embed_class: pos over the patches only
        if self.pre is not None:
            x = torch.cat([self.pre.expand(x.shape[0], -1, -1), x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return x[:, self.prefix:]


def rms(x, w):
    v = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(v + EPS))


inv_freq = 1.0 / (THETA ** (torch.arange(0, HD, 2, dtype=torch.float32) / HD))
ang = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
emb = torch.cat([ang, ang], dim=-1)
COS, SIN = emb.cos(), emb.sin()
MASK = torch.full((T, T), float('-inf')).triu(1)


def rot(x):
    return torch.cat([-x[..., HD // 2:], x[..., :HD // 2]], dim=-1)


class Qwen2Layer(torch.nn.Module):
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


# ---- the Pro head (action_heads.py:85-164, 287-410) ----
HHD = D // HEAD_HEADS
HEAD_INV = 1.0 / (10000 ** (torch.arange(0, HHD, 2).float() / HHD))


def head_rope(n):
    t = torch.arange(n, dtype=torch.float32)
    freqs = torch.einsum('i,j->ij', t, HEAD_INV)
    e = torch.cat([freqs, freqs], dim=-1)
    return e.cos(), e.sin()


HEAD_ROPE = {n: head_rope(n) for n in (C, Q + 1, P)}


def apply_rope(x, cos, sin):
    x1, x2 = x[..., ::2], x[..., 1::2]
    r = torch.stack((-x2, x1), dim=-1).reshape_as(x)
    return x * cos + r * sin


class ProBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ffn = torch.nn.Sequential(torch.nn.LayerNorm(D), torch.nn.Linear(D, D), torch.nn.ReLU())
        self.q_proj = torch.nn.Linear(D, D)
        self.k_self, self.v_self = torch.nn.Linear(D, D), torch.nn.Linear(D, D)
        self.k_adapter, self.v_adapter = torch.nn.Linear(D, D), torch.nn.Linear(D, D)
        self.k_task, self.v_task = torch.nn.Linear(D, D), torch.nn.Linear(D, D)
        self.o_proj = torch.nn.Linear(D, D)
        self.gating_factor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, h_a, h_t, p):
        ratio_g = torch.tanh(self.gating_factor)
        h_adapter = torch.cat((h_a, p), dim=1)
        B, Tq, Cd = x.shape
        Ka, Kt = h_adapter.size(1), h_t.size(1)

        def heads(t, n):
            return t.view(B, n, HEAD_HEADS, HHD).transpose(1, 2)

        q = heads(self.q_proj(x), Tq)
        k_tok, v_tok = heads(self.k_self(x), Tq), heads(self.v_self(x), Tq)
        k_ad, v_ad = heads(self.k_adapter(h_adapter), Ka), heads(self.v_adapter(h_adapter), Ka)
        k_t, v_t = heads(self.k_task(h_t), Kt), heads(self.v_task(h_t), Kt)
        cm, sm = HEAD_ROPE[Tq]
        q, k_tok = apply_rope(q, cm, sm), apply_rope(k_tok, cm, sm)
        k_ad = apply_rope(k_ad, *HEAD_ROPE[Ka])
        k_t = apply_rope(k_t, *HEAD_ROPE[Kt])
        scores = torch.cat([q @ k_tok.transpose(-2, -1), q @ k_ad.transpose(-2, -1),
                            (q @ k_t.transpose(-2, -1)) * ratio_g], dim=-1) / math.sqrt(HHD)
        w = torch.softmax(scores, dim=-1)
        out = (w @ torch.cat([v_tok, v_ad, v_t], dim=2)).transpose(1, 2).contiguous().view(B, Tq, Cd)
        return self.ffn(self.o_proj(out) + x)


class ProHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer_norm1 = torch.nn.LayerNorm(A * D)
        self.fc1 = torch.nn.Linear(A * D, D)
        self.blocks = torch.nn.ModuleList([ProBlock() for _ in range(NB)])
        self.layer_norm2 = torch.nn.LayerNorm(D)
        self.fc2 = torch.nn.Linear(D, A)

    def forward(self, B, h_a, h_t, p):
        x = torch.zeros(B, C, A * D) + torch.randn(C, A * D) * 0.02  # learnable_random_perturbations
        x = torch.relu(self.fc1(self.layer_norm1(x)))
        for i, blk in enumerate(self.blocks):
            x = blk(x, h_a[i + 1], h_t[i + 1], p)
        return self.fc2(self.layer_norm2(x))


class Policy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dino = Tower(1024, a.dino_depth, 16, 4096, 5, True)
        self.siglip = Tower(1152, a.siglip_depth, 16, int(1152 * 3.7362), 0, False)
        self.proj1 = LoraLinear(1024 + 1152, 8704)
        self.proj2 = LoraLinear(8704, D)
        self.proj3 = LoraLinear(D, D)
        self.embed = frozen(a.vocab, D, scale=0.05)
        self.layers = torch.nn.ModuleList([Qwen2Layer() for _ in range(L)])
        self.norm = 1 + frozen(D, scale=0.05)
        self.queries = torch.nn.Parameter(0.02 * torch.randn(Q, D))
        self.pfc1 = torch.nn.Linear(PD, D)
        self.pfc2 = torch.nn.Linear(D, D)
        self.head = ProHead()

    def backbone(self, pixels, ids):
        """Towers, projector, decoder: every hidden state (hs[L] = the final norm) and the features."""
        B = pixels.shape[0]
        img = pixels.reshape(B * V, 6, a.image, a.image)
        fd = self.dino(img[:, :3]).reshape(B, P, -1)    # [view 0 patches; view 1 patches]
        fs = self.siglip(img[:, 3:]).reshape(B, P, -1)
        f = torch.cat([fd, fs], dim=2)
        vis = self.proj3(Fn.gelu(self.proj2(Fn.gelu(self.proj1(f)))))
        h = torch.cat([self.embed[ids[:, :1]], vis, self.embed[ids[:, 1:S - Q]], self.queries.expand(B, Q, D)], dim=1)
        hs = [h]
        for layer in self.layers:
            h = layer(h)
            hs.append(h)
        hs[L] = rms(h, self.norm)
        feat = torch.cat([hs[M_BRIDGE][:, 1:1 + P].mean(dim=1), hs[L][:, T - Q:].mean(dim=1)], dim=1)
        return hs, feat

    def forward(self, pixels, ids, proprio):
        hs, feat = self.backbone(pixels, ids)
        p = self.pfc2(Fn.gelu(self.pfc1(proprio))).unsqueeze(1)
        h_t = [x[:, :P] for x in hs]             # BOS + the first P-1 vision tokens (upstream's slice)
        h_a = [x[:, T - Q - 1:T - 1] for x in hs]  # the state before each action query
        return self.head(pixels.shape[0], h_a, h_t, p), feat


model = Policy()
params = list(model.parameters())
switched = [t for n, t in model.named_parameters() if n.endswith('.A') or n.endswith('.B') or n == 'queries']
anchor = [t.detach().clone() for t in switched]
if a.count:
    print(json.dumps({'trainable': sum(t.numel() for t in params), 'tensors': len(params)}))
    raise SystemExit(0)
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
pixels = torch.randn(a.batch, V * 6, a.image, a.image)
ids = torch.randint(0, a.vocab, (a.batch, S))
proprio = torch.randn(a.batch, PD)
y = torch.rand(a.batch, C, A) * 2 - 1
lam = 0.05


def autocast():
    """The forward's precision: torch.autocast bf16 on the device's type with --autocast bf16."""
    if a.autocast == 'bf16':
        return torch.autocast(DEV.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def craft_step():
    global lam
    with autocast():
        out, f = model(pixels, ids, proprio)
        act_loss = Fn.l1_loss(out.float(), y)
    with torch.no_grad(), autocast():  # online weight switching: the anchor LoRA weights and queries in, then back
        saved = [t.detach().clone() for t in switched]
        for t, s in zip(switched, anchor):
            t.data.copy_(s)
        _, f_anchor = model.backbone(pixels, ids)
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


def sync():
    if CUDA:
        torch.cuda.synchronize(DEV)


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
out = {'version': torch.__version__, 'blas': ', '.join(libs) or '?', 'threads': torch.get_num_threads(),
       'trainable': sum(t.numel() for t in params), 'craft_s': timed(craft_step), 'autocast': a.autocast, 'attention': a.attention}
if CUDA:
    out['device'] = torch.cuda.get_device_name(DEV)
    out['peak_bytes'] = torch.cuda.max_memory_allocated(DEV)
    out['peak_reserved_bytes'] = torch.cuda.max_memory_reserved(DEV)
print(json.dumps(out))
