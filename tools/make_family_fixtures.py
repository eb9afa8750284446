#!/usr/bin/python3
"""Writes one small random checkpoint per model family, in that family's Hugging Face layout, with golden outputs,
under tests/data/models/families/<family>/. Read by tests/test_model_families.cpp; nothing needs Python at test time.

Run with Debian's Python (torch 1.13, numpy; no `transformers`):  /usr/bin/python3 tools/make_family_fixtures.py
Seeds are fixed, so a rerun writes identical bytes.

Each family's reference forward below is plain PyTorch written from the published modelling maths of that family
(the papers and Hugging Face's `modeling_<family>.py`, eval mode), not from headlens: norms, rotary convention and
fraction, rope scaling, residual layout, soft-capping, sliding windows, fused projections and position offsets are
each spelt out here. It runs in float64 on the stored weights widened (F16 or BF16 values, as real checkpoints
store them), so the goldens are the exact answer for the stored weights.

Per family directory: config.json (the field names real checkpoints use), model.safetensors (the tensor names real
checkpoints use; F16, or BF16 for the Gemma and Llama 3 families, written by hand: u64 header length, JSON header,
raw data), vocab.json (a word-level vocabulary "w0".."w{V-2}" and "[UNK]", so `load_attention_model(dir)` works),
ids.npy (int32 [T]), logits.npy (float32 [T x vocab]), attention.npy (float32 [layers x heads x T x T]).
"""
import json
import math
import os
import struct

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "models", "families")
VOCAB, D, LAYERS, T = 64, 32, 2, 10
torch.set_default_dtype(torch.float64)


# ---- files ---------------------------------------------------------------------------------------------------------
def to_bf16_bits(a):
    """float32 array -> uint16 bfloat16 bits, rounded to nearest even."""
    bits = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2")


def from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view("<f4")


def store(array, dtype):
    """The values a checkpoint of `dtype` holds for `array`, as float64, and their bytes."""
    a = np.asarray(array, dtype=np.float32)
    if dtype == "F16":
        h = a.astype("<f2")
        return h.astype(np.float64), h.tobytes()
    if dtype == "BF16":
        b = to_bf16_bits(a)
        return from_bf16_bits(b).astype(np.float64), b.tobytes()
    f = a.astype("<f4")
    return f.astype(np.float64), f.tobytes()


