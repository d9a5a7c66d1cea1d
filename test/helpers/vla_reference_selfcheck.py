#!/usr/bin/env python3
"""Checks test/helpers/vla_reference.py against itself and, where their source is on this machine,
against upstream's modules.

Always:
  - the file formats: model.safetensors (F32 and BF16) read back bit-exact against the generator's
    values; the .pt files' keys carry `module.`; the CLI's output equals the in-process result;
  - autograd against central finite differences (float64, both losses) on a few elements of every
    kind of trainable tensor (Conv2d and Linear LoRA factors of both towers, the projector and the
    decoder, action_queries, the proprio projector, every kind of head parameter);
  - structural facts: the retention loss does not reach the head or the proprio projector; with
    span=vision/raw_only it does not reach the queries nor the decoder layers >= the bridge layer;
    the causal LLM leaves earlier positions alone; samples do not interact (the batch gradient is
    the mean of the per-sample gradients);
  - own-reading checks: the Conv2d LoRA equals a linear LoRA on the patch matrix; the Qwen2 RoPE
    is a rotation of (j, j + hd/2) pairs whose scores depend on relative positions only; the pixels
    are float32 arithmetic.
Where the upstream sources are found (VLA_ADAPTER_SRC, default /work/up/OpenHelix-Team+VLA-Adapter;
TIMM_VIT_SRC, default /tmp/vit0910.py), otherwise skipped with a printed reason:
  - upstream's L1RegressionActionHead.predict_action (with MLPResNet / MLPResNetBlock_Pro, exec'd
    from action_heads.py with prismatic.vla.constants stubbed) and ProprioProjector, fed the
    multi-layer hidden states gathered with upstream's label masks (train_utils.py), against the
    reference's head, with and without the perturbation and proprio;
  - upstream's PrismaticProjector, _replace_input_embeddings and _build_multimodal_attention
    (extracted from modeling_prismatic.py with ast) against the reference's projector and sequence;
  - timm v0.9.10's Attention / LayerScale / Block and VisionTransformer._pos_embed /
    get_intermediate_layers (extracted with ast; PatchEmbed and Mlp stubbed) against the towers.

Usage: python3 vla_reference_selfcheck.py [WORK_DIR]   (prints one line per check; exit 1 on failure)
"""
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_tiny_vla as mk  # noqa: E402
import vla_reference as vr  # noqa: E402

F64 = torch.float64
FAILURES = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        FAILURES.append(what)


def skip(what, why):
    print(f"skip {what}: {why}", flush=True)


def maxdiff(a, b):
    return float((a.to(F64) - b.to(F64)).abs().max())


# ---------------------------------------------------------------------------------------------

