#!/usr/bin/python3
"""Writes tests/data/models/ablation_fixtures.json: per-token next-token cross-entropy of the tiny GPT-2 and Llama
(GQA) checkpoints of tests/data/models/ with chosen sets of heads zero-ablated, for tests/test_ablation_target.cpp.

Run with Debian's Python (torch 1.13, numpy; no `transformers`):  /usr/bin/python3 tools/make_ablation_fixtures.py

The forwards are written here from the published models (GPT-2: Radford et al. 2019, as Hugging Face's
GPT2LMHeadModel computes it; Llama: Touvron et al. 2023, LlamaForCausalLM with grouped-query attention), in float64
on the stored float32 weights. Zero ablation of head h multiplies its z = softmax(q k^T / sqrt(d)) v by 0 before
the output projection (the head's contribution, not the output bias, is removed), which is what
`ablation::zero` means in include/headlens/analysis/ablation_target.hpp. The loss of token t >= 1 is
-log softmax(logits[t - 1])[ids[t]] (log_softmax in float64); token 0 has none (null). Nothing here reads headlens.
"""
import json
import math
import os
import struct

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODELS = os.path.join(ROOT, "tests", "data", "models")


def read_safetensors(path):
    """The F32 tensors of a .safetensors file: 8-byte little-endian header size, JSON header, raw data."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        begin, end = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"]).copy()).double()
    return out


def head_keep(ablated, layer, heads):
    """[heads, 1, 1] factors: 0 for an ablated head of `layer`, else 1."""
    keep = torch.ones(heads, 1, 1, dtype=torch.float64)
    for l, h in ablated:
        if l == layer:
            keep[h] = 0.0
    return keep


def causal_softmax(scores):
    t = scores.shape[-1]
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def gpt2_logits(w, cfg, ids, ablated):
    d, heads, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    hd, t = d // heads, len(ids)

    def ln(x, p):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def gelu_new(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

    x = w["wte.weight"][torch.tensor(ids)] + w["wpe.weight"][:t]
    for i in range(cfg["n_layer"]):
        p = "h.%d." % i
        a = ln(x, p + "ln_1") @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # Conv1D: x W + b
        q, k, v = (m.reshape(t, heads, hd).permute(1, 0, 2) for m in a.split(d, dim=1))
        z = causal_softmax(q @ k.transpose(1, 2) / math.sqrt(hd)) @ v  # [heads, T, hd]
        z = z * head_keep(ablated, i, heads)
        x = x + z.permute(1, 0, 2).reshape(t, d) @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = gelu_new(ln(x, p + "ln_2") @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    return ln(x, "ln_f") @ w["wte.weight"].T  # tied LM head


def llama_logits(w, cfg, ids, ablated):
    d, heads, kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, t, eps = d // heads, len(ids), cfg["rms_norm_eps"]

    def rms(x, weight):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * weight

    inv = 1.0 / cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    angles = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()

    def rope(x):  # rotate-half convention: pairs (i, i + hd/2)
        rotated = torch.cat([-x[..., hd // 2:], x[..., : hd // 2]], -1)
        return x * cos + rotated * sin

    x = w["model.embed_tokens.weight"][torch.tensor(ids)]
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        h = rms(x, w[p + "input_layernorm.weight"])
        q = rope((h @ w[p + "self_attn.q_proj.weight"].T).reshape(t, heads, hd).permute(1, 0, 2))
        k = rope((h @ w[p + "self_attn.k_proj.weight"].T).reshape(t, kv, hd).permute(1, 0, 2))
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(t, kv, hd).permute(1, 0, 2)
        group = heads // kv  # query head j reads kv head j // group
        k, v = k.repeat_interleave(group, 0), v.repeat_interleave(group, 0)
        z = causal_softmax(q @ k.transpose(1, 2) / math.sqrt(hd)) @ v
        z = z * head_keep(ablated, i, heads)
        x = x + z.permute(1, 0, 2).reshape(t, d) @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + (gate * torch.sigmoid(gate) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    return rms(x, w["model.norm.weight"]) @ w["lm_head.weight"].T


def token_losses(logits, ids):
    logp = torch.log_softmax(logits, dim=-1)
    return [None] + [float(-logp[t - 1, ids[t]]) for t in range(1, len(ids))]


def main():
    sets = [[], [[0, 1]], [[1, 3]], [[0, 0], [0, 1], [0, 2], [0, 3]], [[0, 2], [1, 0], [1, 1]]]
    out = {}
    for name, forward, seed, length in (("gpt2", gpt2_logits, 11, 24), ("llama", llama_logits, 12, 19)):
        directory = os.path.join(MODELS, name)
        with open(os.path.join(directory, "config.json")) as f:
            cfg = json.load(f)
        w = read_safetensors(os.path.join(directory, "model.safetensors"))
        ids = [int(i) for i in np.random.default_rng(seed).integers(0, cfg["vocab_size"], size=length)]
        cases = [{"heads": s, "loss": token_losses(forward(w, cfg, ids, s), ids)} for s in sets]
        out[name] = {"ids": ids, "cases": cases}
    path = os.path.join(MODELS, "ablation_fixtures.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
