#!/usr/bin/env python3
"""A float64 torch reference of VLA-Adapter's training step, with CRaFT's retention loss.

Written from the equations in docs/VLA-ADAPTER.md (each piece cites the upstream lines it
follows), without importing upstream, timm, transformers or PEFT: plain torch 1.13.

    python3 vla_reference.py --model DIR --batch FILE --lora FILE [--anchor FILE] --options JSON --out FILE

  --model    a VLA-Adapter checkpoint directory: config.json (with `craftgrad_tiny_towers` for tiny
             towers; without it the timm ids give the released shapes), model.safetensors,
             preprocessor_config.json, action_head--<step>_checkpoint.pt,
             proprio_projector--<step>_checkpoint.pt (the highest step when several; `module.` stripped).
  --batch    safetensors: images u8 (N, V, H, W, 3), proprio (N, PROPRIO), actions (N, C*A),
             input_ids (N, S) = [bos, prompt ids, Q placeholder ids]; optionally head_noise (C, A*D).
  --lora     safetensors of the current state: PEFT-named LoRA factors
             `base_model.model.<module>.lora_A.weight` / `.lora_B.weight` (Linear A (r, in), B (out, r);
             patch_embed.proj Conv2d A (r, 3, p, p), B (D, r, 1, 1)); optionally `action_queries.weight`,
             `action_head.<name>` and `proprio_projector.<name>` (names without `module.`) that replace
             the directory's values.
  --anchor   safetensors of the anchor: LoRA factors as --lora and optionally `action_queries.weight`
             (default: the model's). Not needed in mode "baseline".
  --options  a JSON object or a path to one:
               rank (default: from the factors), alpha (default 2*rank; LoRA scale alpha/rank),
               head_noise: null | "batch" (the batch's head_noise) | a safetensors path (tensor head_noise),
               use_proprio (true), views (default all of the batch's), bridge_layer (default (L+1)//2;
               an index into hs[0..L], negative counts from the end), span "vision" | "vision+prompt",
               pooling "mean" | "max", anchor "concat" | "aq_only" | "raw_only", mode "craft" | "baseline",
               out_dtype "F64" (default) | "F32", hidden_states (false: also write hs).
  --out      safetensors written:
               action_loss (), predicted_actions (N, C, A), and in mode craft: retention_loss (),
               features (N, F), anchor_features (N, F);
               action_grad/<name> and (craft) retention_grad/<name> for every trainable tensor <name>:
                 the LoRA factors on the loss path (PEFT names), action_queries.weight,
                 proprio_projector.{fc1,fc2}.{weight,bias} (when use_proprio),
                 action_head.<state-dict name without `module.`> (every head parameter but the
                 film_gen ones, which no forward reads);
               a gradient is written as zeros where that loss does not depend on the tensor;
               hidden_states (L+1, N, T, D) when asked;
               __metadata__: "reference" (a JSON string: resolved options, sizes, the LoRA factors of
               the file that are off the loss path and so have no gradient).

Precision: everything in float64 except the pixels, which are computed as upstream does them
(uint8 / 255 and TVF.normalize in float32) and then cast to float64. RoPE tables (the LLM's and the
head's) are computed in float64 (upstream computes inv_freq in float32).
"""
import argparse
import glob
import json
import math
import os
import re
import struct
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

F64 = torch.float64

# timm ids -> the released shapes (vision_transformer.py v0.9.10 :2456-2463, :2545-2550)
KNOWN_TOWERS = {
    "vit_large_patch14_reg4_dinov2.lvd142m": dict(embed_dim=1024, depth=24, num_heads=16, mlp_hidden=4096,
                                                  patch_size=14, reg_tokens=4, class_token=True, layer_scale=True),
    "vit_so400m_patch14_siglip_224": dict(embed_dim=1152, depth=27, num_heads=16, mlp_hidden=int(1152 * 3.7362),
                                          patch_size=14, reg_tokens=0, class_token=False, layer_scale=False),
}

TOWER_PREFIXES = ("vision_backbone.featurizer.", "vision_backbone.fused_featurizer.")
HEAD_NUM_HEADS = 8          # MLPResNetBlock_Pro(dim, num_heads=8) (action_heads.py:290)
TOWER_LN_EPS = 1e-6         # timm partial(nn.LayerNorm, eps=1e-6) (vision_transformer.py:454)
HEAD_LN_EPS = 1e-5          # nn.LayerNorm default (action_heads.py:99, :294)