FD_KINDS = [
    "base_model.model.vision_backbone.featurizer.patch_embed.proj.lora_A.weight",
    "base_model.model.vision_backbone.featurizer.patch_embed.proj.lora_B.weight",
    "base_model.model.vision_backbone.featurizer.blocks.0.attn.qkv.lora_A.weight",
    "base_model.model.vision_backbone.featurizer.blocks.1.mlp.fc2.lora_B.weight",
    "base_model.model.vision_backbone.fused_featurizer.patch_embed.proj.lora_B.weight",
    "base_model.model.vision_backbone.fused_featurizer.blocks.1.attn.proj.lora_A.weight",
    "base_model.model.vision_backbone.fused_featurizer.blocks.0.mlp.fc1.lora_B.weight",
    "base_model.model.projector.fc1.lora_A.weight",
    "base_model.model.projector.fc2.lora_B.weight",
    "base_model.model.projector.fc3.lora_B.weight",
    "base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.weight",
    "base_model.model.language_model.model.layers.0.self_attn.k_proj.lora_B.weight",
    "base_model.model.language_model.model.layers.1.self_attn.v_proj.lora_A.weight",
    "base_model.model.language_model.model.layers.1.self_attn.o_proj.lora_B.weight",
    "base_model.model.language_model.model.layers.2.mlp.gate_proj.lora_A.weight",
    "base_model.model.language_model.model.layers.2.mlp.up_proj.lora_B.weight",
    "base_model.model.language_model.model.layers.2.mlp.down_proj.lora_A.weight",
    "action_queries.weight",
    "proprio_projector.fc1.weight",
    "proprio_projector.fc2.bias",
    "action_head.model.layer_norm1.weight",
    "action_head.model.fc1.weight",
    "action_head.model.mlp_resnet_blocks.0.gating_factor",
    "action_head.model.mlp_resnet_blocks.0.q_proj.weight",
    "action_head.model.mlp_resnet_blocks.0.k_self.bias",
    "action_head.model.mlp_resnet_blocks.1.v_self.weight",
    "action_head.model.mlp_resnet_blocks.1.k_adapter.weight",
    "action_head.model.mlp_resnet_blocks.2.v_adapter.bias",
    "action_head.model.mlp_resnet_blocks.2.k_task.weight",
    "action_head.model.mlp_resnet_blocks.1.v_task.weight",
    "action_head.model.mlp_resnet_blocks.0.o_proj.weight",
    "action_head.model.mlp_resnet_blocks.2.ffn.0.weight",
    "action_head.model.mlp_resnet_blocks.1.ffn.1.bias",
    "action_head.model.layer_norm2.bias",
    "action_head.model.fc2.weight",
]


def finite_differences(ref, batch, lora, anchor, opts, label, eps=1e-6, rtol=1e-6, atol=1e-9):
    out, meta = ref.compute(batch, lora, anchor, opts)
    o = ref.resolve_options(dict(opts), batch, lora)
    mods, _, _ = ref.split_lora(lora)
    state = ref.trainables(lora, o["use_proprio"])
    anchor_feats = out.get("anchor_features")
    tags = ["action"] + (["retention"] if o["mode"] == "craft" else [])
    g = torch.Generator().manual_seed(7)
    worst, n = 0.0, 0
    for name in FD_KINDS:
        if name not in state:
            continue
        t = state[name]
        flat = t.view(-1)
        picks = {int(torch.randint(flat.numel(), (1,), generator=g))}
        picks.add(int(out["action_grad/" + name].abs().reshape(-1).argmax()))
        if "retention" in tags:
            picks.add(int(out["retention_grad/" + name].abs().reshape(-1).argmax()))
        for i in sorted(picks):
            x0 = float(flat[i])
            with torch.no_grad():
                flat[i] = x0 + eps
                up = ref.losses(state, mods, batch, o, anchor_feats)
                flat[i] = x0 - eps
                dn = ref.losses(state, mods, batch, o, anchor_feats)
                flat[i] = x0
            for tag in tags:
                fd = (float(up[tag + "_loss"]) - float(dn[tag + "_loss"])) / (2 * eps)
                ad = float(out[f"{tag}_grad/{name}"].reshape(-1)[i])
                err = abs(fd - ad)
                n += 1
                if err > atol + rtol * max(abs(ad), abs(fd)):
                    check(False, f"{label}: d{tag}_loss/d{name}[{i}] autograd {ad:.12e} vs finite difference {fd:.12e}")
                worst = max(worst, err / (atol + rtol * max(abs(ad), abs(fd), 1e-300)))
    check(worst <= 1.0, f"{label}: autograd = central finite differences on {n} (element, loss) pairs "
                        f"(worst error {worst:.2g} of the tolerance {atol:g} + {rtol:g}|g|)")
    return out, meta


