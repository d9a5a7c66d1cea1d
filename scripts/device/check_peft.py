#!/usr/bin/env python3
"""transformers + PEFT against craftgrad (issue #18 item 3): loads the adapter of a craftgrad
checkpoint with PeftModel.from_pretrained onto AutoModelForCausalLM.from_pretrained(base),
computes the action loss and the retention loss of the batch peft-run.mjs wrote, as the
README defines them, and compares them with craftgrad's (relative error <= 1e-5).

    node scripts/device/peft-run.mjs WORK cuda > peft.json
    python3 scripts/device/check_peft.py peft.json

The sequence is [prefix (P); embed(input_ids) (S); action_queries (Q)] at positions 0..T-1
with the causal mask; hidden_states[m] is the output of layer m and hidden_states[L] the
final norm's, as transformers returns them. f = concat(pool(hidden_states[m] over the
prefix (or prefix and prompt)), pool(hidden_states[L] at the queries)); the head maps each
query's last hidden state to one action step, W2 gelu_tanh(W1 h + b1) + b2; the action loss
is the mean |out - actions|, the retention loss the mean (f - f_anchor)^2 with f_anchor from
the anchor's LoRA factors and queries (anchor.safetensors, loaded as a second adapter).
Exits 1 on a difference, 2 when the packages are missing.
"""
import json
import os
import shutil
import sys
import tempfile

try:
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM
except ImportError as e:  # the GPU machine has them; say what is missing elsewhere
    print(f'check_peft: {e} (needs torch, transformers, peft and safetensors)', file=sys.stderr)
    sys.exit(2)

TOLERANCE = 1e-5


def load_base(model_dir):
    base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation='eager')
    return base.eval()


def adapter_from_anchor(checkpoint, out_dir):
    """An adapter directory holding the anchor's LoRA factors (the checkpoint's config)."""
    anchor = load_file(os.path.join(checkpoint, 'anchor.safetensors'))
    lora = {k: v.contiguous() for k, v in anchor.items() if '.lora_' in k}
    os.makedirs(out_dir, exist_ok=True)
    save_file(lora, os.path.join(out_dir, 'adapter_model.safetensors'), metadata={'format': 'pt'})
    shutil.copy(os.path.join(checkpoint, 'adapter', 'adapter_config.json'), out_dir)
    return anchor['action_queries']


def pool(x, how):
    return x.mean(dim=1) if how == 'mean' else x.max(dim=1).values


@torch.no_grad()
def forward(model, queries, batch, pol):
    B, P, S, Q = batch['size'], pol['P'], pol['S'], pol['Q']
    D = queries.shape[1]
    parts = []
    if P > 0:
        parts.append(torch.tensor(batch['prefix'], dtype=torch.float32).reshape(B, P, D))
    if S > 0:
        ids = torch.tensor(batch['input_ids'], dtype=torch.long).reshape(B, S)
        parts.append(model.get_input_embeddings()(ids))
    parts.append(queries.reshape(1, Q, D).expand(B, Q, D))
    x = torch.cat(parts, dim=1)
    T = x.shape[1]
    out = model(inputs_embeds=x, position_ids=torch.arange(T).unsqueeze(0).expand(B, T), output_hidden_states=True)
    hs = out.hidden_states
    span = P + S if pol['bridgeSpan'] == 'prefix+prompt' else P
    raw = pool(hs[pol['bridgeLayer']][:, :span], pol['pooling'])
    q_rows = hs[-1][:, P + S:]
    aq = pool(q_rows, pol['pooling'])
    f = {'concat': torch.cat([raw, aq], dim=1), 'aq_only': aq, 'raw_only': raw}[pol['anchorType']]
    return f, q_rows


def main():
    if len(sys.argv) != 2:
        print('usage: check_peft.py PEFT_JSON (from scripts/device/peft-run.mjs)', file=sys.stderr)
        return 2
    with open(sys.argv[1]) as fh:
        run = json.load(fh)
    pol, batch, checkpoint = run['policy'], run['batch'], run['checkpoint']
    policy = load_file(os.path.join(checkpoint, 'policy.safetensors'))

    model = PeftModel.from_pretrained(load_base(run['model']), os.path.join(checkpoint, 'adapter')).eval()
    f, q_rows = forward(model, policy['action_queries'], batch, pol)
    with torch.no_grad():
        h = torch.nn.functional.gelu(q_rows @ policy['head.fc1.weight'].T + policy['head.fc1.bias'], approximate='tanh')
        actions = h @ policy['head.fc2.weight'].T + policy['head.fc2.bias']
    target = torch.tensor(batch['actions'], dtype=torch.float32).reshape(actions.shape)
    action_loss = (actions - target).abs().double().mean().item()

    tmp = tempfile.mkdtemp(prefix='craftgrad-anchor-')
    try:
        anchor_queries = adapter_from_anchor(checkpoint, tmp)
        anchor_model = PeftModel.from_pretrained(load_base(run['model']), tmp).eval()
        f_anchor, _ = forward(anchor_model, anchor_queries, batch, pol)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    retention_loss = (f.double() - f_anchor.double()).pow(2).mean().item()

    rc = 0
    rows = [('action loss', action_loss, run['craftgrad']['actionLoss']), ('retention loss', retention_loss, run['craftgrad']['retentionLoss'])]
    for name, theirs, ours in rows:
        rel = abs(theirs - ours) / max(abs(ours), 1e-30)
        ok = rel <= TOLERANCE
        rc |= 0 if ok else 1
        print(f'check_peft: {name}: transformers+peft {theirs:.9g}, craftgrad ({run["device"]} run, CPU eval) {ours:.9g}, '
              f'relative error {rel:.2e} ({"ok" if ok else f"over {TOLERANCE:g}"})')
    return rc


if __name__ == '__main__':
    sys.exit(main())
