#!/usr/bin/env python3
"""An independent Qwen2 byte-level BPE tokenizer, written from the slow tokenizer's algorithm
(transformers' Qwen2Tokenizer: NFC, the pre-tokenizer regex, bytes_to_unicode, rank-ordered
merges; special tokens split out first, never normalised), for test/rlds-samples.test.mjs.

Usage: python3 qwen2_bpe_reference.py MODEL_DIR < texts.json  (prints a JSON list of id lists)
MODEL_DIR holds vocab.json, merges.txt and tokenizer_config.json (added_tokens_decoder).
"""
import json
import os
import sys
import unicodedata

PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

try:
    import regex

    PAT = regex.compile(PATTERN)
    escape = regex.escape
except ImportError:  # Python's re has no \p{..}: spell the categories out from unicodedata
    import re

    def ranges(prefix):
        out, start, prev = [], None, None
        for cp in range(0x110000):
            if unicodedata.category(chr(cp)).startswith(prefix):
                if start is None:
                    start = cp
                prev = cp
            elif start is not None:
                out.append((start, prev))
                start = None
        if start is not None:
            out.append((start, prev))
        return "".join(re.escape(chr(a)) if a == b else re.escape(chr(a)) + "-" + re.escape(chr(b)) for a, b in out)

    L, N = ranges("L"), ranges("N")
    PAT = re.compile(
        PATTERN.replace("[^\\r\\n\\p{L}\\p{N}]", "[^\\r\\n" + L + N + "]")
        .replace("[^\\s\\p{L}\\p{N}]", "[^\\s" + L + N + "]")
        .replace("\\p{L}", "[" + L + "]")
        .replace("\\p{N}", "[" + N + "]")
    )
    escape = re.escape


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def main():
    d = sys.argv[1]
    vocab = json.load(open(os.path.join(d, "vocab.json"), encoding="utf-8"))
    merges = []
    with open(os.path.join(d, "merges.txt"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            line = line.rstrip("\n")
            if (i == 0 and line.startswith("#version")) or not line:
                continue
            merges.append(tuple(line.split()))
    ranks = {m: i for i, m in enumerate(merges)}
    cfg = json.load(open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8"))
    specials = {t["content"]: int(i) for i, t in cfg.get("added_tokens_decoder", {}).items()}
    b2u = bytes_to_unicode()

    def bpe(word):
        parts = list(word)
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            a, b = parts[best[1]], parts[best[1] + 1]
            out, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        return parts

    split = (regex if "regex" in globals() else re).compile("(" + "|".join(escape(s) for s in sorted(specials, key=len, reverse=True)) + ")") if specials else None

    def encode(text):
        ids = []
        for seg in (split.split(text) if split else [text]):
            if not seg:
                continue
            if seg in specials:
                ids.append(specials[seg])
                continue
            for piece in PAT.findall(unicodedata.normalize("NFC", seg)):
                for tok in bpe("".join(b2u[b] for b in piece.encode("utf-8"))):
                    ids.append(vocab[tok])
        return ids

    print(json.dumps([encode(t) for t in json.load(sys.stdin)]))


if __name__ == "__main__":
    main()
