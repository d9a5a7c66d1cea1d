# The built-in model's forward from a craftgrad checkpoint, with numpy only.
import json, sys
import numpy as np

def read_safetensors(path):  # u64 header length, JSON header, then the raw tensors
    buf = open(path, "rb").read()
    n = int.from_bytes(buf[:8], "little")
    header = {k: v for k, v in json.loads(buf[8:8 + n]).items() if k != "__metadata__"}
    return {k: np.frombuffer(buf, "<f4", int(np.prod(v["shape"])), 8 + n + v["data_offsets"][0]).reshape(v["shape"])
            for k, v in header.items()}  # craftgrad's checkpoint tensors are all F32

def gelu(x):  # tanh form, like torch.nn.GELU(approximate="tanh")
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))

def predict(ckpt, tokens):  # tokens (batch, T, D) -> action chunks (batch, K, A)
    c = json.load(open(f"{ckpt}/state.json"))["model"]["config"]
    p, base = read_safetensors(f"{ckpt}/model.safetensors"), read_safetensors(f"{ckpt}/base.safetensors")
    pool = (lambda h: h.max(axis=1)) if c["pooling"] == "max" else (lambda h: h.mean(axis=1))
    h = tokens.astype(np.float64)
    for l in range(c["blocks"]):  # h <- h + gelu((W + (alpha/r) B A) h + b)
        W = base[f"blocks.{l}.weight"] + c["alpha"] / c["rank"] * p[f"blocks.{l}.lora_B"] @ p[f"blocks.{l}.lora_A"]
        h = h + gelu(h @ W.T + base[f"blocks.{l}.bias"])
        if l + 1 == c["bridgeBlock"]: raw = pool(h)  # C_R
    f = {"concat": np.concatenate([raw, pool(h)], -1), "aq_only": pool(h), "raw_only": raw}[c["anchorType"]]
    y = gelu(f @ p["head.fc1.weight"].T + p["head.fc1.bias"]) @ p["head.fc2.weight"].T + p["head.fc2.bias"]
    return y.reshape(len(tokens), c["chunk"], c["actionDims"])

if __name__ == "__main__":  # python3 forward_from_checkpoint.py runs/NAME/checkpoints/step-001500 tokens.npy
    print(json.dumps(predict(sys.argv[1], np.load(sys.argv[2])).tolist()))