def write_safetensors(path, tensors, dtype):
    """tensors: list of (name, bytes, shape)."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, data, shape in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)


class checkpoint:
    """Random tensors under their real names, kept as the stored (rounded) values for the reference."""

    def __init__(self, seed, dtype):
        self.gen = np.random.default_rng(seed)
        self.dtype = dtype
        self.tensors = []
        self.values = {}

    def add(self, name, shape, std=0.3, mean=0.0):
        raw = self.gen.standard_normal(shape) * std + mean
        values, data = store(raw, self.dtype)
        self.tensors.append((name, data, shape))
        self.values[name] = torch.tensor(values)
        return self.values[name]

    def __getitem__(self, name):
        return self.values[name]

    def write(self, directory, config, forward):
        os.makedirs(directory, exist_ok=True)
        write_safetensors(os.path.join(directory, "model.safetensors"), self.tensors, self.dtype)
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
            f.write("\n")
        vocab = {f"w{i}": i for i in range(config["vocab_size"] - 1)}
        vocab["[UNK]"] = config["vocab_size"] - 1
        with open(os.path.join(directory, "vocab.json"), "w") as f:
            json.dump(vocab, f)
            f.write("\n")
        ids = self.gen.integers(2, config["vocab_size"] - 1, T).astype(np.int32)  # never 0 or 1 (pad ids)
        logits, patterns = forward(self, config, torch.tensor(ids, dtype=torch.long))
        np.save(os.path.join(directory, "ids.npy"), ids, allow_pickle=False)
        np.save(os.path.join(directory, "logits.npy"), logits.numpy().astype(np.float32), allow_pickle=False)
        np.save(os.path.join(directory, "attention.npy"), torch.stack(patterns).numpy().astype(np.float32),
                allow_pickle=False)


# ---- the maths -----------------------------------------------------------------------------------------------------
def rms_norm(x, w, eps, plus_one=False):
    y = x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)
    return y * ((1.0 + w) if plus_one else w)


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_erf(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def silu(x):
    return x * torch.sigmoid(x)


def inverse_frequencies(rot, base, scaling=None):
    inv = 1.0 / base ** (torch.arange(0, rot, 2, dtype=torch.float64) / rot)
    if scaling is None:
        return inv
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        return inv / scaling["factor"]
    assert kind == "llama3"
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


def rotary(x, rot, inv):
    """x: [heads, T, hd]; rotate-half on the first `rot` dims of each head, positions 0..T-1."""
    t = x.shape[1]
    angles = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat([angles, angles], -1)
    cos, sin = emb.cos(), emb.sin()
    xr, xp = x[..., :rot], x[..., rot:]
    half = rot // 2
    rotated = torch.cat([-xr[..., half:], xr[..., :half]], -1)
    return torch.cat([xr * cos + rotated * sin, xp], -1)


def attend(q, k, v, scale, causal=True, window=0, softcap=0.0):
    """q [H, T, hd], k, v [KV, T, hd] -> (z [T, H*hd], probs [H, T, T]); kv head of query head h is h // (H/KV)."""
    h, t, hd = q.shape
    rep = h // k.shape[0]
    k = k.repeat_interleave(rep, 0)
    v = v.repeat_interleave(rep, 0)
    s = q @ k.transpose(1, 2) * scale
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    allowed = torch.ones(t, t, dtype=torch.bool)
    if causal:
        allowed &= j <= i
    if window:
        allowed &= j > i - window
    s = s.masked_fill(~allowed, float("-inf"))
    p = torch.softmax(s, -1)
    return (p @ v).transpose(0, 1).reshape(t, h * hd), p


def lin(x, w, b=None):
    """nn.Linear: x W^T + b."""
    y = x @ w.T
    return y if b is None else y + b


def heads(x, n, hd):
    return x.view(x.shape[0], n, hd).transpose(0, 1)