# ---------------------------------------------------------------------------------------------
# safetensors by hand

_NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "U8": "u1",
       "I8": "i1", "BOOL": "?"}


def read_safetensors(path):
    """-> (OrderedDict name -> torch tensor in its stored dtype (BF16 as bfloat16), metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = OrderedDict()
    for name, h in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = h["data_offsets"]
        buf = raw[base + a: base + b]
        shape = tuple(h["shape"])
        if h["dtype"] == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            t = torch.from_numpy(bits.view(np.float32).reshape(shape).copy()).to(torch.bfloat16)
        else:
            t = torch.from_numpy(np.frombuffer(buf, dtype=_NP[h["dtype"]]).reshape(shape).copy())
        out[name] = t
    return out, meta


_ST = {torch.float64: "F64", torch.float32: "F32", torch.int32: "I32", torch.int64: "I64", torch.uint8: "U8"}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, at = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        arr = t.numpy()
        b = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _ST[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def strip_ddp(sd):
    """finetune.py remove_ddp_in_checkpoint (:132-150)."""
    return OrderedDict((k[7:] if k.startswith("module.") else k, v) for k, v in sd.items())


# ---------------------------------------------------------------------------------------------
# building blocks

def linear(x, W, b=None, lora=None):
    """nn.Linear plus PEFT's LoRA: y = x Wᵀ + b + scale · (x Aᵀ) Bᵀ (peft lora/layer.py Linear.forward)."""
    y = x @ W.transpose(0, 1)
    if b is not None:
        y = y + b
    if lora is not None:
        A, B, scale = lora
        y = y + ((x @ A.transpose(0, 1)) @ B.transpose(0, 1)) * scale
    return y


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu(x):  # nn.GELU(), approximate='none': the erf form
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def rms_norm(x, w, eps):  # Qwen2RMSNorm
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def softmax(s):
    s = s - s.max(-1, keepdim=True).values.detach()
    e = torch.exp(s)
    return e / e.sum(-1, keepdim=True)


# ---------------------------------------------------------------------------------------------

