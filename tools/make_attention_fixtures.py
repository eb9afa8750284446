#!/usr/bin/python3
"""Writes the PyTorch attention fixtures under tests/data/pytorch/<case>/.

Run with Debian's Python, which has torch 1.13 and numpy:  /usr/bin/python3 tools/make_attention_fixtures.py
The C++ tests (tests/test_pytorch.cpp) and the `headlens attention` CLI tests read these files; no Python is needed
at test time. The output is deterministic (fixed seeds), so rerunning the script rewrites identical files.

Every weight and input is drawn in float32 and widened to float64 for the float64 run, so one float32
`weights.safetensors` and one set of input values serve both precisions exactly. Per case:

  weights.safetensors   the layer's state dict, F32 (nn.MultiheadAttention's keys or Llama's q/k/v/o_proj)
  x.npy, x_f64.npy      input, [T x d_model] for one sequence or [B x T x d_model] for a batch
  out.npy, out_f64.npy  torch's output, same shape as x, from the float32 and the float64 run
  pattern.npy, pattern_f64.npy  per-head attention weights, [H x T_q x T_k] or [B x H x T_q x T_k]
  plus memory*.npy (cross), key_padding.npy (padded, bool [B x T], True = padding), attn_mask.npy (causal).

Cases (see tests/data/pytorch/README.md for the table):
  self     nn.MultiheadAttention, d_model 20, 4 heads, T 7
  cross    nn.MultiheadAttention, d_model 18, 3 heads, T_q 5 over a memory of T_k 8 (kdim = vdim = d_model)
  causal   nn.MultiheadAttention, d_model 16, 2 heads, T 9, attn_mask = triu(-inf, diagonal 1)
  padded   nn.MultiheadAttention, d_model 20, 4 heads, B 3, T 9, key lengths 9, 6, 4
  gqa      plain-torch reference, d_model 18, 4 heads over 2 kv heads, head_dim 5, q/k/v biases (no o_proj bias)
  rotary   plain-torch reference, d_model 24, 4 heads over 2 kv heads, head_dim 6, Llama rotate-half rotary
           (base 10000), causal, B 2, T 9, no biases
  bad      weights the CLI must reject: missing_o_proj.safetensors, unknown_keys.safetensors
"""
import json
import math
import os
import shutil
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "pytorch")


# ---- file writers ------------------------------------------------------------------------------------------------
def save_npy(case, name, tensor):
    array = tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
    np.save(os.path.join(OUT, case, name), np.ascontiguousarray(array), allow_pickle=False)


def save_both(case, stem, t32, t64):
    assert t32.dtype == torch.float32 and t64.dtype == torch.float64
    save_npy(case, stem + ".npy", t32)
    save_npy(case, stem + "_f64.npy", t64)


def write_safetensors(case, state, file_name="weights.safetensors"):
    """state: dict name -> float32 tensor. 8-byte little-endian header length, JSON header padded with spaces to a
    multiple of 8, then the tensors' bytes in header order."""
    header, payloads, offset = {}, [], 0
    for name in sorted(state):
        array = state[name].detach().to(torch.float32).contiguous().numpy().astype("<f4")
        payload = array.tobytes(order="C")
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(payload)]}
        payloads.append(payload)
        offset += len(payload)
    text = json.dumps(header, separators=(",", ":")).encode("ascii")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(OUT, case, file_name), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(payloads))


def new_case(case):
    path = os.path.join(OUT, case)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


# ---- nn.MultiheadAttention cases ---------------------------------------------------------------------------------
def make_mha(d_model, heads, seed):
    """An nn.MultiheadAttention with random weights and non-zero biases (its default biases are zero), float32."""
    torch.manual_seed(seed)
    mha = torch.nn.MultiheadAttention(d_model, heads, bias=True, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.randn(3 * d_model, d_model) * (1.5 / math.sqrt(d_model)))
        mha.in_proj_bias.copy_(torch.randn(3 * d_model) * 0.3)
        mha.out_proj.weight.copy_(torch.randn(d_model, d_model) / math.sqrt(d_model))
        mha.out_proj.bias.copy_(torch.randn(d_model) * 0.3)
    mha.eval()
    return mha


def mha_state(mha):
    return {
        "in_proj_weight": mha.in_proj_weight,
        "in_proj_bias": mha.in_proj_bias,
        "out_proj.weight": mha.out_proj.weight,
        "out_proj.bias": mha.out_proj.bias,
    }