# ---- Llama-like decoders (Llama, Mistral, Qwen2, Qwen3, Gemma, Gemma 2, Phi-3) ---------------------------------------
def llama_like_forward(cp, c, ids, style):
    H, KV = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    hd = c.get("head_dim") or c["hidden_size"] // H
    eps = c["rms_norm_eps"]
    gemma = style in ("gemma", "gemma2")
    rot = int(hd * c.get("partial_rotary_factor", 1.0))
    inv = inverse_frequencies(rot, c.get("rope_theta", 10000.0), c.get("rope_scaling"))
    act = {"silu": silu, "gelu_pytorch_tanh": gelu_tanh}[c.get("hidden_activation") or c.get("hidden_act")]
    x = cp["model.embed_tokens.weight"][ids]
    if gemma:
        x = x * math.sqrt(c["hidden_size"])
    scale = (c["query_pre_attn_scalar"] ** -0.5) if style == "gemma2" else hd ** -0.5
    patterns = []
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        norm = lambda y, name: rms_norm(y, cp[p + name + ".weight"], eps, gemma)
        h = norm(x, "input_layernorm")
        if style == "phi3":
            qkv = lin(h, cp[p + "self_attn.qkv_proj.weight"])
            q, k, v = qkv.split([H * hd, KV * hd, KV * hd], -1)
        else:
            bias = lambda n: cp.values.get(p + f"self_attn.{n}_proj.bias")
            q = lin(h, cp[p + "self_attn.q_proj.weight"], bias("q"))
            k = lin(h, cp[p + "self_attn.k_proj.weight"], bias("k"))
            v = lin(h, cp[p + "self_attn.v_proj.weight"], bias("v"))
        q, k, v = heads(q, H, hd), heads(k, KV, hd), heads(v, KV, hd)
        if style == "qwen3":  # RMSNorm over head_dim of each head, before rotary
            q = rms_norm(q, cp[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, cp[p + "self_attn.k_norm.weight"], eps)
        q, k = rotary(q, rot, inv), rotary(k, rot, inv)
        window = 0
        if style == "gemma2":
            window = c["sliding_window"] if i % 2 == 0 else 0
        elif style in ("mistral", "phi3"):
            window = c.get("sliding_window") or 0
        z, probs = attend(q, k, v, scale, True, window, c.get("attn_logit_softcapping") or 0.0)
        patterns.append(probs)
        a = lin(z, cp[p + "self_attn.o_proj.weight"])
        if style == "gemma2":
            a = norm(a, "post_attention_layernorm")
        x = x + a
        h = norm(x, "pre_feedforward_layernorm" if style == "gemma2" else "post_attention_layernorm")
        if style == "phi3":
            gate, up = lin(h, cp[p + "mlp.gate_up_proj.weight"]).chunk(2, -1)
        else:
            gate, up = lin(h, cp[p + "mlp.gate_proj.weight"]), lin(h, cp[p + "mlp.up_proj.weight"])
        m = lin(act(gate) * up, cp[p + "mlp.down_proj.weight"])
        if style == "gemma2":
            m = norm(m, "post_feedforward_layernorm")
        x = x + m
    x = rms_norm(x, cp["model.norm.weight"], eps, gemma)
    head = cp["model.embed_tokens.weight"] if c.get("tie_word_embeddings") else cp["lm_head.weight"]
    logits = lin(x, head)
    if c.get("final_logit_softcapping"):
        cap = c["final_logit_softcapping"]
        logits = cap * torch.tanh(logits / cap)
    return logits, patterns


def make_llama_like(name, seed, dtype, config, style):
    c = dict(config)
    c.setdefault("vocab_size", VOCAB)
    c.setdefault("hidden_size", D)
    c.setdefault("num_hidden_layers", LAYERS)
    cp = checkpoint(seed, dtype)
    d, H = c["hidden_size"], c["num_attention_heads"]
    KV = c.get("num_key_value_heads", H)
    hd = c.get("head_dim") or d // H
    ff = c["intermediate_size"]
    cp.add("model.embed_tokens.weight", (c["vocab_size"], d), 0.5)
    gemma = style in ("gemma", "gemma2")
    norm_mean = 0.0 if gemma else 1.0  # Gemma stores w of (1 + w)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        cp.add(p + "input_layernorm.weight", (d,), 0.2, norm_mean)
        if style == "phi3":
            cp.add(p + "self_attn.qkv_proj.weight", ((H + 2 * KV) * hd, d), 0.3)
        else:
            cp.add(p + "self_attn.q_proj.weight", (H * hd, d), 0.3)
            cp.add(p + "self_attn.k_proj.weight", (KV * hd, d), 0.3)
            cp.add(p + "self_attn.v_proj.weight", (KV * hd, d), 0.3)
            if style == "qwen2":
                cp.add(p + "self_attn.q_proj.bias", (H * hd,), 0.3)
                cp.add(p + "self_attn.k_proj.bias", (KV * hd,), 0.3)
                cp.add(p + "self_attn.v_proj.bias", (KV * hd,), 0.3)
        cp.add(p + "self_attn.o_proj.weight", (d, H * hd), 0.2)
        if style == "qwen3":
            cp.add(p + "self_attn.q_norm.weight", (hd,), 0.2, 1.0)
            cp.add(p + "self_attn.k_norm.weight", (hd,), 0.2, 1.0)
        cp.add(p + "post_attention_layernorm.weight", (d,), 0.2, norm_mean)
        if style == "gemma2":
            cp.add(p + "pre_feedforward_layernorm.weight", (d,), 0.2, norm_mean)
            cp.add(p + "post_feedforward_layernorm.weight", (d,), 0.2, norm_mean)
        if style == "phi3":
            cp.add(p + "mlp.gate_up_proj.weight", (2 * ff, d), 0.3)
        else:
            cp.add(p + "mlp.gate_proj.weight", (ff, d), 0.3)
            cp.add(p + "mlp.up_proj.weight", (ff, d), 0.3)
        cp.add(p + "mlp.down_proj.weight", (d, ff), 0.2)
    cp.add("model.norm.weight", (d,), 0.2, norm_mean)
    if not c.get("tie_word_embeddings"):
        cp.add("lm_head.weight", (c["vocab_size"], d), 0.3)
    cp.write(os.path.join(OUT, name), c, lambda cp, c, ids: llama_like_forward(cp, c, ids, style))


# ---- GPT-NeoX (Pythia) ---------------------------------------------------------------------------------------------
def neox_forward(cp, c, ids):
    H = c["num_attention_heads"]
    hd = c["hidden_size"] // H
    rot = int(hd * c["rotary_pct"])
    inv = inverse_frequencies(rot, c["rotary_emb_base"])
    eps = c["layer_norm_eps"]
    x = cp["gpt_neox.embed_in.weight"][ids]
    patterns = []
    for i in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}."
        ln = lambda y, n: layer_norm(y, cp[p + n + ".weight"], cp[p + n + ".bias"], eps)
        h = ln(x, "input_layernorm")
        qkv = lin(h, cp[p + "attention.query_key_value.weight"], cp[p + "attention.query_key_value.bias"])
        qkv = qkv.view(T, H, 3 * hd).transpose(0, 1)  # per head: q, k, v side by side
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        q, k = rotary(q, rot, inv), rotary(k, rot, inv)
        z, probs = attend(q, k, v, hd ** -0.5)
        patterns.append(probs)
        a = lin(z, cp[p + "attention.dense.weight"], cp[p + "attention.dense.bias"])
        m = ln(x, "post_attention_layernorm")
        m = lin(gelu_erf(lin(m, cp[p + "mlp.dense_h_to_4h.weight"], cp[p + "mlp.dense_h_to_4h.bias"])),
                cp[p + "mlp.dense_4h_to_h.weight"], cp[p + "mlp.dense_4h_to_h.bias"])
        x = x + a + m  # use_parallel_residual
    x = layer_norm(x, cp["gpt_neox.final_layer_norm.weight"], cp["gpt_neox.final_layer_norm.bias"], eps)
    return lin(x, cp["embed_out.weight"]), patterns