class VlaReference:
    def __init__(self, model_dir):
        self.dir = model_dir
        with open(os.path.join(model_dir, "config.json")) as f:
            self.config = json.load(f)
        cfg = self.config
        assert cfg.get("use_fused_vision_backbone") is True, "only the fused DINOv2 + SigLIP backbone"
        tiny = cfg.get("craftgrad_tiny_towers")
        if tiny is not None:
            self.towers = [dict(t) for t in tiny]
        else:
            self.towers = [dict(KNOWN_TOWERS[i]) for i in cfg["timm_model_ids"]]
        assert all(s == cfg["image_sizes"][0] for s in cfg["image_sizes"])
        self.image_size = cfg["image_sizes"][0]
        for t in self.towers:
            assert (t["patch_size"] == self.towers[0]["patch_size"]) and self.image_size % t["patch_size"] == 0
            t["grid"] = self.image_size // t["patch_size"]
            t["prefix"] = (1 if t["class_token"] else 0) + t["reg_tokens"]
        self.patches = self.towers[0]["grid"] ** 2            # N per view
        tc = cfg["text_config"]
        self.D = tc["hidden_size"]
        self.L = tc["num_hidden_layers"]
        self.H = tc["num_attention_heads"]
        self.KV = tc.get("num_key_value_heads", self.H)
        self.hd = self.D // self.H
        self.rope_theta = float(tc.get("rope_theta", 10000.0))
        self.rms_eps = float(tc.get("rms_norm_eps", 1e-6))

        files = sorted(glob.glob(os.path.join(model_dir, "model*.safetensors")))
        assert files, f"no model*.safetensors in {model_dir}"
        self.w = OrderedDict()
        for p in files:
            t, _ = read_safetensors(p)
            self.w.update(t)
        self.w = OrderedDict((k, v.to(F64)) for k, v in self.w.items())

        with open(os.path.join(model_dir, "preprocessor_config.json")) as f:
            pre = json.load(f)
        self.normalize = [(p["mean"], p["std"]) for p in pre["tvf_normalize_params"]]

        self.head = self._load_pt("action_head")
        self.proprio = self._load_pt("proprio_projector")
        self.NB = len({k.split(".")[2] for k in self.head if k.startswith("model.mlp_resnet_blocks.")})
        assert self.NB <= self.L, "block i reads hs[i+1]: at most L blocks"
        self.A = self.head["model.fc2.weight"].shape[0]
        self.Q = self.w["action_queries.weight"].shape[0]

    def _load_pt(self, name):
        paths = glob.glob(os.path.join(self.dir, f"{name}--*_checkpoint.pt"))
        assert paths, f"no {name}--*_checkpoint.pt in {self.dir}"

        def step(p):
            m = re.search(r"--(\d+)_checkpoint\.pt$", p)
            return int(m.group(1)) if m else -1
        sd = torch.load(max(paths, key=step), map_location="cpu", weights_only=True)
        return OrderedDict((k, v.to(F64)) for k, v in strip_ddp(sd).items())

    # ---- names ----------------------------------------------------------------------------

    def lora_on_path(self, module):
        """Whether a LoRA on `module` (a module name in the VLA) is on the loss path (docs: What trains)."""
        for prefix, t in zip(TOWER_PREFIXES, self.towers):
            if module.startswith(prefix):
                rest = module[len(prefix):]
                if rest == "patch_embed.proj":
                    return True
                m = re.match(r"blocks\.(\d+)\.", rest)
                return bool(m) and int(m.group(1)) <= t["depth"] - 2
        if module.startswith("projector."):
            return True
        return module.startswith("language_model.model.layers.")

    def split_lora(self, tensors):
        """PEFT-named factors -> ({module: (A, B)} on the path, [names off the path], rank)."""
        mods, off, ranks = {}, [], set()
        for k, v in tensors.items():
            m = re.match(r"^base_model\.model\.(.+)\.lora_([AB])\.weight$", k)
            if not m:
                continue
            mod, ab = m.group(1), m.group(2)
            if not self.lora_on_path(mod):
                off.append(k)
                continue
            mods.setdefault(mod, {})[ab] = k
            if ab == "A":
                ranks.add(v.shape[0])
        for mod, d in mods.items():
            assert "A" in d and "B" in d, f"{mod}: lora_A and lora_B must come together"
        assert len(ranks) <= 1, f"several LoRA ranks: {sorted(ranks)}"
        return {m: (d["A"], d["B"]) for m, d in mods.items()}, sorted(off), (ranks.pop() if ranks else None)

    def trainables(self, lora_tensors, use_proprio):
        """OrderedDict output-name -> float64 tensor (a fresh copy): the current state, in a fixed order."""
        mods, _, _ = self.split_lora(lora_tensors)
        st = OrderedDict()
        for mod in sorted(mods):
            a, b = mods[mod]
            st[a] = lora_tensors[a].to(F64).clone()
            st[b] = lora_tensors[b].to(F64).clone()
        st["action_queries.weight"] = lora_tensors.get("action_queries.weight", self.w["action_queries.weight"]).to(F64).clone()
        if use_proprio:
            for k, v in self.proprio.items():
                st["proprio_projector." + k] = lora_tensors.get("proprio_projector." + k, v).to(F64).clone()
        for k, v in self.head.items():
            if ".film_gen." in k:   # never called (action_heads.py:329-333, :402-405)
                continue
            st["action_head." + k] = lora_tensors.get("action_head." + k, v).to(F64).clone()
        return st

    # ---- forward ----------------------------------------------------------------------------

    def pixels(self, images, views):
        """images u8 (N, V, H, W, 3) -> per view (DINOv2 px, SigLIP px), each (N, 3, H, W) float64.

        TVF.to_tensor (u8 / 255 in fp32) then TVF.normalize with tvf_normalize_params[i] in fp32
        (processing_prismatic.py:129-140); the image is already at the towers' size (resize-naive
        to the same size is the identity)."""
        N, V, Hh, Ww, C = images.shape
        assert C == 3 and Hh == self.image_size and Ww == self.image_size, "images must be (N, V, img, img, 3)"
        assert views <= V
        out = []
        for v in range(views):
            x = images[:, v].permute(0, 3, 1, 2).to(torch.float32).div(255)
            pair = []
            for mean, std in self.normalize:
                m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
                s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
                pair.append(((x - m) / s).to(F64))
            out.append(pair)
        return out

    def _lora(self, state, mods, module, scale):
        if module not in mods:
            return None
        a, b = mods[module]
        return (state[a], state[b], scale)

    def tower(self, x, which, state, mods, scale):
        """timm VisionTransformer.get_intermediate_layers(n={depth-2}) (vision_transformer.py:612-650):
        patch embed, _pos_embed, blocks 0..depth-2, prefix tokens dropped, no final norm."""
        t, pre = self.towers[which], TOWER_PREFIXES[which]
        w = self.w
        D, p, nh = t["embed_dim"], t["patch_size"], t["num_heads"]
        hd = D // nh
        B = x.shape[0]
        # PatchEmbed: Conv2d(3, D, p, stride p) + bias, flatten(2).transpose(1, 2): row-major grid
        y = F.conv2d(x, w[pre + "patch_embed.proj.weight"], w[pre + "patch_embed.proj.bias"], stride=p)
        lo = self._lora(state, mods, pre + "patch_embed.proj", scale)
        if lo is not None:  # PEFT Conv2d LoRA: lora_B(lora_A(x)) * scale, A: Conv2d(3, r, p, p), B: Conv2d(r, D, 1)
            y = y + F.conv2d(F.conv2d(x, lo[0], stride=p), lo[1]) * lo[2]
        y = y.flatten(2).transpose(1, 2)                       # (B, N, D)
        n = y.shape[1]
        # _pos_embed (:579-604)
        pos = w[pre + "pos_embed"]
        to_cat = []
        if t["class_token"]:
            to_cat.append(w[pre + "cls_token"].expand(B, -1, -1))
        if t["reg_tokens"]:
            to_cat.append(w[pre + "reg_token"].expand(B, -1, -1))
        if pos.shape[1] == n:          # no_embed_class (DINOv2 reg4), or no prefix tokens (SigLIP)
            y = y + pos
            if to_cat:
                y = torch.cat(to_cat + [y], dim=1)
        else:                          # original timm: pos_embed covers the prefix tokens too
            assert pos.shape[1] == n + t["prefix"]
            if to_cat:
                y = torch.cat(to_cat + [y], dim=1)
            y = y + pos
        T = y.shape[1]
        for i in range(t["depth"] - 1):  # blocks 0 .. depth-2
            b = f"{pre}blocks.{i}."
            # Block (:114-161): x = x + ls1(attn(norm1(x))); x = x + ls2(mlp(norm2(x)))
            h = layer_norm(y, w[b + "norm1.weight"], w[b + "norm1.bias"], TOWER_LN_EPS)
            qkv = linear(h, w[b + "attn.qkv.weight"], w.get(b + "attn.qkv.bias"), self._lora(state, mods, b + "attn.qkv", scale))
            qkv = qkv.reshape(B, T, 3, nh, hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            att = softmax((q @ k.transpose(-2, -1)) * hd ** -0.5) @ v     # SDPA, unmasked
            att = att.transpose(1, 2).reshape(B, T, D)
            att = linear(att, w[b + "attn.proj.weight"], w[b + "attn.proj.bias"], self._lora(state, mods, b + "attn.proj", scale))
            if t["layer_scale"]:
                att = att * w[b + "ls1.scale_factor"]
            y = y + att
            h = layer_norm(y, w[b + "norm2.weight"], w[b + "norm2.bias"], TOWER_LN_EPS)
            h = gelu(linear(h, w[b + "mlp.fc1.weight"], w[b + "mlp.fc1.bias"], self._lora(state, mods, b + "mlp.fc1", scale)))
            h = linear(h, w[b + "mlp.fc2.weight"], w[b + "mlp.fc2.bias"], self._lora(state, mods, b + "mlp.fc2", scale))
            if t["layer_scale"]:
                h = h * w[b + "ls2.scale_factor"]
            y = y + h
        return y[:, t["prefix"]:]

    def vision(self, px, state, mods, scale):
        """PrismaticVisionBackbone.forward (modeling_prismatic.py:196-237) and the fused projector (:242-275)."""
        feats = []
        for dino, sig in px:
            feats.append(torch.cat([self.tower(dino, 0, state, mods, scale), self.tower(sig, 1, state, mods, scale)], dim=2))
        f = torch.cat(feats, dim=1)                             # [view 0 patches; view 1 patches]
        return self.projector(f, state, mods, scale)

    def projector(self, f, state, mods, scale):
        """PrismaticProjector, fused (modeling_prismatic.py:242-275): fc1 -> GELU -> fc2 -> GELU -> fc3."""
        w = self.w
        f = gelu(linear(f, w["projector.fc1.weight"], w["projector.fc1.bias"], self._lora(state, mods, "projector.fc1", scale)))
        f = gelu(linear(f, w["projector.fc2.weight"], w["projector.fc2.bias"], self._lora(state, mods, "projector.fc2", scale)))
        return linear(f, w["projector.fc3.weight"], w["projector.fc3.bias"], self._lora(state, mods, "projector.fc3", scale))

    def rope_llm(self, T):
        inv = 1.0 / (self.rope_theta ** (torch.arange(0, self.hd, 2, dtype=F64) / self.hd))
        ang = torch.arange(T, dtype=F64)[:, None] * inv[None, :]
        emb = torch.cat([ang, ang], dim=-1)
        return emb.cos(), emb.sin()

    def rope_llm_apply(self, x, cos, sin):
        """apply_rotary_pos_emb with rotate_half = cat(-x2, x1) over the halves of the head dim."""
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin

    def llm(self, emb, state, mods, scale):
        """Qwen2Model with output_hidden_states (transformers 4.40.1): hs[0] = inputs, hs[i] = layer i-1's
        output, hs[L] = the final RMSNorm of layer L-1's output. Causal, positions 0..T-1."""
        w = self.w
        B, T, D = emb.shape
        H, KV, hd = self.H, self.KV, self.hd
        cos, sin = self.rope_llm(T)
        rope = lambda x: self.rope_llm_apply(x, cos, sin)

        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        hs = [emb]
        x = emb
        for l in range(self.L):
            p = f"language_model.model.layers.{l}."
            lo = lambda n: self._lora(state, mods, p + n, scale)
            h = rms_norm(x, w[p + "input_layernorm.weight"], self.rms_eps)
            q = linear(h, w[p + "self_attn.q_proj.weight"], w[p + "self_attn.q_proj.bias"], lo("self_attn.q_proj"))
            k = linear(h, w[p + "self_attn.k_proj.weight"], w[p + "self_attn.k_proj.bias"], lo("self_attn.k_proj"))
            v = linear(h, w[p + "self_attn.v_proj.weight"], w[p + "self_attn.v_proj.bias"], lo("self_attn.v_proj"))
            q = rope(q.view(B, T, H, hd).transpose(1, 2))
            k = rope(k.view(B, T, KV, hd).transpose(1, 2))
            v = v.view(B, T, KV, hd).transpose(1, 2)
            k = k.repeat_interleave(H // KV, dim=1)             # repeat_kv: query head j uses kv head j // (H/KV)
            v = v.repeat_interleave(H // KV, dim=1)
            s = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
            s = s.masked_fill(mask, float("-inf"))
            o = (softmax(s) @ v).transpose(1, 2).reshape(B, T, H * hd)
            x = x + linear(o, w[p + "self_attn.o_proj.weight"], None, lo("self_attn.o_proj"))
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], self.rms_eps)
            g = linear(h, w[p + "mlp.gate_proj.weight"], None, lo("mlp.gate_proj"))
            u = linear(h, w[p + "mlp.up_proj.weight"], None, lo("mlp.up_proj"))
            x = x + linear(F.silu(g) * u, w[p + "mlp.down_proj.weight"], None, lo("mlp.down_proj"))
            hs.append(x)
        hs[-1] = rms_norm(x, w["language_model.model.norm.weight"], self.rms_eps)
        return hs

    def sequence(self, input_ids, vis, queries):
        """[embed(BOS); vision (P); embed(ids[1 .. S-Q)); queries (Q)] (modeling_prismatic.py:566-660, :486-510)."""
        E = self.w["language_model.model.embed_tokens.weight"]
        ids = input_ids.long()
        Nb, S = ids.shape
        Q = queries.shape[0]
        e = E[ids]
        return torch.cat([e[:, :1], vis, e[:, 1:S - Q], queries.unsqueeze(0).expand(Nb, -1, -1)], dim=1)

    def head_rope(self, n, hd):
        """RotaryPositionEmbedding (action_heads.py:145-164), base 10000, tables (n, hd)."""
        inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=F64) / hd))
        ang = torch.arange(n, dtype=F64)[:, None] * inv[None, :]
        emb = torch.cat([ang, ang], dim=-1)
        return emb.cos(), emb.sin()

    @staticmethod
    def rotate_interleaved(x):
        """apply_rope's rotate_half (action_heads.py:135-140): r[2i] = -x[2i+1], r[2i+1] = x[2i]."""
        r = torch.empty_like(x)
        r[..., 0::2] = -x[..., 1::2]
        r[..., 1::2] = x[..., 0::2]
        return r

    def head_block(self, x, h_a, h_t, p, hp):
        """MLPResNetBlock_Pro.forward (action_heads.py:336-410)."""
        B, C, D = x.shape
        nh = HEAD_NUM_HEADS
        hd = D // nh
        h_adapter = torch.cat([h_a, p], dim=1) if p is not None else h_a
        Ka, Kt = h_adapter.shape[1], h_t.shape[1]
        lin = lambda z, n: linear(z, hp[n + ".weight"], hp[n + ".bias"])
        heads = lambda z, n: z.view(B, n, nh, hd).transpose(1, 2)
        q = heads(lin(x, "q_proj"), C)
        ks, vs = heads(lin(x, "k_self"), C), heads(lin(x, "v_self"), C)
        ka, va = heads(lin(h_adapter, "k_adapter"), Ka), heads(lin(h_adapter, "v_adapter"), Ka)
        kt, vt = heads(lin(h_t, "k_task"), Kt), heads(lin(h_t, "v_task"), Kt)

        def rope(z, n):
            c, s = self.head_rope(n, hd)
            return z * c + self.rotate_interleaved(z) * s
        q, ks, ka, kt = rope(q, C), rope(ks, C), rope(ka, Ka), rope(kt, Kt)
        g = torch.tanh(hp["gating_factor"])
        scores = torch.cat([q @ ks.transpose(-2, -1), q @ ka.transpose(-2, -1), (q @ kt.transpose(-2, -1)) * g], dim=-1)
        att = softmax(scores / math.sqrt(hd)) @ torch.cat([vs, va, vt], dim=2)
        o = lin(att.transpose(1, 2).reshape(B, C, D), "o_proj")
        # ffn = Sequential(LayerNorm, Linear, ReLU) on (o + x); no residual after it (:409)
        y = layer_norm(o + x, hp["ffn.0.weight"], hp["ffn.0.bias"], HEAD_LN_EPS)
        return torch.relu(linear(y, hp["ffn.1.weight"], hp["ffn.1.bias"]))

    def action_head(self, hs, P, state, proprio, noise, chunk):
        """finetune.py:396-409 (the reads) and L1RegressionActionHead.predict_action / MLPResNet
        (action_heads.py:44-121), use_pro_version=True."""
        T = hs[0].shape[1]
        Q = self.Q
        Bn = hs[0].shape[0]
        D, A = self.D, self.A
        hp = {k[len("action_head."):]: v for k, v in state.items() if k.startswith("action_head.")}
        p = None
        if proprio is not None:
            pp = {k[len("proprio_projector."):]: v for k, v in state.items() if k.startswith("proprio_projector.")}
            z = gelu(linear(proprio, pp["fc1.weight"], pp["fc1.bias"]))
            p = linear(z, pp["fc2.weight"], pp["fc2.bias"]).unsqueeze(1)     # (B, 1, D)
        x = torch.zeros(Bn, chunk, A * D, dtype=F64)
        if noise is not None:
            x = x + noise                                   # learnable_random_perturbations (C, A*D)
        x = torch.relu(linear(layer_norm(x, hp["model.layer_norm1.weight"], hp["model.layer_norm1.bias"], HEAD_LN_EPS),
                              hp["model.fc1.weight"], hp["model.fc1.bias"]))
        for i in range(self.NB):
            h = hs[i + 1]                                   # block i reads hs[i+1] (:118)
            h_t = h[:, :P]                                  # BOS and the first P-1 vision tokens
            h_a = h[:, T - Q - 1:T - 1]                     # one before each query
            bp = {k[len(f"model.mlp_resnet_blocks.{i}."):]: v for k, v in hp.items()
                  if k.startswith(f"model.mlp_resnet_blocks.{i}.")}
            x = self.head_block(x, h_a, h_t, p, bp)
        x = layer_norm(x, hp["model.layer_norm2.weight"], hp["model.layer_norm2.bias"], HEAD_LN_EPS)
        return linear(x, hp["model.fc2.weight"], hp["model.fc2.bias"])     # (B, C, A)

    def features(self, hs, P, S, o):
        """CRaFT bridge features (seed modeling_prismatic.py:684-739, craft_utils.py:61-148, with craftgrad's
        slices: C_R over 1..P or 1..S+P-Q-1, C_AQ over the queries T-Q..T-1)."""
        Q, T = self.Q, hs[0].shape[1]
        m = o["bridge_layer"]
        if o["span"] == "vision":
            cr = hs[m][:, 1:1 + P]
        elif o["span"] == "vision+prompt":
            cr = hs[m][:, 1:S + P - Q]
        else:
            raise ValueError(f"span {o['span']!r}")
        caq = hs[self.L][:, T - Q:T]
        pool = (lambda z: z.mean(1)) if o["pooling"] == "mean" else (lambda z: z.max(1).values)
        if o["pooling"] not in ("mean", "max"):
            raise ValueError(f"pooling {o['pooling']!r}")
        if o["anchor"] == "concat":
            return torch.cat([pool(cr), pool(caq)], dim=-1)
        if o["anchor"] == "aq_only":
            return pool(caq)
        if o["anchor"] == "raw_only":
            return pool(cr)
        raise ValueError(f"anchor {o['anchor']!r}")

    def forward(self, state, mods, batch, o, with_head=True):
        """-> dict(hs, pred (or None), P, S, T). `state`: output-name -> tensor (LoRA factors by PEFT
        name, action_queries.weight, proprio_projector.*, action_head.*)."""
        scale = o["alpha"] / o["rank"] if o["rank"] else 0.0
        views = o["views"]
        px = self.pixels(batch["images"], views)
        vis = self.vision(px, state, mods, scale)
        P = views * self.patches
        ids = batch["input_ids"]
        S = ids.shape[1]
        emb = self.sequence(ids, vis, state["action_queries.weight"])
        hs = self.llm(emb, state, mods, scale)
        pred = None
        if with_head:
            proprio = batch["proprio"].to(F64) if o["use_proprio"] else None
            pred = self.action_head(hs, P, state, proprio, o["noise"], o["chunk"])
        return {"hs": hs, "pred": pred, "P": P, "S": S, "T": emb.shape[1]}

    # ---- the step ---------------------------------------------------------------------------

    def resolve_options(self, opts, batch, lora_tensors):
        o = {"rank": None, "alpha": None, "head_noise": None, "use_proprio": True, "views": None,
             "bridge_layer": None, "span": "vision", "pooling": "mean", "anchor": "concat", "mode": "craft",
             "out_dtype": "F64", "hidden_states": False}
        unknown = set(opts) - set(o)
        if unknown:
            raise ValueError(f"unknown options: {sorted(unknown)}")
        o.update(opts)
        _, _, r = self.split_lora(lora_tensors)
        if o["rank"] is None:
            o["rank"] = r
        elif r is not None and r != o["rank"]:
            raise ValueError(f"options.rank {o['rank']} but the factors have rank {r}")
        if o["alpha"] is None:
            o["alpha"] = 2 * o["rank"] if o["rank"] else 0       # lora_alpha = 2r (finetune.py:833)
        V = batch["images"].shape[1]
        o["views"] = V if o["views"] is None else int(o["views"])
        assert 1 <= o["views"] <= V
        m = (self.L + 1) // 2 if o["bridge_layer"] is None else int(o["bridge_layer"])
        if m < 0:
            m += self.L + 1
        assert 0 <= m <= self.L, f"bridge_layer must index hs[0..{self.L}]"
        o["bridge_layer"] = m
        CA = batch["actions"].shape[1]
        assert CA % self.A == 0
        o["chunk"] = CA // self.A
        hn = o["head_noise"]
        if hn is None or hn is False:
            o["noise"] = None
        elif hn == "batch":
            o["noise"] = batch["head_noise"].to(F64)
        else:
            t, _ = read_safetensors(hn)
            o["noise"] = t["head_noise"].to(F64)
        if o["noise"] is not None:
            assert tuple(o["noise"].shape) == (o["chunk"], self.A * self.D), f"head_noise must be (C, A*D), got {tuple(o['noise'].shape)}"
        assert o["mode"] in ("craft", "baseline")
        assert o["out_dtype"] in ("F64", "F32")
        assert batch["input_ids"].shape[1] > self.Q + 1
        return o

    def anchor_features(self, anchor_tensors, batch, o):
        mods, _, r = self.split_lora(anchor_tensors)
        if r is not None and r != o["rank"]:
            raise ValueError(f"the anchor's factors have rank {r}, the current ones {o['rank']}")
        state = {k: v.to(F64) for k, v in anchor_tensors.items()}
        state["action_queries.weight"] = anchor_tensors.get("action_queries.weight", self.w["action_queries.weight"]).to(F64)
        with torch.no_grad():
            f = self.forward(state, mods, batch, o, with_head=False)
            return self.features(f["hs"], f["P"], f["S"], o)

    def losses(self, state, mods, batch, o, anchor_feats):
        f = self.forward(state, mods, batch, o)
        actions = batch["actions"].to(F64).view(f["pred"].shape)
        out = {"forward": f, "action_loss": (f["pred"] - actions).abs().mean()}    # torch.nn.L1Loss()
        if o["mode"] == "craft":
            feats = self.features(f["hs"], f["P"], f["S"], o)
            out["features"] = feats
            out["retention_loss"] = ((feats - anchor_feats) ** 2).mean()            # F.mse_loss
        return out

    def compute(self, batch, lora_tensors, anchor_tensors, opts):
        o = self.resolve_options(dict(opts), batch, lora_tensors)
        mods, off, _ = self.split_lora(lora_tensors)
        state = self.trainables(lora_tensors, o["use_proprio"])
        names = list(state)
        for v in state.values():
            v.requires_grad_(True)
        anchor_feats = None
        if o["mode"] == "craft":
            assert anchor_tensors is not None, "mode craft needs an anchor"
            anchor_feats = self.anchor_features(anchor_tensors, batch, o)
        res = self.losses(state, mods, batch, o, anchor_feats)
        params = [state[n] for n in names]
        out = OrderedDict()
        losses = [("action", res["action_loss"])]
        if o["mode"] == "craft":
            losses.append(("retention", res["retention_loss"]))
        for i, (tag, loss) in enumerate(losses):
            grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=i + 1 < len(losses))
            for n, p, g in zip(names, params, grads):
                out[f"{tag}_grad/{n}"] = torch.zeros_like(p) if g is None else g.contiguous()
            out[f"{tag}_loss"] = loss.detach().reshape(())
        out["predicted_actions"] = res["forward"]["pred"].detach()
        if o["mode"] == "craft":
            out["features"] = res["features"].detach()
            out["anchor_features"] = anchor_feats
        if o["hidden_states"]:
            out["hidden_states"] = torch.stack([h.detach() for h in res["forward"]["hs"]])
        f = res["forward"]
        meta = {k: v for k, v in o.items() if k != "noise"}
        meta.update({"P": f["P"], "S": f["S"], "T": f["T"], "Q": self.Q, "L": self.L, "head_blocks": self.NB,
                     "trainables": names, "off_path_lora": off,
                     "gradient_names": "<loss>_grad/<name>: PEFT LoRA names, action_queries.weight, "
                                       "proprio_projector.<name>, action_head.<name> (state-dict names without module.)"})
        return out, meta


