#!/usr/bin/python3
"""Loads the hand-made models of tests/test_sentencepiece_model.cpp into the real SentencePiece library (Debian's
python3-sentencepiece 0.1.97) as serialised ModelProtos and checks that it segments them as the test expects (ids
and UTF-8 byte spans). The test's expectations were worked out by hand; this confirms them independently.

    /usr/bin/python3 tools/check_sentencepiece_hand_models.py      # prints "all N cases agree" or the differences
"""

import struct
import sys

import sentencepiece as spm

M = "\u2581"


def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def tag(number, wire):
    return varint((number << 3) | wire)


def field_bytes(number, payload):
    return tag(number, 2) + varint(len(payload)) + payload


def load(pieces, scores, types, model_type=1, byte_fallback=False, add_dummy_prefix=True):
    proto = b""
    for p, s, t in zip(pieces, scores, types):
        proto += field_bytes(1, field_bytes(1, p.encode()) + tag(2, 5) + struct.pack("<f", s) + tag(3, 0) + varint(t))
    trainer = tag(3, 0) + varint(model_type) + (tag(35, 0) + varint(1) if byte_fallback else b"")
    proto += field_bytes(2, trainer)
    proto += field_bytes(3, tag(3, 0) + varint(1 if add_dummy_prefix else 0))
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(proto)
    return sp


def encode(sp, text):
    byte_at = [0]
    for ch in text:
        byte_at.append(byte_at[-1] + len(ch.encode("utf-8")))
    return [(p.id, byte_at[p.begin], byte_at[p.end]) for p in sp.encode(text, out_type="immutable_proto").pieces]


def main():
    pieces = ["<unk>", "<s>", "</s>", M, "a", "b", "ab", M + "a", "c", "abc", "<sep>", "p", "q", "pq"]
    scores = [0, 0, 0, -1, -2, -2, -3.5, -1.5, -5, -9, 0, -1, -1, -2]
    types = [2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 4, 1, 1, 1]
    tiny = load(pieces, scores, types)
    bytes_pieces = pieces + ["<0x%02X>" % b for b in range(256)]
    with_bytes = load(bytes_pieces, scores + [0] * 256, types + [6] * 256, byte_fallback=True)
    bpe = ["<unk>", "a", "b", "c", "ab", "bc", "abc", M]
    bpe_types = [2, 1, 1, 1, 1, 1, 1, 1]
    no_abc = list(bpe)
    no_abc[6] = "zzz"
    unused_types = list(bpe_types)
    unused_types[6] = 5
    control = ["<unk>", "a", "b", "x", M]
    control_types = [2, 1, 1, 3, 1]
    cases = [
        (tiny, "ab", [(7, 0, 1), (5, 1, 2)]),
        (tiny, "abc", [(7, 0, 1), (5, 1, 2), (8, 2, 3)]),
        (tiny, "xa", [(3, 0, 0), (0, 0, 1), (4, 1, 2)]),
        (tiny, "\u00e9y", [(3, 0, 0), (0, 0, 3)]),
        (load(pieces, scores, types, add_dummy_prefix=False), "pq", [(13, 0, 2)]),
        (tiny, "a<sep>b", [(7, 0, 1), (10, 1, 6), (5, 6, 7)]),
        (tiny, "  a   b  ", [(7, 2, 3), (3, 3, 6), (5, 6, 7)]),
        (tiny, "   ", []),
        (tiny, "", []),
        (with_bytes, "a\u00e9", [(7, 0, 1), (14 + 0xC3, 1, 1), (14 + 0xA9, 1, 3)]),
        (with_bytes, "xy", [(3, 0, 0), (14 + ord("x"), 0, 1), (14 + ord("y"), 1, 2)]),
        (load(bpe, [0, -10, -10, -10, -1, -2, -3, -10], bpe_types, 2, add_dummy_prefix=False), "abc", [(6, 0, 3)]),
        (load(bpe, [0, -10, -10, -10, -2, -1, -3, -10], bpe_types, 2, add_dummy_prefix=False), "abc", [(6, 0, 3)]),
        (load(no_abc, [0, -10, -10, -10, -1, -1, -3, -10], bpe_types, 2, add_dummy_prefix=False), "abc",
         [(4, 0, 2), (3, 2, 3)]),
        (load(no_abc, [0, -10, -10, -10, -1, -1, -3, -10], bpe_types, 2, add_dummy_prefix=False), "abcbc",
         [(4, 0, 2), (3, 2, 3), (5, 3, 5)]),
        (load(bpe, [0, -10, -10, -10, -1, -2, -3, -10], unused_types, 2, add_dummy_prefix=False), "abc",
         [(4, 0, 2), (3, 2, 3)]),
        (load(bpe, [0, -10, -10, -10, -1, -2, -3, -10], unused_types, 2, add_dummy_prefix=False), "xya",
         [(0, 0, 2), (1, 2, 3)]),
        (load(bpe, [0, -10, -10, -10, -1, -2, -3, -10], unused_types, 2), "a b",
         [(7, 0, 0), (1, 0, 1), (7, 1, 2), (2, 2, 3)]),
        (load(control, [0, -1, -1, 0, -1], control_types, 2, add_dummy_prefix=False), "axb",
         [(1, 0, 1), (3, 1, 1), (2, 1, 2)]),
        (load(control, [0, -1, -1, 0, -1], control_types, 1, add_dummy_prefix=False), "axb",
         [(1, 0, 1), (0, 1, 2), (2, 2, 3)]),
    ]
    bad = 0
    for sp, text, expected in cases:
        got = encode(sp, text)
        if got != expected:
            bad += 1
            print(f"{text!r}: library {got}, test expects {expected}")
    print(f"all {len(cases)} cases agree" if bad == 0 else f"{bad} of {len(cases)} cases differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