def make_neox():
    c = {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "vocab_size": VOCAB, "hidden_size": D,
         "num_hidden_layers": LAYERS, "num_attention_heads": 2, "intermediate_size": 48, "hidden_act": "gelu",
         "rotary_pct": 0.25, "rotary_emb_base": 10000, "max_position_embeddings": 64, "layer_norm_eps": 1e-5,
         "use_parallel_residual": True, "tie_word_embeddings": False, "bos_token_id": 0, "eos_token_id": 0,
         "torch_dtype": "float16"}
    cp = checkpoint(31, "F16")
    d, ff = D, c["intermediate_size"]
    cp.add("gpt_neox.embed_in.weight", (VOCAB, d), 0.5)
    for i in range(LAYERS):
        p = f"gpt_neox.layers.{i}."
        for n in ("input_layernorm", "post_attention_layernorm"):
            cp.add(p + n + ".weight", (d,), 0.2, 1.0)
            cp.add(p + n + ".bias", (d,), 0.1)
        cp.add(p + "attention.query_key_value.weight", (3 * d, d), 0.3)
        cp.add(p + "attention.query_key_value.bias", (3 * d,), 0.2)
        cp.add(p + "attention.dense.weight", (d, d), 0.2)
        cp.add(p + "attention.dense.bias", (d,), 0.1)
        cp.add(p + "mlp.dense_h_to_4h.weight", (ff, d), 0.3)
        cp.add(p + "mlp.dense_h_to_4h.bias", (ff,), 0.1)
        cp.add(p + "mlp.dense_4h_to_h.weight", (d, ff), 0.2)
        cp.add(p + "mlp.dense_4h_to_h.bias", (d,), 0.1)
    cp.add("gpt_neox.final_layer_norm.weight", (d,), 0.2, 1.0)
    cp.add("gpt_neox.final_layer_norm.bias", (d,), 0.1)
    cp.add("embed_out.weight", (VOCAB, d), 0.3)
    cp.write(os.path.join(OUT, "gpt_neox"), c, neox_forward)


