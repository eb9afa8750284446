#!/usr/bin/python3
"""Writes the .npy and safetensors fixtures under tests/data/io/.

Run with Debian's Python, which has numpy and torch:  /usr/bin/python3 tools/make_io_fixtures.py
The .npy files come from numpy itself; the safetensors files are assembled byte by byte here (there is no
safetensors package), with the float16 / bfloat16 payloads and their float32 values both produced by torch, so the
C++ conversion is checked against an implementation that is not ours.
"""
import json
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "io")


def save(name, array, **kwargs):
    np.save(os.path.join(OUT, name), array, allow_pickle=False, **kwargs)


def write_versioned(name, array, version):
    with open(os.path.join(OUT, name), "wb") as f:
        np.lib.format.write_array(f, array, version=version, allow_pickle=False)


def npy_fixtures():
    save("f4_2x3.npy", np.array([[0.5, -1.25, 3.0], [0.001, 65504.0, -0.0]], dtype="<f4"))
    save("f8_be_3.npy", np.array([1.5, -2.0, 1e300], dtype=">f8"))
    save("i8_4.npy", np.array([-1, 0, 2**40, 7], dtype="<i8"))
    save("i4_2x2.npy", np.array([[1, -2], [3, -4]], dtype="<i4"))
    save("b1_3.npy", np.array([True, False, True]))
    save("f2_4.npy", np.array([1.0, -2.0, 65504.0, 2.0**-24], dtype="<f2"))
    save("scalar_f8.npy", np.array(3.25, dtype="<f8"))
    # [layers=2, heads=3, T=4, T=4] maps, value = 1000*l + 100*h + 10*i + j (exact in float32).
    l, h, i, j = np.meshgrid(np.arange(2), np.arange(3), np.arange(4), np.arange(4), indexing="ij")
    save("maps_2x3x4x4.npy", (1000 * l + 100 * h + 10 * i + j).astype("<f4"))
    save("fortran_2x3.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    save("c8_2.npy", np.array([1 + 2j, 3 - 4j], dtype="<c8"))
    save("structured_2.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
    write_versioned("v2_f4_2x2.npy", np.array([[1, 2], [3, 4]], dtype="<f4"), (2, 0))
    write_versioned("v3_f8_3.npy", np.array([-1.0, 0.0, 1.0], dtype="<f8"), (3, 0))


def safetensors_bytes(tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, payload bytes) in buffer order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(payload)]}
        offset += len(payload)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def raw16(t):
    return t.view(torch.int16).numpy().astype("<i2").tobytes()


def f32(t):
    return t.float().numpy().astype("<f4").tobytes()


def safetensors_fixtures():
    w = torch.tensor([[0.5, -1.25, 3.0], [0.001, 65504.0, -0.0]], dtype=torch.float32)
    b = torch.tensor([1.5, -2.0, 1e300], dtype=torch.float64)
    half = torch.tensor([1.0, -2.0, 65504.0, 2.0**-24, 2.0**-14, float("inf"), float("-inf"), 0.333251953125],
                        dtype=torch.float16)
    bf = torch.tensor([1.0, -2.0, 3.140625, 1e-40, float("inf"), -0.0], dtype=torch.bfloat16)
    # A spread of bit patterns over the whole 16-bit range (2048 of 65536, low bits varying), read as float16 and
    # as bfloat16, with torch's float32 value of each: covers zeros, subnormals, normals, infinities and NaNs.
    k = np.arange(2048, dtype=np.int64)
    bits = (k * 32 + (k * 7) % 32).astype(np.uint16).view(np.int16)
    all_half = torch.from_numpy(bits.copy()).view(torch.float16)
    all_bf = torch.from_numpy(bits.copy()).view(torch.bfloat16)
    tensors = [
        ("w", "F32", [2, 3], w.numpy().astype("<f4").tobytes()),
        ("b", "F64", [3], b.numpy().astype("<f8").tobytes()),
        ("half", "F16", [8], raw16(half)),
        ("half_as_f32", "F32", [8], f32(half)),
        ("bf", "BF16", [6], raw16(bf)),
        ("bf_as_f32", "F32", [6], f32(bf)),
        ("ids", "I64", [4], np.array([-1, 0, 2**40, 7], dtype="<i8").tobytes()),
        ("small", "I32", [2, 2], np.array([[1, -2], [3, -4]], dtype="<i4").tobytes()),
        ("mask", "BOOL", [3], np.array([True, False, True]).tobytes()),
        ("scalar", "F64", [], np.array(3.25, dtype="<f8").tobytes()),
        ("empty", "F32", [0, 3], b""),
    ]
    metadata = {"format": "pt", "note": "caf\u00e9 \"quoted\"\n"}
    with open(os.path.join(OUT, "mixed.safetensors"), "wb") as f:
        f.write(safetensors_bytes(tensors, metadata))
    spread = [
        ("half_bits", "F16", [2048], raw16(all_half)),
        ("half_bits_as_f32", "F32", [2048], f32(all_half)),
        ("bf_bits", "BF16", [2048], raw16(all_bf)),
        ("bf_bits_as_f32", "F32", [2048], f32(all_bf)),
    ]
    with open(os.path.join(OUT, "half_spread.safetensors"), "wb") as f:
        f.write(safetensors_bytes(spread))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    npy_fixtures()
    safetensors_fixtures()