def structural(ref, batch, lora, anchor, label):
    # retention never reaches the head nor the proprio projector; vision/raw_only never the queries
    # nor the decoder layers >= m (hs[m] is layer m-1's output)
    opts = {"head_noise": "batch", "span": "vision", "anchor": "raw_only", "bridge_layer": 1}
    out, meta = ref.compute(batch, lora, anchor, opts)
    zero = lambda n: float(out["retention_grad/" + n].abs().max()) == 0.0
    names = meta["trainables"]
    check(all(zero(n) for n in names if n.startswith(("action_head.", "proprio_projector."))),
          f"{label}: the retention gradient of the head and the proprio projector is zero")
    check(zero("action_queries.weight"), f"{label}: raw_only over the vision tokens: no retention gradient for the queries")
    deep = [n for n in names if ".language_model.model.layers." in n and int(n.split(".layers.")[1].split(".")[0]) >= 1]
    check(deep and all(zero(n) for n in deep), f"{label}: bridge layer 1: decoder layers >= 1 get no retention gradient")
    shallow = [n for n in names if ".layers.0." in n or "vision_backbone" in n or ".projector." in n]
    check(all(not zero(n) for n in shallow), f"{label}: ... while the towers, projector and layer 0 do")
    check(all(float(out["action_grad/" + n].abs().max()) > 0 for n in names),
          f"{label}: the action loss reaches every trainable tensor")
    # causality: moving the queries changes nothing before them
    o = ref.resolve_options({}, batch, lora)
    mods, _, _ = ref.split_lora(lora)
    st = ref.trainables(lora, True)
    with torch.no_grad():
        a = ref.forward(st, mods, batch, o)
        st["action_queries.weight"] += 0.3
        b = ref.forward(st, mods, batch, o)
    T, Q = a["T"], ref.Q
    before = max(maxdiff(x[:, :T - Q], y[:, :T - Q]) for x, y in zip(a["hs"], b["hs"]))
    after = maxdiff(a["hs"][-1][:, T - Q:], b["hs"][-1][:, T - Q:])
    check(before == 0.0 and after > 0, f"{label}: causal: the queries change hs only at T-Q..T-1 ({after:.2g} there)")
    # samples do not interact: the batch gradient is the mean of the per-sample gradients
    opts = {"head_noise": "batch", "span": "vision+prompt", "pooling": "max"}
    full, _ = ref.compute(batch, lora, anchor, opts)
    N = batch["images"].shape[0]
    parts = []
    for i in range(N):
        one = {k: (v[i:i + 1] if k != "head_noise" else v) for k, v in batch.items()}
        parts.append(ref.compute(one, lora, anchor, opts)[0])
    worst = 0.0
    for k, v in full.items():
        if "_grad/" in k or k.endswith("_loss"):
            mean = sum(p[k] for p in parts) / N
            worst = max(worst, maxdiff(v, mean) / (1e-12 + float(v.abs().max())))
    check(worst < 1e-10, f"{label}: losses and gradients of the batch = the mean over its samples (rel {worst:.2g})")