# ---- OPT -----------------------------------------------------------------------------------------------------------
def opt_forward(cp, c, ids):
    H = c["num_attention_heads"]
    hd = c["hidden_size"] // H
    pre = "model.decoder."
    x = cp[pre + "embed_tokens.weight"][ids] + cp[pre + "embed_positions.weight"][torch.arange(T) + 2]  # offset 2
    patterns = []
    for i in range(c["num_hidden_layers"]):
        p = pre + f"layers.{i}."
        ln = lambda y, n: layer_norm(y, cp[p + n + ".weight"], cp[p + n + ".bias"], 1e-5)
        proj = lambda y, n: lin(y, cp[p + f"self_attn.{n}.weight"], cp[p + f"self_attn.{n}.bias"])
        h = ln(x, "self_attn_layer_norm")
        z, probs = attend(heads(proj(h, "q_proj"), H, hd), heads(proj(h, "k_proj"), H, hd),
                          heads(proj(h, "v_proj"), H, hd), hd ** -0.5)
        patterns.append(probs)
        x = x + proj(z, "out_proj")
        h = ln(x, "final_layer_norm")
        x = x + lin(torch.relu(lin(h, cp[p + "fc1.weight"], cp[p + "fc1.bias"])), cp[p + "fc2.weight"], cp[p + "fc2.bias"])
    x = layer_norm(x, cp[pre + "final_layer_norm.weight"], cp[pre + "final_layer_norm.bias"], 1e-5)
    return lin(x, cp[pre + "embed_tokens.weight"]), patterns


def make_opt():
    c = {"architectures": ["OPTForCausalLM"], "model_type": "opt", "vocab_size": VOCAB, "hidden_size": D,
         "num_hidden_layers": LAYERS, "num_attention_heads": 4, "ffn_dim": 48, "activation_function": "relu",
         "max_position_embeddings": 32, "do_layer_norm_before": True, "word_embed_proj_dim": D,
         "enable_bias": True, "layer_norm_elementwise_affine": True, "pad_token_id": 1, "bos_token_id": 2,
         "eos_token_id": 2, "torch_dtype": "float16"}
    cp = checkpoint(41, "F16")
    d, ff, pre = D, c["ffn_dim"], "model.decoder."
    cp.add(pre + "embed_tokens.weight", (VOCAB, d), 0.5)
    cp.add(pre + "embed_positions.weight", (c["max_position_embeddings"] + 2, d), 0.3)
    for i in range(LAYERS):
        p = pre + f"layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            cp.add(p + f"self_attn.{n}.weight", (d, d), 0.3)
            cp.add(p + f"self_attn.{n}.bias", (d,), 0.1)
        for n in ("self_attn_layer_norm", "final_layer_norm"):
            cp.add(p + n + ".weight", (d,), 0.2, 1.0)
            cp.add(p + n + ".bias", (d,), 0.1)
        cp.add(p + "fc1.weight", (ff, d), 0.3)
        cp.add(p + "fc1.bias", (ff,), 0.1)
        cp.add(p + "fc2.weight", (d, ff), 0.2)
        cp.add(p + "fc2.bias", (d,), 0.1)
    cp.add(pre + "final_layer_norm.weight", (d,), 0.2, 1.0)
    cp.add(pre + "final_layer_norm.bias", (d,), 0.1)
    cp.write(os.path.join(OUT, "opt"), c, opt_forward)


