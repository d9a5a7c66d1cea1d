#!/usr/bin/env python3
"""Tiny VLA-Adapter checkpoint directories for tests, from a seed and a size spec.

Writes, in the layout OpenHelix-Team/VLA-Adapter reads (docs/VLA-ADAPTER.md, "Files"):

  config.json                  VLA-Adapter's config.json (pretrained_models/configs/config.json) minus
                               norm_stats, with the tiny sizes, plus `craftgrad_tiny_towers`: one entry
                               per `timm_model_ids` entry, {embed_dim, depth, num_heads, mlp_hidden,
                               patch_size, reg_tokens, class_token, layer_scale} (the timm ids imply the
                               released shapes; the tiny towers say their own).
  model.safetensors            AutoModelForVision2Seq state-dict names (vision_backbone.featurizer.*,
                               vision_backbone.fused_featurizer.* with its MAP head attn_pool.*,
                               projector.fc{1,2,3}.*, language_model.*, action_queries.weight);
                               F32 (default) or BF16, written by hand.
  preprocessor_config.json     upstream's, with the tiny image size.
  action_head--0_checkpoint.pt, proprio_projector--0_checkpoint.pt
                               torch.save of the modules' state dicts as finetune.py writes them from
                               DDP (keys prefixed `module.`).
  dataset_statistics.json      save_dataset_statistics' shape ({dataset: {action, proprio, counts}}).

and, for the reference and the tests (not part of an upstream checkpoint):

  batch.safetensors            images u8 (N, V, H, W, 3), proprio f32 (N, PROPRIO), actions f32 (N, C*A)
                               in [-1, 1], input_ids i32 (N, S) = [bos, prompt ids, Q placeholder ids],
                               head_noise f32 (C, A*D) (one N(0, 0.02) draw, as the head's
                               learnable_random_perturbations).
  lora.safetensors, anchor.safetensors
                               PEFT-named LoRA factors (base_model.model.<module>.lora_{A,B}.weight) for
                               every module PEFT 0.11.1's "all-linear" targets (patch_embed.proj as a
                               Conv2d LoRA, the towers' last blocks, attn_pool and lm_head included), with
                               B nonzero so that every factor has a gradient; the anchor file also holds
                               `action_queries.weight` (the anchor's queries).

Usage: python3 make_tiny_vla.py OUT_DIR [--seed N] [--spec JSON] [--bf16]
Importable: write_tiny_vla(out_dir, spec=None) -> the resolved spec.

The modules written to the .pt files are declared here (same parameter names and registration
order as prismatic/models/action_heads.py L1RegressionActionHead(use_pro_version=True) and
prismatic/models/projectors.py ProprioProjector), independently of the upstream code.
"""
import argparse
import copy
import json
import math
import os
import struct
from collections import OrderedDict

import torch
import torch.nn as nn

DINO_ID = "vit_large_patch14_reg4_dinov2.lvd142m"
SIGLIP_ID = "vit_so400m_patch14_siglip_224"