def own_reading(ref, batch, lora):
    # Conv2d LoRA (A: Conv2d(3, r, p, stride p), B: Conv2d(r, D, 1)) = a linear LoRA on the patch matrix
    mods, _, _ = ref.split_lora(lora)
    a, b = mods["vision_backbone.featurizer.patch_embed.proj"]
    A, B = lora[a].to(F64), lora[b].to(F64)
    x = ref.pixels(batch["images"], 1)[0][0]
    p = ref.towers[0]["patch_size"]
    conv = F.conv2d(F.conv2d(x, A, stride=p), B).flatten(2).transpose(1, 2)
    patches = F.unfold(x, p, stride=p).transpose(1, 2)            # (N, n, 3 p p), c-major like the kernel
    lin = patches @ A.reshape(A.shape[0], -1).T @ B.reshape(B.shape[0], -1).T
    check(maxdiff(conv, lin) < 1e-12, "own reading: the Conv2d LoRA is a linear LoRA on the row-major patch matrix")
    # Qwen2 RoPE: rotates the pairs (j, j + hd/2) by t * theta^(-2j/hd); scores depend on t - s only
    T, hd = 12, ref.hd
    cos, sin = ref.rope_llm(T)
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(hd, generator=g, dtype=F64), torch.randn(hd, generator=g, dtype=F64)
    rq = ref.rope_llm_apply(q.expand(T, hd), cos, sin)
    rk = ref.rope_llm_apply(k.expand(T, hd), cos, sin)
    h = hd // 2
    zq = torch.complex(q[:h], q[h:])
    ang = torch.arange(T, dtype=F64)[:, None] / (ref.rope_theta ** (2 * torch.arange(h, dtype=F64) / hd))
    want = zq * torch.exp(1j * ang)
    check(maxdiff(torch.cat([want.real, want.imag], -1), rq) < 1e-12, "own reading: Qwen2 RoPE = complex rotation of (x_j, x_{j+hd/2})")
    s = rq @ rk.T
    rel = max(float((s.diagonal(d) - s.diagonal(d)[0]).abs().max()) for d in range(-T + 1, T))
    check(rel < 1e-12, "own reading: RoPE scores depend on the relative position only")
    # pixels: u8/255 then (x - mean) / std in float32, exactly
    px = ref.pixels(batch["images"], 1)[0]
    u = batch["images"][:, 0].permute(0, 3, 1, 2).double()
    for j, (mean, std) in enumerate(ref.normalize):
        exact = (u / 255 - torch.tensor(mean, dtype=F64).view(1, 3, 1, 1)) / torch.tensor(std, dtype=F64).view(1, 3, 1, 1)
        d = maxdiff(px[j], exact)
        same32 = torch.equal(px[j].float().double(), px[j])
        check(same32 and 0 < d < 1e-5 if j == 0 else same32 and d < 1e-5,
              f"own reading: tower {j}'s pixels are float32 values (|float64 formula - them| = {d:.2g})")


# ---------------------------------------------------------------------------------------------
# upstream

def stub_constants(ref, spec):
    vocab = spec["llm"]["vocab"]
    top = min(8, vocab // 4)
    consts = types.ModuleType("prismatic.vla.constants")
    consts.IGNORE_INDEX = -100
    consts.ACTION_TOKEN_BEGIN_IDX = vocab - top - 1     # the placeholders (the vocabulary's top ids) are above it
    consts.STOP_INDEX = 2
    consts.NUM_TOKENS = ref.Q
    consts.NUM_ACTIONS_CHUNK = spec["chunk"]
    consts.ACTION_DIM = ref.A
    consts.PROPRIO_DIM = spec["proprio_dim"]
    for name in ("prismatic", "prismatic.vla"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["prismatic.vla.constants"] = consts
    return consts


def exec_file(path):
    ns = {"__name__": os.path.basename(path)[:-3]}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), ns)
    return ns