# ---- BERT and RoBERTa (post-LN encoders, masked-LM heads) ------------------------------------------------------------
def encoder_forward(cp, c, ids, root, offset, head):
    H = c["num_attention_heads"]
    hd = c["hidden_size"] // H
    eps = c["layer_norm_eps"]
    e = root + "embeddings."
    x = (cp[e + "word_embeddings.weight"][ids] + cp[e + "position_embeddings.weight"][torch.arange(T) + offset] +
         cp[e + "token_type_embeddings.weight"][0])  # token_type_ids all 0
    x = layer_norm(x, cp[e + "LayerNorm.weight"], cp[e + "LayerNorm.bias"], eps)
    patterns = []
    for i in range(c["num_hidden_layers"]):
        p = root + f"encoder.layer.{i}."
        l = lambda y, n: lin(y, cp[p + n + ".weight"], cp[p + n + ".bias"])
        ln = lambda y, n: layer_norm(y, cp[p + n + ".weight"], cp[p + n + ".bias"], eps)
        q = heads(l(x, "attention.self.query"), H, hd)
        k = heads(l(x, "attention.self.key"), H, hd)
        v = heads(l(x, "attention.self.value"), H, hd)
        z, probs = attend(q, k, v, hd ** -0.5, causal=False)
        patterns.append(probs)
        x = ln(x + l(z, "attention.output.dense"), "attention.output.LayerNorm")
        x = ln(x + l(gelu_erf(l(x, "intermediate.dense")), "output.dense"), "output.LayerNorm")
    h = gelu_erf(lin(x, cp[head + "dense.weight"], cp[head + "dense.bias"]))
    norm = "LayerNorm" if root == "bert." else "layer_norm"
    h = layer_norm(h, cp[head + norm + ".weight"], cp[head + norm + ".bias"], eps)
    bias = cp["cls.predictions.bias"] if root == "bert." else cp["lm_head.bias"]
    return lin(h, cp[e + "word_embeddings.weight"], bias), patterns


def make_encoder(name, seed):
    bert = name == "bert"
    c = {"architectures": ["BertForMaskedLM" if bert else "RobertaForMaskedLM"], "model_type": name,
         "vocab_size": VOCAB, "hidden_size": D, "num_hidden_layers": LAYERS, "num_attention_heads": 4,
         "intermediate_size": 48, "hidden_act": "gelu", "max_position_embeddings": 24 if bert else 26,
         "type_vocab_size": 2 if bert else 1, "layer_norm_eps": 1e-12, "pad_token_id": 0 if bert else 1,
         "position_embedding_type": "absolute", "torch_dtype": "float16"}
    if not bert:
        c.update({"bos_token_id": 0, "eos_token_id": 2})
    cp = checkpoint(seed, "F16")
    root, d, ff = name + ".", D, c["intermediate_size"]
    e = root + "embeddings."
    cp.add(e + "word_embeddings.weight", (VOCAB, d), 0.5)
    cp.add(e + "position_embeddings.weight", (c["max_position_embeddings"], d), 0.3)
    cp.add(e + "token_type_embeddings.weight", (c["type_vocab_size"], d), 0.3)
    cp.add(e + "LayerNorm.weight", (d,), 0.2, 1.0)
    cp.add(e + "LayerNorm.bias", (d,), 0.1)
    for i in range(LAYERS):
        p = root + f"encoder.layer.{i}."
        for n, shape in (("attention.self.query", (d, d)), ("attention.self.key", (d, d)),
                         ("attention.self.value", (d, d)), ("attention.output.dense", (d, d)),
                         ("intermediate.dense", (ff, d)), ("output.dense", (d, ff))):
            cp.add(p + n + ".weight", shape, 0.3)
            cp.add(p + n + ".bias", (shape[0],), 0.1)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            cp.add(p + n + ".weight", (d,), 0.2, 1.0)
            cp.add(p + n + ".bias", (d,), 0.1)
    if bert:
        cp.add(root + "pooler.dense.weight", (d, d), 0.3)  # present in real files, unused by the MLM
        cp.add(root + "pooler.dense.bias", (d,), 0.1)
        head = "cls.predictions.transform."
        cp.add(head + "dense.weight", (d, d), 0.3)
        cp.add(head + "dense.bias", (d,), 0.1)
        cp.add(head + "LayerNorm.weight", (d,), 0.2, 1.0)
        cp.add(head + "LayerNorm.bias", (d,), 0.1)
        cp.add("cls.predictions.bias", (VOCAB,), 0.2)
        offset = 0
    else:
        head = "lm_head."
        cp.add(head + "dense.weight", (d, d), 0.3)
        cp.add(head + "dense.bias", (d,), 0.1)
        cp.add(head + "layer_norm.weight", (d,), 0.2, 1.0)
        cp.add(head + "layer_norm.bias", (d,), 0.1)
        cp.add("lm_head.bias", (VOCAB,), 0.2)
        offset = c["pad_token_id"] + 1  # RoBERTa's positions start after padding_idx
    cp.write(os.path.join(OUT, name), c,
             lambda cp, c, ids: encoder_forward(cp, c, ids, root, offset, head))