DEFAULT_SPEC = {
    "seed": 0,
    "dtype": "F32",            # model.safetensors and the .pt files: "F32" or "BF16"
    "image_size": 28,          # 2 x 2 patches of 14
    "towers": [
        # DINOv2 reg4 (featurizer): class token, 4 registers, LayerScale, pos_embed over patches only
        {"embed_dim": 32, "depth": 3, "num_heads": 4, "mlp_hidden": 128, "patch_size": 14,
         "reg_tokens": 4, "class_token": True, "layer_scale": True},
        # SigLIP (fused_featurizer): no prefix tokens, no LayerScale, MAP head (attn_pool, never computed)
        {"embed_dim": 48, "depth": 3, "num_heads": 4, "mlp_hidden": int(48 * 3.7362), "patch_size": 14,
         "reg_tokens": 0, "class_token": False, "layer_scale": False},
    ],
    "llm": {"hidden": 64, "layers": 3, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab": 64,
            "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True},
    "queries": 4,              # upstream NUM_TOKENS = 64
    "proprio_dim": 8,
    "action_dim": 7,
    "chunk": 8,
    "head_blocks": None,       # None = the LLM's layer count (upstream: 24 = L)
    "std": 0.02,               # weights N(0, std); LayerNorm/RMSNorm weights 1 + N(0, 0.05)
    "layer_scale": 0.1,        # LayerScale values 0.1 * (1 + N(0, 0.1))
    "batch": {"n": 2, "views": 2, "prompt": 3},
    "lora": {"rank": 4, "std_b": 0.05},
    "bos_token_id": 1,
}


def resolve_spec(spec=None):
    out = copy.deepcopy(DEFAULT_SPEC)
    for k, v in (spec or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        elif k == "towers" and v is not None:
            out[k] = [dict(DEFAULT_SPEC["towers"][i], **t) for i, t in enumerate(v)]
        else:
            out[k] = v
    if out["head_blocks"] is None:
        out["head_blocks"] = out["llm"]["layers"]
    D = out["llm"]["hidden"]
    assert D % 8 == 0, "the Pro head has 8 heads: LLM hidden must be a multiple of 8 (and of 16 for even head dims)"
    assert (D // 8) % 2 == 0, "the head's RoPE needs an even head dim"
    assert D % out["llm"]["heads"] == 0 and out["llm"]["heads"] % out["llm"]["kv_heads"] == 0
    assert (D // out["llm"]["heads"]) % 2 == 0
    assert out["head_blocks"] <= out["llm"]["layers"]
    for t in out["towers"]:
        assert t["embed_dim"] % t["num_heads"] == 0
        assert out["image_size"] % t["patch_size"] == 0
    assert out["towers"][0]["patch_size"] == out["towers"][1]["patch_size"], "both towers give the same grid"
    return out


# ---------------------------------------------------------------------------------------------
# safetensors, by hand: u64 LE header length, JSON header {name: {dtype, shape, data_offsets}},
# raw little-endian data (offsets relative to the end of the header), header padded with spaces
# to a multiple of 8 as the Rust writer does.

_ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.bfloat16: "BF16", torch.float16: "F16",
              torch.int32: "I32", torch.int64: "I64", torch.uint8: "U8"}


def _tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> torch tensor (F32/F64/BF16/F16/I32/I64/U8), written in name order."""
    header, blobs, at = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name]
        b = _tensor_bytes(t)
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------------------------
# The head and the proprio projector, declared with upstream's parameter names and order.

class _ProRotary(nn.Module):  # RotaryPositionEmbedding: only a non-persistent buffer
    def __init__(self, dim):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)), persistent=False)


class _ProBlock(nn.Module):  # MLPResNetBlock_Pro (action_heads.py:287-333)
    def __init__(self, dim, num_heads=8):
        super().__init__()
        self.ffn = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU())
        self.q_proj = nn.Linear(dim, dim)
        self.k_self = nn.Linear(dim, dim)
        self.v_self = nn.Linear(dim, dim)
        self.k_adapter = nn.Linear(dim, dim)
        self.v_adapter = nn.Linear(dim, dim)
        self.k_task = nn.Linear(dim, dim)
        self.v_task = nn.Linear(dim, dim)
        self.o_proj = nn.Linear(dim, dim)
        self.gating_factor = nn.Parameter(torch.zeros(1))
        self.rope = _ProRotary(dim // num_heads)
        self.film_gen = nn.Sequential(nn.Linear(dim, dim * 2))


class _MLPResNet(nn.Module):  # action_heads.py:85-108
    def __init__(self, num_blocks, input_dim, hidden_dim, output_dim):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(input_dim)
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.mlp_resnet_blocks = nn.ModuleList([_ProBlock(hidden_dim) for _ in range(num_blocks)])
        self.layer_norm2 = nn.LayerNorm(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, output_dim)


class _L1Head(nn.Module):  # L1RegressionActionHead (action_heads.py:20-42)
    def __init__(self, num_blocks, llm_dim, action_dim):
        super().__init__()
        self.model = _MLPResNet(num_blocks, llm_dim * action_dim, llm_dim, action_dim)


class _Proprio(nn.Module):  # ProprioProjector (projectors.py:6-17)
    def __init__(self, llm_dim, proprio_dim):
        super().__init__()
        self.fc1 = nn.Linear(proprio_dim, llm_dim, bias=True)
        self.fc2 = nn.Linear(llm_dim, llm_dim, bias=True)
        self.act_fn1 = nn.GELU()


class _DDP(nn.Module):  # what DistributedDataParallel's state_dict looks like: `module.` prefix
    def __init__(self, module):
        super().__init__()
        self.module = module


# ---------------------------------------------------------------------------------------------

class _Draw:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(int(seed))

    def normal(self, shape, std):
        return torch.randn(*shape, generator=self.g, dtype=torch.float32) * std

    def uniform(self, shape, lo, hi):
        return lo + (hi - lo) * torch.rand(*shape, generator=self.g, dtype=torch.float32)

    def ints(self, shape, lo, hi):
        return torch.randint(lo, hi, shape, generator=self.g)


def _norm_weight(dr, n):
    return 1.0 + dr.normal((n,), 0.05)


def tower_tensors(dr, t, img, std, ls):
    """timm VisionTransformer state dict (num_classes=0) for one tiny tower."""
    D, p, M = t["embed_dim"], t["patch_size"], t["mlp_hidden"]
    n = (img // p) ** 2
    out = OrderedDict()
    if t["class_token"]:
        out["cls_token"] = dr.normal((1, 1, D), std)
    if t["reg_tokens"]:
        out["reg_token"] = dr.normal((1, t["reg_tokens"], D), std)
    # no_embed_class (DINOv2 reg4) or no prefix tokens (SigLIP): pos_embed covers the patches only
    out["pos_embed"] = dr.normal((1, n, D), std)
    out["patch_embed.proj.weight"] = dr.normal((D, 3, p, p), std)
    out["patch_embed.proj.bias"] = dr.normal((D,), std)
    for i in range(t["depth"]):
        b = f"blocks.{i}."
        out[b + "norm1.weight"] = _norm_weight(dr, D)
        out[b + "norm1.bias"] = dr.normal((D,), std)
        out[b + "attn.qkv.weight"] = dr.normal((3 * D, D), std)
        out[b + "attn.qkv.bias"] = dr.normal((3 * D,), std)
        out[b + "attn.proj.weight"] = dr.normal((D, D), std)
        out[b + "attn.proj.bias"] = dr.normal((D,), std)
        if t["layer_scale"]:
            out[b + "ls1.scale_factor"] = ls * (1.0 + dr.normal((D,), 0.1))
        out[b + "norm2.weight"] = _norm_weight(dr, D)
        out[b + "norm2.bias"] = dr.normal((D,), std)
        out[b + "mlp.fc1.weight"] = dr.normal((M, D), std)
        out[b + "mlp.fc1.bias"] = dr.normal((M,), std)
        out[b + "mlp.fc2.weight"] = dr.normal((D, M), std)
        out[b + "mlp.fc2.bias"] = dr.normal((D,), std)
        if t["layer_scale"]:
            out[b + "ls2.scale_factor"] = ls * (1.0 + dr.normal((D,), 0.1))
    out["norm.weight"] = _norm_weight(dr, D)
    out["norm.bias"] = dr.normal((D,), std)
    if not t["class_token"]:
        # SigLIP's global_pool='map': timm AttentionPoolLatent(D, num_heads, mlp_ratio, norm_layer)
        out["attn_pool.latent"] = dr.normal((1, 1, D), std)
        out["attn_pool.q.weight"] = dr.normal((D, D), std)
        out["attn_pool.q.bias"] = dr.normal((D,), std)
        out["attn_pool.kv.weight"] = dr.normal((2 * D, D), std)
        out["attn_pool.kv.bias"] = dr.normal((2 * D,), std)
        out["attn_pool.proj.weight"] = dr.normal((D, D), std)
        out["attn_pool.proj.bias"] = dr.normal((D,), std)
        out["attn_pool.norm.weight"] = _norm_weight(dr, D)
        out["attn_pool.norm.bias"] = dr.normal((D,), std)
        out["attn_pool.mlp.fc1.weight"] = dr.normal((M, D), std)
        out["attn_pool.mlp.fc1.bias"] = dr.normal((M,), std)
        out["attn_pool.mlp.fc2.weight"] = dr.normal((D, M), std)
        out["attn_pool.mlp.fc2.bias"] = dr.normal((D,), std)
    return out


def model_tensors(spec, dr):
    std, ls, img = spec["std"], spec["layer_scale"], spec["image_size"]
    out = OrderedDict()
    for prefix, t in zip(("vision_backbone.featurizer.", "vision_backbone.fused_featurizer."), spec["towers"]):
        for k, v in tower_tensors(dr, t, img, std, ls).items():
            out[prefix + k] = v
    vis = spec["towers"][0]["embed_dim"] + spec["towers"][1]["embed_dim"]
    L = spec["llm"]
    D, H, KV, I, V = L["hidden"], L["heads"], L["kv_heads"], L["intermediate"], L["vocab"]
    hd = D // H
    # fused projector (modeling_prismatic.py:242-275): vis -> 4 vis -> D -> D
    for name, (o, i) in (("fc1", (4 * vis, vis)), ("fc2", (D, 4 * vis)), ("fc3", (D, D))):
        out[f"projector.{name}.weight"] = dr.normal((o, i), std)
        out[f"projector.{name}.bias"] = dr.normal((o,), std)
    out["language_model.model.embed_tokens.weight"] = dr.normal((V, D), std)
    for l in range(L["layers"]):
        p = f"language_model.model.layers.{l}."
        out[p + "input_layernorm.weight"] = _norm_weight(dr, D)
        out[p + "self_attn.q_proj.weight"] = dr.normal((H * hd, D), std)
        out[p + "self_attn.q_proj.bias"] = dr.normal((H * hd,), std)
        out[p + "self_attn.k_proj.weight"] = dr.normal((KV * hd, D), std)
        out[p + "self_attn.k_proj.bias"] = dr.normal((KV * hd,), std)
        out[p + "self_attn.v_proj.weight"] = dr.normal((KV * hd, D), std)
        out[p + "self_attn.v_proj.bias"] = dr.normal((KV * hd,), std)
        out[p + "self_attn.o_proj.weight"] = dr.normal((D, H * hd), std)
        out[p + "post_attention_layernorm.weight"] = _norm_weight(dr, D)
        out[p + "mlp.gate_proj.weight"] = dr.normal((I, D), std)
        out[p + "mlp.up_proj.weight"] = dr.normal((I, D), std)
        out[p + "mlp.down_proj.weight"] = dr.normal((D, I), std)
    out["language_model.model.norm.weight"] = _norm_weight(dr, D)
    if not L["tie_word_embeddings"]:
        out["language_model.lm_head.weight"] = dr.normal((V, D), std)
    # upstream zero-initialises action_queries (:375-376); a trained checkpoint's are not zero
    out["action_queries.weight"] = dr.normal((spec["queries"], D), std)
    return out


def head_state(spec, dr, dtype):
    D, A = spec["llm"]["hidden"], spec["action_dim"]
    head = _DDP(_L1Head(spec["head_blocks"], D, A))
    sd = head.state_dict()
    std = spec["std"]
    for k, v in sd.items():
        if k.endswith("gating_factor"):
            v.copy_(dr.normal(tuple(v.shape), 0.5))   # upstream inits 0; trained gates are not
        elif ("layer_norm" in k or ".ffn.0." in k) and k.endswith(".weight"):
            v.copy_(_norm_weight(dr, v.shape[0]))
        else:
            # nn.Linear-like scale (1/sqrt(fan_in)) so the head's outputs are O(0.1-1)
            fan = v.shape[1] if v.dim() == 2 else D
            v.copy_(dr.normal(tuple(v.shape), 1.0 / math.sqrt(fan)))
    proj = _DDP(_Proprio(D, spec["proprio_dim"]))
    psd = proj.state_dict()
    for k, v in psd.items():
        fan = v.shape[1] if v.dim() == 2 else spec["proprio_dim"]
        v.copy_(dr.normal(tuple(v.shape), 1.0 / math.sqrt(fan)))
    if dtype == torch.bfloat16:
        sd = OrderedDict((k, v.to(torch.bfloat16)) for k, v in sd.items())
        psd = OrderedDict((k, v.to(torch.bfloat16)) for k, v in psd.items())
        sd._metadata = head.state_dict()._metadata
        psd._metadata = proj.state_dict()._metadata
    return sd, psd


def lora_targets(spec):
    """(module name, kind, in, out) of every module PEFT 0.11.1's "all-linear" targets, in model order.

    kind 'conv' is patch_embed.proj (a Conv2d that matches the base name `proj`): A (r, 3, p, p),
    B (D, r, 1, 1). 'linear': A (r, in), B (out, r)."""
    out = []
    for prefix, t in zip(("vision_backbone.featurizer.", "vision_backbone.fused_featurizer."), spec["towers"]):
        D, M, p = t["embed_dim"], t["mlp_hidden"], t["patch_size"]
        out.append((prefix + "patch_embed.proj", "conv", (3, p), D))
        for i in range(t["depth"]):
            b = f"{prefix}blocks.{i}."
            out += [(b + "attn.qkv", "linear", D, 3 * D), (b + "attn.proj", "linear", D, D),
                    (b + "mlp.fc1", "linear", D, M), (b + "mlp.fc2", "linear", M, D)]
        if not t["class_token"]:
            a = prefix + "attn_pool."
            out += [(a + "q", "linear", D, D), (a + "kv", "linear", D, 2 * D), (a + "proj", "linear", D, D),
                    (a + "mlp.fc1", "linear", D, M), (a + "mlp.fc2", "linear", M, D)]
    vis = spec["towers"][0]["embed_dim"] + spec["towers"][1]["embed_dim"]
    L = spec["llm"]
    D, H, KV, I = L["hidden"], L["heads"], L["kv_heads"], L["intermediate"]
    hd = D // H
    out += [("projector.fc1", "linear", vis, 4 * vis), ("projector.fc2", "linear", 4 * vis, D),
            ("projector.fc3", "linear", D, D)]
    for l in range(L["layers"]):
        p = f"language_model.model.layers.{l}."
        out += [(p + "self_attn.q_proj", "linear", D, H * hd), (p + "self_attn.k_proj", "linear", D, KV * hd),
                (p + "self_attn.v_proj", "linear", D, KV * hd), (p + "self_attn.o_proj", "linear", H * hd, D),
                (p + "mlp.gate_proj", "linear", D, I), (p + "mlp.up_proj", "linear", D, I),
                (p + "mlp.down_proj", "linear", I, D)]
    out.append(("language_model.lm_head", "linear", D, L["vocab"]))
    return out


def lora_tensors(spec, dr, std_b):
    """A ~ N(0, 1/r) as PEFT's init_lora_weights="gaussian"; B ~ N(0, std_b) (PEFT: 0) so gradients reach A."""
    r = spec["lora"]["rank"]
    out = OrderedDict()
    for name, kind, fan_in, fan_out in lora_targets(spec):
        k = f"base_model.model.{name}."
        if kind == "conv":
            c, p = fan_in
            out[k + "lora_A.weight"] = dr.normal((r, c, p, p), 1.0 / r)
            out[k + "lora_B.weight"] = dr.normal((fan_out, r, 1, 1), std_b)
        else:
            out[k + "lora_A.weight"] = dr.normal((r, fan_in), 1.0 / r)
            out[k + "lora_B.weight"] = dr.normal((fan_out, r), std_b)
    return out


def config_json(spec):
    L = spec["llm"]
    img = spec["image_size"]
    text = {
        "attention_dropout": 0.0,
        "bos_token_id": spec["bos_token_id"],
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": L["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": L["intermediate"],
        "max_position_embeddings": 32768,
        "max_window_layers": L["layers"],
        "model_type": "qwen2",
        "num_attention_heads": L["heads"],
        "num_hidden_layers": L["layers"],
        "num_key_value_heads": L["kv_heads"],
        "rms_norm_eps": L["rms_norm_eps"],
        "rope_theta": L["rope_theta"],
        "sliding_window": 32768,
        "tie_word_embeddings": bool(L["tie_word_embeddings"]),
        "torch_dtype": "bfloat16" if spec["dtype"] == "BF16" else "float32",
        "use_cache": True,
        "use_mrope": False,
        "use_sliding_window": False,
        "vocab_size": L["vocab"],
    }
    # attn_pool: the tower has SigLIP's MAP head (written for towers without a class token).
    towers = [{**{k: t[k] for k in ("embed_dim", "depth", "num_heads", "mlp_hidden", "patch_size",
                                    "reg_tokens", "class_token", "layer_scale")}, "attn_pool": not t["class_token"]}
              for t in spec["towers"]]
    return {
        "arch_specifier": "no-align+fused-gelu-mlp",
        "architectures": ["OpenVLAForActionPrediction"],
        "auto_map": {
            "AutoConfig": "configuration_prismatic.OpenVLAConfig",
            "AutoModelForVision2Seq": "modeling_prismatic.OpenVLAForActionPrediction",
        },
        "craftgrad_tiny_towers": towers,
        "hf_llm_id": "",
        "image_resize_strategy": "resize-naive",
        "image_sizes": [img, img],
        "llm_backbone_id": "qwen25-0_5b-extra",
        "llm_max_length": 2048,
        "model_type": "openvla",
        "n_action_bins": 256,
        "output_projector_states": False,
        "pad_to_multiple_of": 64,
        "pad_token_id": 0,
        "text_config": text,
        "timm_model_ids": [DINO_ID, SIGLIP_ID],
        "timm_override_act_layers": [None, None],
        "torch_dtype": text["torch_dtype"],
        "transformers_version": "4.40.1",
        "use_fused_vision_backbone": True,
        "vision_backbone_id": "dinosiglip-vit-so-224px",
    }


def preprocessor_json(spec):
    img = spec["image_size"]
    return {
        "auto_map": {
            "AutoImageProcessor": "processing_prismatic.PrismaticImageProcessor",
            "AutoProcessor": "processing_prismatic.PrismaticProcessor",
        },
        "image_processor_type": "PrismaticImageProcessor",
        "image_resize_strategy": "resize-naive",
        "input_sizes": [[3, img, img], [3, img, img]],
        "interpolations": ["bicubic", "bicubic"],
        "means": [[0.485, 0.456, 0.406], [0.5, 0.5, 0.5]],
        "processor_class": "PrismaticProcessor",
        "stds": [[0.229, 0.224, 0.225], [0.5, 0.5, 0.5]],
        "tvf_crop_params": [{"output_size": [img, img]}, {"output_size": [img, img]}],
        "tvf_do_letterbox": False,
        "tvf_letterbox_fill": None,
        # the bf16-rounded means/stds TVF.normalize uses (processing_prismatic.py:129-140)
        "tvf_normalize_params": [
            {"inplace": False, "mean": [0.484375, 0.455078125, 0.40625],
             "std": [0.228515625, 0.2236328125, 0.224609375]},
            {"inplace": False, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        ],
        "tvf_resize_params": [
            {"antialias": True, "interpolation": 3, "max_size": None, "size": [img, img]},
            {"antialias": True, "interpolation": 3, "max_size": None, "size": [img, img]},
        ],
        "use_fused_vision_backbone": True,
    }


def dataset_statistics(spec, dr):
    A, Pd = spec["action_dim"], spec["proprio_dim"]

    def stats(n, mask):
        lo = dr.uniform((n,), -1.0, -0.2)
        hi = dr.uniform((n,), 0.2, 1.0)
        s = {"max": (hi * 1.05).tolist(), "mean": ((lo + hi) / 2).tolist(), "min": (lo * 1.05).tolist(),
             "q01": lo.tolist(), "q99": hi.tolist(), "std": dr.uniform((n,), 0.1, 0.6).tolist()}
        if mask:
            s = dict({"mask": [True] * (n - 1) + [False]}, **s)
        return s

    return {"tiny_dataset": {"action": stats(A, True), "num_trajectories": 3, "num_transitions": 120,
                             "proprio": stats(Pd, False)}}


def batch_tensors(spec, dr):
    b = spec["batch"]
    N, V, Pn, Q = b["n"], b["views"], b["prompt"], spec["queries"]
    img, A, C, Vocab = spec["image_size"], spec["action_dim"], spec["chunk"], spec["llm"]["vocab"]
    D = spec["llm"]["hidden"]
    images = dr.ints((N, V, img, img, 3), 0, 256).to(torch.uint8)
    proprio = dr.uniform((N, spec["proprio_dim"]), -1.0, 1.0)
    actions = dr.uniform((N, C * A), -1.0, 1.0)
    # prompt ids from the low part of the vocabulary, placeholders from its top (as the action tokens
    # are the last ids of Qwen's vocabulary); the placeholders' embeddings are replaced by the queries
    top = min(8, Vocab // 4)
    prompt = dr.ints((N, Pn), 3, Vocab - top)
    place = dr.ints((N, Q), Vocab - top, Vocab)
    bos = torch.full((N, 1), spec["bos_token_id"], dtype=torch.int64)
    ids = torch.cat([bos, prompt, place], dim=1).to(torch.int32)
    noise = dr.normal((C, A * D), 0.02)
    return OrderedDict(images=images, proprio=proprio, actions=actions, input_ids=ids, head_noise=noise)


def write_tiny_vla(out_dir, spec=None):
    spec = resolve_spec(spec)
    os.makedirs(out_dir, exist_ok=True)
    dtype = {"F32": torch.float32, "BF16": torch.bfloat16}[spec["dtype"]]
    # independent streams, so that changing one part of the spec leaves the others' values alone
    seed = int(spec["seed"])
    model = model_tensors(spec, _Draw(seed * 1000 + 1))
    write_safetensors(os.path.join(out_dir, "model.safetensors"),
                      {k: v.to(dtype) for k, v in model.items()}, {"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config_json(spec), f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump(preprocessor_json(spec), f, indent=2)
        f.write("\n")
    head, proprio = head_state(spec, _Draw(seed * 1000 + 2), dtype)
    torch.save(head, os.path.join(out_dir, "action_head--0_checkpoint.pt"))
    torch.save(proprio, os.path.join(out_dir, "proprio_projector--0_checkpoint.pt"))
    with open(os.path.join(out_dir, "dataset_statistics.json"), "w") as f:
        json.dump(dataset_statistics(spec, _Draw(seed * 1000 + 3)), f, indent=2)
    write_safetensors(os.path.join(out_dir, "batch.safetensors"), batch_tensors(spec, _Draw(seed * 1000 + 4)))
    std_b = spec["lora"]["std_b"]
    write_safetensors(os.path.join(out_dir, "lora.safetensors"), lora_tensors(spec, _Draw(seed * 1000 + 5), std_b),
                      {"format": "pt"})
    anchor_draw = _Draw(seed * 1000 + 6)
    anchor = lora_tensors(spec, anchor_draw, std_b)
    anchor["action_queries.weight"] = anchor_draw.normal((spec["queries"], spec["llm"]["hidden"]), spec["std"])
    write_safetensors(os.path.join(out_dir, "anchor.safetensors"), anchor, {"format": "pt"})
    with open(os.path.join(out_dir, "tiny_spec.json"), "w") as f:
        json.dump(spec, f, indent=2)
    return spec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--spec", default=None, help="JSON object overriding DEFAULT_SPEC keys (nested dicts merge)")
    ap.add_argument("--bf16", action="store_true", help="store model.safetensors and the .pt files as BF16")
    a = ap.parse_args(argv)
    spec = json.loads(a.spec) if a.spec else {}
    if a.seed is not None:
        spec["seed"] = a.seed
    if a.bf16:
        spec["dtype"] = "BF16"
    out = write_tiny_vla(a.out_dir, spec)
    print(json.dumps({"out_dir": a.out_dir, "seed": out["seed"], "dtype": out["dtype"]}))


if __name__ == "__main__":
    main()