def run_mha(mha, query, memory=None, **kwargs):
    """Runs `mha` in float32 and in float64 on the same (float32-exact) values; returns (out32, w32, out64, w64)
    with weights [B x H x T_q x T_k]."""
    results = []
    for dtype in (torch.float32, torch.float64):
        module = mha.to(dtype)
        q = query.to(dtype)
        kv = q if memory is None else memory.to(dtype)
        args = {k: (v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
                for k, v in kwargs.items()}
        with torch.no_grad():
            out, weights = module(q, kv, kv, need_weights=True, average_attn_weights=False, **args)
        results += [out, weights]
    mha.to(torch.float32)
    return results


def case_self():
    case, d_model, heads, t = "self", 20, 4, 7
    new_case(case)
    mha = make_mha(d_model, heads, seed=101)
    x = torch.randn(1, t, d_model, generator=torch.Generator().manual_seed(1101))
    out32, w32, out64, w64 = run_mha(mha, x)
    write_safetensors(case, mha_state(mha))
    save_both(case, "x", x[0], x[0].double())
    save_both(case, "out", out32[0], out64[0])
    save_both(case, "pattern", w32[0], w64[0])


def case_cross():
    case, d_model, heads, t_q, t_k = "cross", 18, 3, 5, 8
    new_case(case)
    mha = make_mha(d_model, heads, seed=202)
    g = torch.Generator().manual_seed(2202)
    x = torch.randn(1, t_q, d_model, generator=g)
    memory = torch.randn(1, t_k, d_model, generator=g)
    out32, w32, out64, w64 = run_mha(mha, x, memory)
    write_safetensors(case, mha_state(mha))
    save_both(case, "x", x[0], x[0].double())
    save_both(case, "memory", memory[0], memory[0].double())
    save_both(case, "out", out32[0], out64[0])
    save_both(case, "pattern", w32[0], w64[0])


def case_causal():
    case, d_model, heads, t = "causal", 16, 2, 9
    new_case(case)
    mha = make_mha(d_model, heads, seed=303)
    x = torch.randn(1, t, d_model, generator=torch.Generator().manual_seed(3303))
    mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
    out32, w32, out64, w64 = run_mha(mha, x, attn_mask=mask)
    write_safetensors(case, mha_state(mha))
    save_both(case, "x", x[0], x[0].double())
    save_npy(case, "attn_mask.npy", mask)
    save_both(case, "out", out32[0], out64[0])
    save_both(case, "pattern", w32[0], w64[0])


def case_padded():
    case, d_model, heads, batch, t = "padded", 20, 4, 3, 9
    lengths = [9, 6, 4]
    new_case(case)
    mha = make_mha(d_model, heads, seed=404)
    x = torch.randn(batch, t, d_model, generator=torch.Generator().manual_seed(4404))
    padding = torch.arange(t)[None, :] >= torch.tensor(lengths)[:, None]  # True = padding, PyTorch's convention
    assert not padding.all(dim=1).any(), "a fully padded sequence would make NaN rows in torch"
    out32, w32, out64, w64 = run_mha(mha, x, key_padding_mask=padding)
    write_safetensors(case, mha_state(mha))
    save_both(case, "x", x, x.double())
    save_npy(case, "key_padding.npy", padding.numpy().astype(np.bool_))
    save_both(case, "out", out32, out64)
    save_both(case, "pattern", w32, w64)


# ---- plain-torch reference: GQA and rotary (Llama's layout) ------------------------------------------------------
def rotate_half(t):
    half = t.shape[-1] // 2
    return torch.cat((-t[..., half:], t[..., :half]), dim=-1)


def rotary(t, positions, base):
    """Llama's rotate-half rotary on t [B x heads x T x head_dim]; angles in float64, cast to t's dtype."""
    dim = t.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    freqs = torch.outer(positions.to(torch.float64), inv_freq)
    angles = torch.cat((freqs, freqs), dim=-1)
    cos, sin = angles.cos().to(t.dtype), angles.sin().to(t.dtype)
    return t * cos + rotate_half(t) * sin


def reference_attention(state, x, heads, kv_heads, head_dim, causal=False, rope_base=None):
    """x [B x T x d_model] -> (out [B x T x d_model], pattern [B x heads x T x T]); plain torch ops in x's dtype."""
    dtype = x.dtype
    w = {k: v.to(dtype) for k, v in state.items()}
    batch, t, _ = x.shape

    def linear(name, inp):
        y = inp @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    q = linear("q_proj", x).view(batch, t, heads, head_dim).transpose(1, 2)
    k = linear("k_proj", x).view(batch, t, kv_heads, head_dim).transpose(1, 2)
    v = linear("v_proj", x).view(batch, t, kv_heads, head_dim).transpose(1, 2)
    if rope_base is not None:
        positions = torch.arange(t)
        q, k = rotary(q, positions, rope_base), rotary(k, positions, rope_base)
    group = heads // kv_heads
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(head_dim)
    if causal:
        scores = scores + torch.triu(torch.full((t, t), float("-inf"), dtype=dtype), diagonal=1)
    pattern = torch.softmax(scores, dim=-1)
    z = (pattern @ v).transpose(1, 2).reshape(batch, t, heads * head_dim)
    return linear("o_proj", z), pattern


def llama_state(d_model, heads, kv_heads, head_dim, seed, biases=()):
    g = torch.Generator().manual_seed(seed)
    shapes = {"q_proj": heads * head_dim, "k_proj": kv_heads * head_dim, "v_proj": kv_heads * head_dim}
    state = {}
    for name, rows in shapes.items():
        state[name + ".weight"] = torch.randn(rows, d_model, generator=g) * (1.5 / math.sqrt(d_model))
    state["o_proj.weight"] = torch.randn(d_model, heads * head_dim, generator=g) / math.sqrt(heads * head_dim)
    for name in biases:
        rows = state[name + ".weight"].shape[0]
        state[name + ".bias"] = torch.randn(rows, generator=g) * 0.3
    return state


def run_reference(case, state, x, **kwargs):
    out32, w32 = reference_attention(state, x, **kwargs)
    out64, w64 = reference_attention(state, x.double(), **kwargs)
    return out32, w32, out64, w64


def case_gqa():
    case, d_model, heads, kv_heads, head_dim, t = "gqa", 18, 4, 2, 5, 7
    new_case(case)
    state = llama_state(d_model, heads, kv_heads, head_dim, seed=505, biases=("q_proj", "k_proj", "v_proj"))
    x = torch.randn(1, t, d_model, generator=torch.Generator().manual_seed(5505))
    out32, w32, out64, w64 = run_reference(case, state, x, heads=heads, kv_heads=kv_heads, head_dim=head_dim)
    write_safetensors(case, state)
    save_both(case, "x", x[0], x[0].double())
    save_both(case, "out", out32[0], out64[0])
    save_both(case, "pattern", w32[0], w64[0])


def case_rotary():
    case, d_model, heads, kv_heads, head_dim, batch, t = "rotary", 24, 4, 2, 6, 2, 9
    new_case(case)
    state = llama_state(d_model, heads, kv_heads, head_dim, seed=606)
    x = torch.randn(batch, t, d_model, generator=torch.Generator().manual_seed(6606))
    out32, w32, out64, w64 = run_reference(case, state, x, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
                                           causal=True, rope_base=10000.0)
    write_safetensors(case, state)
    save_both(case, "x", x, x.double())
    save_both(case, "out", out32, out64)
    save_both(case, "pattern", w32, w64)


def case_bad():
    """Weights files the CLI must reject with a message naming the key: a Llama layer without o_proj.weight, and a
    file in neither layout."""
    case = "bad"
    new_case(case)
    state = llama_state(12, 2, 2, 6, seed=808)
    del state["o_proj.weight"]
    write_safetensors(case, state, "missing_o_proj.safetensors")
    write_safetensors(case, {"dense.weight": torch.ones(2, 3)}, "unknown_keys.safetensors")


def self_check_reference():
    """The plain-torch reference must agree with nn.MultiheadAttention where both apply (MHA, no rotary), so the
    GQA and rotary fixtures rest on the same definition as the others."""
    d_model, heads = 20, 4
    mha = make_mha(d_model, heads, seed=707).double()
    e = d_model
    w, b = mha.in_proj_weight, mha.in_proj_bias
    state = {"q_proj.weight": w[:e], "k_proj.weight": w[e:2 * e], "v_proj.weight": w[2 * e:],
             "q_proj.bias": b[:e], "k_proj.bias": b[e:2 * e], "v_proj.bias": b[2 * e:],
             "o_proj.weight": mha.out_proj.weight, "o_proj.bias": mha.out_proj.bias}
    state = {k: v.detach() for k, v in state.items()}
    x = torch.randn(2, 6, d_model, dtype=torch.float64, generator=torch.Generator().manual_seed(7707))
    mask = torch.triu(torch.full((6, 6), float("-inf"), dtype=torch.float64), diagonal=1)
    with torch.no_grad():
        want, want_w = mha(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
        got, got_w = reference_attention(state, x, heads=heads, kv_heads=heads, head_dim=e // heads, causal=True)
    assert (got - want).abs().max() < 1e-12 and (got_w - want_w).abs().max() < 1e-12


def main():
    os.makedirs(OUT, exist_ok=True)
    self_check_reference()
    for make in (case_self, case_cross, case_causal, case_padded, case_gqa, case_rotary, case_bad):
        make()
    total = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(OUT) for f in files)
    print(f"wrote {OUT}: {total} bytes")


if __name__ == "__main__":
    main()