def main():
    base = {"vocab_size": VOCAB, "hidden_size": D, "num_hidden_layers": LAYERS, "rms_norm_eps": 1e-6,
            "max_position_embeddings": 64, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu"}
    make_llama_like("llama3", 11, "BF16", {**base, "architectures": ["LlamaForCausalLM"], "model_type": "llama",
                    "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 48,
                    "rope_theta": 500000.0, "tie_word_embeddings": True, "attention_bias": False,
                    "mlp_bias": False, "torch_dtype": "bfloat16",
                    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 16, "rope_type": "llama3"}}, "llama")
    make_llama_like("llama_linear", 12, "F16", {**base, "architectures": ["LlamaForCausalLM"], "model_type": "llama",
                    "num_attention_heads": 4, "intermediate_size": 48, "rope_theta": 10000.0,
                    "tie_word_embeddings": False, "rope_scaling": {"type": "linear", "factor": 4.0},
                    "torch_dtype": "float16"}, "llama")
    make_llama_like("mistral", 13, "F16", {**base, "architectures": ["MistralForCausalLM"], "model_type": "mistral",
                    "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 48,
                    "rope_theta": 10000.0, "sliding_window": 4, "tie_word_embeddings": False,
                    "torch_dtype": "float16"}, "mistral")
    make_llama_like("qwen2", 14, "F16", {**base, "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                    "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 48,
                    "rope_theta": 1000000.0, "sliding_window": 4, "use_sliding_window": False,
                    "max_window_layers": 2, "tie_word_embeddings": False, "torch_dtype": "float16"}, "qwen2")
    make_llama_like("qwen3", 15, "BF16", {**base, "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
                    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 48,
                    "rope_theta": 1000000.0, "attention_bias": False, "sliding_window": None,
                    "use_sliding_window": False, "max_window_layers": 2, "tie_word_embeddings": True,
                    "torch_dtype": "bfloat16"}, "qwen3")
    gemma_base = {k: v for k, v in base.items() if k != "hidden_act"}
    make_llama_like("gemma", 16, "BF16", {**gemma_base, "architectures": ["GemmaForCausalLM"], "model_type": "gemma",
                    "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "intermediate_size": 48,
                    "hidden_act": "gelu", "hidden_activation": "gelu_pytorch_tanh", "rope_theta": 10000.0,
                    "tie_word_embeddings": True, "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
                    "torch_dtype": "bfloat16"}, "gemma")
    make_llama_like("gemma2", 17, "BF16", {**gemma_base, "architectures": ["Gemma2ForCausalLM"],
                    "model_type": "gemma2", "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                    "intermediate_size": 48, "hidden_act": "gelu_pytorch_tanh",
                    "hidden_activation": "gelu_pytorch_tanh", "rope_theta": 10000.0, "query_pre_attn_scalar": 24,
                    "attn_logit_softcapping": 2.0, "final_logit_softcapping": 3.0, "sliding_window": 4,
                    "cache_implementation": "hybrid", "tie_word_embeddings": True, "bos_token_id": 2,
                    "eos_token_id": 1, "pad_token_id": 0, "torch_dtype": "bfloat16"}, "gemma2")
    make_llama_like("phi3", 18, "BF16", {**base, "architectures": ["Phi3ForCausalLM"], "model_type": "phi3",
                    "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 48,
                    "rope_theta": 10000.0, "rope_scaling": None, "partial_rotary_factor": 0.5,
                    "sliding_window": 5, "original_max_position_embeddings": 64, "rms_norm_eps": 1e-5,
                    "tie_word_embeddings": False, "torch_dtype": "bfloat16"}, "phi3")
    make_neox()
    make_opt()
    make_encoder("bert", 51)
    make_encoder("roberta", 52)


if __name__ == "__main__":
    main()