def load_batch(path):
    t, _ = read_safetensors(path)
    for k in ("images", "proprio", "actions", "input_ids"):
        assert k in t, f"{path}: no {k}"
    assert t["images"].dtype == torch.uint8
    return t


def run(model_dir, batch_path, lora_path, anchor_path, options, out_path):
    ref = VlaReference(model_dir)
    batch = load_batch(batch_path)
    lora, _ = read_safetensors(lora_path)
    anchor = read_safetensors(anchor_path)[0] if anchor_path else None
    out, meta = ref.compute(batch, lora, anchor, options)
    dt = torch.float32 if meta["out_dtype"] == "F32" else F64
    write_safetensors(out_path, {k: v.to(dt) for k, v in out.items()}, {"format": "pt", "reference": json.dumps(meta)})
    return out, meta


def main(argv=None):
    ap = argparse.ArgumentParser(description="float64 VLA-Adapter + CRaFT reference (losses and gradients)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--lora", required=True)
    ap.add_argument("--anchor", default=None)
    ap.add_argument("--options", default="{}", help="a JSON object, or a path to a file holding one")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if os.path.isfile(a.options):
        with open(a.options) as f:
            opts = json.load(f)
    else:
        opts = json.loads(a.options)
    out, meta = run(a.model, a.batch, a.lora, a.anchor, opts, a.out)
    summary = {"action_loss": float(out["action_loss"])}
    if "retention_loss" in out:
        summary["retention_loss"] = float(out["retention_loss"])
    summary["tensors"] = len(out)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