def extract(path, names, ns):
    """exec the top-level classes/functions `names` of `path` (and methods Class.method) into ns."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    nodes = []
    for want in names:
        cls, _, meth = want.partition(".")
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == cls:
                if meth:
                    for sub in node.body:
                        if isinstance(sub, ast.FunctionDef) and sub.name == meth:
                            sub.decorator_list = []
                            nodes.append(sub)
                else:
                    nodes.append(node)
    mod = ast.Module(body=nodes, type_ignores=[])
    exec(compile(mod, path, "exec"), ns)
    return ns


def upstream_head(ref, spec, batch, lora, src):
    ah = os.path.join(src, "prismatic/models/action_heads.py")
    consts = stub_constants(ref, spec)
    heads = exec_file(ah)
    proj = exec_file(os.path.join(src, "prismatic/models/projectors.py"))
    tu = exec_file(os.path.join(src, "prismatic/training/train_utils.py"))
    D, A, P_views = ref.D, ref.A, None
    for views in sorted({1, batch["images"].shape[1]}):
        for use_proprio, noise_on in ((True, False), (True, True), (False, True)):
            o = ref.resolve_options({"views": views, "use_proprio": use_proprio, "head_noise": "batch" if noise_on else None,
                                     "mode": "baseline"}, batch, lora)
            mods, _, _ = ref.split_lora(lora)
            st = ref.trainables(lora, True)
            # proprio through bf16, as predict_action casts it (action_heads.py:51): make it exact
            b2 = dict(batch)
            b2["proprio"] = batch["proprio"].to(torch.bfloat16).float()
            with torch.no_grad():
                f = ref.forward(st, mods, b2, o)
            hs, P, T = f["hs"], f["P"], f["T"]
            # upstream's gather (finetune.py:396-409) with its label masks (train_utils.py)
            ids = batch["input_ids"].long()
            S = ids.shape[1]
            labels = ids.clone()
            labels[:, :S - ref.Q] = consts.IGNORE_INDEX
            gt = labels[:, 1:]
            mask = tu["get_current_action_mask"](gt) | tu["get_next_actions_mask"](gt)
            Bn = ids.shape[0]
            layers = []
            for item in hs:
                text = item[:, P:-1]
                act = text[mask].reshape(Bn, 1, ref.Q, -1)
                task = item[:, :P].reshape(Bn, 1, P, -1)
                layers.append(torch.cat((task, act), 2))
            mlhs = torch.cat(layers, dim=1)
            head = heads["L1RegressionActionHead"](input_dim=D, hidden_dim=D, action_dim=A, num_task_tokens=P, use_pro_version=True)
            head.model = heads["MLPResNet"](num_blocks=ref.NB, input_dim=D * A, hidden_dim=D, output_dim=A, use_pro_version=True)
            head = head.double()
            head.load_state_dict(OrderedDict((k, v) for k, v in ref.head.items()), strict=True)
            pp = proj["ProprioProjector"](llm_dim=D, proprio_dim=spec["proprio_dim"]).double()
            pp.load_state_dict(ref.proprio, strict=True)
            noise = o["noise"]
            heads["learnable_random_perturbations"] = lambda seq_len, dim, device, dtype: noise.to(dtype)
            results = []
            for rope64 in (False, True):
                if rope64:   # upstream computes inv_freq in float32 (action_heads.py:149); the reference in float64
                    for blk in head.model.mlp_resnet_blocks:
                        hd = blk.head_dim
                        blk.rope.inv_freq = 1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=F64) / hd))
                if use_proprio:
                    with torch.no_grad():
                        up = head.predict_action(mlhs, proprio=b2["proprio"], proprio_projector=lambda x: pp(x.double()),
                                                 phase="Training" if noise_on else "Inference")
                else:
                    # predict_action needs proprio (it concatenates p); without it, call MLPResNet as the
                    # reference's use_proprio=false reads it: h_adapter = h_a alone
                    h_t, h_a = mlhs[:, :, :P], mlhs[:, :, P:]
                    x = torch.zeros(Bn, o["chunk"], A * D, dtype=F64) + noise
                    blocks = head.model.mlp_resnet_blocks
                    orig = [blk.forward for blk in blocks]
                    try:
                        for blk in blocks:
                            def fwd(x, h_a=None, h_t=None, p=None, _blk=blk):
                                saved = torch.cat
                                def cat_no_p(ts, dim=0):   # torch.cat((h_a, None)) -> h_a
                                    ts = [t for t in ts if t is not None]
                                    return saved(ts, dim=dim)
                                heads["torch"].cat = cat_no_p
                                try:
                                    return type(_blk).forward(_blk, x, h_a=h_a, h_t=h_t, p=None)
                                finally:
                                    heads["torch"].cat = saved
                            blk.forward = fwd
                        with torch.no_grad():
                            up = head.model(x, h_a=h_a, h_t=h_t, p=None)
                    finally:
                        for blk, fw in zip(blocks, orig):
                            blk.forward = fw
                results.append(maxdiff(up, f["pred"]))
            d32, d64 = results
            check(d64 < 1e-12 and d32 < 1e-6,
                  f"upstream head: predict_action (MLPResNet + MLPResNetBlock_Pro, {ref.NB} blocks) = the reference's "
                  f"(views {views}, proprio {use_proprio}, noise {noise_on}): max |diff| {d64:.2g} with the RoPE "
                  f"inv_freq in float64, {d32:.2g} with upstream's float32 tables")


def upstream_vlm(ref, batch, lora, src):
    mp = os.path.join(src, "prismatic/extern/hf/modeling_prismatic.py")
    tu = exec_file(os.path.join(src, "prismatic/training/train_utils.py"))
    ns = {"torch": torch, "nn": nn, "get_current_action_mask": tu["get_current_action_mask"],
          "get_next_actions_mask": tu["get_next_actions_mask"]}
    extract(mp, ["PrismaticProjector", "PrismaticForConditionalGeneration._replace_input_embeddings",
                 "PrismaticForConditionalGeneration._build_multimodal_attention",
                 "PrismaticForConditionalGeneration._process_action_masks"], ns)
    vis_dim = ref.towers[0]["embed_dim"] + ref.towers[1]["embed_dim"]
    pj = ns["PrismaticProjector"](True, vision_dim=vis_dim, llm_dim=ref.D).double()
    pj.load_state_dict({k[len("projector."):]: v for k, v in ref.w.items() if k.startswith("projector.")}, strict=True)
    g = torch.Generator().manual_seed(5)
    f = torch.randn(2, 5, vis_dim, generator=g, dtype=F64)
    with torch.no_grad():
        d = maxdiff(pj(f), ref.projector(f, {}, {}, 0.0))
    check(d < 1e-12, f"upstream PrismaticProjector (fused) = the reference's projector: {d:.2g}")
    # the sequence: placeholders replaced by the queries, vision inserted after BOS
    ids = batch["input_ids"].long()
    S = ids.shape[1]
    labels = ids.clone()
    labels[:, :S - ref.Q] = -100
    E = ref.w["language_model.model.embed_tokens.weight"]
    queries = torch.randn(ref.Q, ref.D, generator=g, dtype=F64)
    vis = torch.randn(ids.shape[0], 8, ref.D, generator=g, dtype=F64)
    mask = ns["_process_action_masks"](None, labels)
    emb = ns["_replace_input_embeddings"](None, E[ids], mask, queries.view(1, ref.Q, -1).repeat(ids.shape[0], 1, 1))
    mm, _ = ns["_build_multimodal_attention"](None, emb, vis, None)
    check(torch.equal(mm, ref.sequence(batch["input_ids"], vis, queries)),
          "upstream _replace_input_embeddings + _build_multimodal_attention = the reference's sequence [BOS; vision; prompt; queries]")


def timm_towers(ref, batch, vit):
    import typing
    ns = {"torch": torch, "nn": nn, "F": F, "Final": typing.Final, "Optional": typing.Optional, "Union": typing.Union,
          "Sequence": typing.Sequence, "Tuple": typing.Tuple, "use_fused_attn": lambda: False}

    class Mlp(nn.Module):   # timm.layers.Mlp as Block uses it (fc1, act, fc2; no norm, no dropout)
        def __init__(self, in_features, hidden_features, act_layer=nn.GELU, drop=0.0):
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(in_features, hidden_features), act_layer(), nn.Linear(hidden_features, in_features)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class PatchEmbed(nn.Module):   # timm.layers.PatchEmbed, NCHW -> flatten(2).transpose(1, 2)
        def __init__(self, D, p):
            super().__init__()
            self.proj = nn.Conv2d(3, D, p, stride=p)

        def forward(self, x):
            return self.proj(x).flatten(2).transpose(1, 2)
    ns.update(Mlp=Mlp, DropPath=lambda p: nn.Identity())
    extract(vit, ["Attention", "LayerScale", "Block", "VisionTransformer._pos_embed",
                  "VisionTransformer._intermediate_layers", "VisionTransformer.get_intermediate_layers"], ns)

    class ViT(nn.Module):
        _pos_embed = ns["_pos_embed"]
        _intermediate_layers = ns["_intermediate_layers"]
        get_intermediate_layers = ns["get_intermediate_layers"]

    px = ref.pixels(batch["images"], 1)[0]
    for which, (pre, t) in enumerate(zip(vr.TOWER_PREFIXES, ref.towers)):
        D, depth = t["embed_dim"], t["depth"]
        m = ViT()
        m.dynamic_img_size = False
        m.no_embed_class = bool(t["reg_tokens"])   # DINOv2 reg4: True; SigLIP: False (no prefix tokens either way)
        m.num_prefix_tokens = t["prefix"]
        m.patch_embed = PatchEmbed(D, t["patch_size"])
        m.pos_drop = m.patch_drop = m.norm_pre = nn.Identity()
        m.cls_token = nn.Parameter(torch.zeros(1, 1, D)) if t["class_token"] else None
        m.reg_token = nn.Parameter(torch.zeros(1, t["reg_tokens"], D)) if t["reg_tokens"] else None
        m.pos_embed = nn.Parameter(torch.zeros(1, t["grid"] ** 2, D))
        m.blocks = nn.Sequential(*[ns["Block"](D, t["num_heads"], mlp_ratio=t["mlp_hidden"] / D, qkv_bias=True,
                                               init_values=1e-5 if t["layer_scale"] else None,
                                               norm_layer=lambda d: nn.LayerNorm(d, eps=1e-6))
                                   for _ in range(depth)])
        for blk in m.blocks:   # int(D * mlp_ratio) may round below mlp_hidden
            blk.mlp = Mlp(D, t["mlp_hidden"])
        sd = {}
        for k, v in ref.w.items():
            if k.startswith(pre) and not k[len(pre):].startswith(("attn_pool.", "norm.")):
                sd[k[len(pre):].replace("scale_factor", "gamma")] = v   # ls_apply_patch renames gamma
        m = m.double()
        m.load_state_dict(sd, strict=True)
        with torch.no_grad():
            (got,) = m.get_intermediate_layers(px[which], n={depth - 2})
            want = ref.tower(px[which], which, {}, {}, 0.0)
        d = maxdiff(got, want)
        check(d < 1e-12, f"timm v0.9.10 Block/_pos_embed/get_intermediate_layers(n={{depth-2}}) = the reference's tower {which}: {d:.2g}")


# ---------------------------------------------------------------------------------------------

def formats(d, spec):
    t, meta = vr.read_safetensors(os.path.join(d, "model.safetensors"))
    want = mk.model_tensors(spec, mk._Draw(int(spec["seed"]) * 1000 + 1))
    dt = {"F32": torch.float32, "BF16": torch.bfloat16}[spec["dtype"]]
    same = list(t) == sorted(want) and all(torch.equal(t[k].float(), want[k].to(dt).float()) and t[k].dtype == dt for k in want)
    check(same and meta == {"format": "pt"}, f"formats: model.safetensors ({spec['dtype']}) reads back the generator's {len(want)} tensors bit-exact")
    for name in ("action_head", "proprio_projector"):
        sd = torch.load(os.path.join(d, f"{name}--0_checkpoint.pt"), weights_only=True)
        check(all(k.startswith("module.") for k in sd) and all(v.dtype == dt for v in sd.values()),
              f"formats: {name}--0_checkpoint.pt keys carry module. ({len(sd)} tensors, {spec['dtype']})")
    cfg = json.load(open(os.path.join(d, "config.json")))
    check("norm_stats" not in cfg and len(cfg["craftgrad_tiny_towers"]) == 2 and cfg["timm_model_ids"][0].startswith("vit_large_patch14_reg4_dinov2"),
          "formats: config.json has craftgrad_tiny_towers, the timm ids, no norm_stats")
    untied = not spec["llm"]["tie_word_embeddings"]
    check(("language_model.lm_head.weight" in t) == untied, f"formats: lm_head.weight present iff untied ({untied})")


def cli(d, ref_out, opts, tmp):
    out = os.path.join(tmp, "cli-out.safetensors")
    r = subprocess.run([sys.executable, os.path.join(HERE, "vla_reference.py"), "--model", d, "--batch", os.path.join(d, "batch.safetensors"),
                        "--lora", os.path.join(d, "lora.safetensors"), "--anchor", os.path.join(d, "anchor.safetensors"),
                        "--options", json.dumps(opts), "--out", out], capture_output=True, text=True)
    check(r.returncode == 0, f"CLI runs ({r.stderr.strip()[-300:]})")
    if r.returncode:
        return
    t, meta = vr.read_safetensors(out)
    dt = torch.float32 if opts.get("out_dtype") == "F32" else F64
    same = set(t) == set(ref_out) and all(t[k].dtype == dt and torch.equal(t[k], ref_out[k].to(dt)) for k in ref_out)
    info = json.loads(meta["reference"])
    check(same and isinstance(info["trainables"], list), f"CLI: {len(t)} tensors ({opts.get('out_dtype', 'F64')}) = the in-process result; metadata has the trainables")


def main():
    own_work = len(sys.argv) < 2
    work = tempfile.mkdtemp(prefix="vla-ref-") if own_work else sys.argv[1]
    src = os.environ.get("VLA_ADAPTER_SRC", "/work/up/OpenHelix-Team+VLA-Adapter")
    vit = os.environ.get("TIMM_VIT_SRC", "/tmp/vit0910.py")
    cases = [
        ("tiny-f32", {"seed": 0}, [
            {"head_noise": "batch"},
            {"head_noise": None, "span": "vision+prompt", "pooling": "max", "anchor": "concat", "bridge_layer": 1},
            {"head_noise": "batch", "anchor": "aq_only", "use_proprio": False, "alpha": 3},
        ]),
        ("tiny-bf16-untied-1view", {"seed": 1, "dtype": "BF16", "llm": {"tie_word_embeddings": False},
                                     "batch": {"n": 3, "views": 1, "prompt": 2}}, [
            {"head_noise": "batch", "anchor": "raw_only", "span": "vision+prompt", "bridge_layer": -1},
            {"mode": "baseline", "head_noise": "batch"},
        ]),
    ]
    for label, spec_in, option_sets in cases:
        d = os.path.join(work, label)
        spec = mk.write_tiny_vla(d, spec_in)
        formats(d, spec)
        ref = vr.VlaReference(d)
        batch = vr.load_batch(os.path.join(d, "batch.safetensors"))
        lora, _ = vr.read_safetensors(os.path.join(d, "lora.safetensors"))
        anchor, _ = vr.read_safetensors(os.path.join(d, "anchor.safetensors"))
        for opts in option_sets:
            out, meta = finite_differences(ref, batch, lora, anchor, opts, f"{label} {json.dumps(opts)}")
            check(all(torch.isfinite(v).all() for v in out.values()), f"{label} {json.dumps(opts)}: every output finite")
        if label == "tiny-f32":
            structural(ref, batch, lora, anchor, label)
            own_reading(ref, batch, lora)
            cli(d, ref.compute(batch, lora, anchor, {"head_noise": "batch", "out_dtype": "F32", "hidden_states": True})[0],
                {"head_noise": "batch", "out_dtype": "F32", "hidden_states": True}, work)
        if os.path.isdir(src):
            upstream_head(ref, spec, batch, lora, src)
            upstream_vlm(ref, batch, lora, src)
        else:
            skip(f"{label}: upstream head/projector/sequence", f"no VLA-Adapter source at {src} (set VLA_ADAPTER_SRC)")
        if os.path.isfile(vit):
            timm_towers(ref, batch, vit)
        else:
            skip(f"{label}: timm towers", f"no timm v0.9.10 vision_transformer.py at {vit} (set TIMM_VIT_SRC)")
    if own_work:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(FAILURES)} failure(s)")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
