#!/usr/bin/python3
"""Writes tests/data/sentencepiece/: small SentencePiece models trained with the real library and its encodings.

Run with Debian's python (it has python3-sentencepiece 0.1.97):

    /usr/bin/python3 tools/make_sentencepiece_fixtures.py

The models are trained on the CC BY sentences of tests/data/gum/ (see README.md there) plus a few generated lines,
so that the vocabularies are small (a few hundred pieces) and some characters stay unknown. For every model it
encodes the same list of strings (strings.json: the GUM sentences, windows of GUM words joined by varied
whitespace, and hard cases: emoji, CJK, combining marks, digit and whitespace runs, newlines, tabs, U+00A0,
fullwidth forms, characters no model knows) and writes <model>.json: the ids and, from the library's own
ImmutableSentencePieceText, the byte span [begin, end) in the original text of every piece: "cases" holds, per
string, a flat list id, begin, end, id, begin, end, ...; "bos_cases" the ids of the first 20 strings with add_bos.
The C++ tests read these files; they need no Python.
"""

import io
import json
import os
import random
import sys

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUM = [os.path.join(ROOT, "tests", "data", "gum", f) for f in ("gum_cc_by_sample.conllu", "gum_cc_by_excerpt.conllu")]
OUT = os.path.join(ROOT, "tests", "data", "sentencepiece")


def gum_sentences_and_words():
    sentences, words = [], []
    for path in GUM:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("# text = "):
                    sentences.append(line[len("# text = "):].rstrip("\n"))
                elif line and line[0].isdigit():
                    cols = line.rstrip("\n").split("\t")
                    if len(cols) > 2 and "-" not in cols[0] and "." not in cols[0]:
                        words.append(cols[1])
    return sorted(set(sentences)), words


HARD = [
    "", " ", "  ", "\t", "\n", " \n ", "\r\n", "   leading", "trailing   ", "a  b   c", "a\tb\nc", "a\u00a0b",
    "\u00a0\u00a0x", "\u3000全角スペース", "ＡＢＣ　１２３！？", "ﬁﬂﬃ ligatures", "Ⅻ ㍻ ㌔", "x² H₂O ½", "é é", "e\u0301",
    "a\u0308\u0323", "\u0301 starts with a mark", "Å Å Å", "한국어 텍스트", "日本語のテキストです。", "中文分词测试",
    "🙂", "👩\u200d👩\u200d👧", "🇫🇷🇩🇪", "👍🏽 ok", "emoji🙂inside", "1234567890", "3.14159", "2026-12-07 20:58",
    "007 0 00 000", "12,345.67", "ᚠᛇᚻ᛫ᛒᛦᚦ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ქართული", "தமிழ்", "\u200bzero\u200bwidth", "\ufeffbom",
    "ctrl\x01\x02\x7f", "<s>", "</s>", "<unk>", "<0x41>", "<sep>", "a<sep>b", "<sep><sep>", "\u2581", "\u2581\u2581x",
    "▁the", "hello world", "Hello, World!", "HELLO", "it's", "«quotes» “curly” ‘single’", "a—b–c", "…", "C++ & C#",
    "tab\t\tstop", "new\n\nline", "mixed \t\n\u00a0 whitespace", "ǅ ǈ ǋ", "İstanbul ı", "ß ẞ", "Ωμέγα", "Привет мир",
    "مرحبا", "שלום", "नमस्ते", "ไทย", "\U0010ffff", "\ue000 private use", "a" * 60, "9" * 40, " " * 30 + "x",
]

# Characters for random strings: common, hard and unknown blocks mixed.
POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:'\"!?()-") +
        [" "] * 12 + ["\t", "\n", "\u00a0", "\u3000", "\u2581"] +
        list("éèàöüçñßøÅ日本語中文한국ÿĀ") + ["e\u0301", "\u0308"] + list("ＡＢ１２！") + list("ﬁ²½Ⅻ") +
        ["🙂", "👍", "🏽", "\u200d", "🇫", "🇷"] + list("ᚠქத𝔘") + ["<sep>"])


def make_strings(sentences, words, rng):
    strings = list(sentences) + list(HARD)
    separators = [" "] * 10 + ["  ", "\t", "\n", "\u00a0", "", " \n", "   "]
    while len(strings) < 900:
        n = rng.randint(1, 14)
        start = rng.randrange(0, len(words) - n)
        parts = words[start:start + n]
        s = parts[0]
        for w in parts[1:]:
            s += rng.choice(separators) + w
        r = rng.random()
        if r < 0.15:
            s = rng.choice([" ", "  ", "\t", "\n"]) + s
        elif r < 0.3:
            s = s + rng.choice([" ", "  ", "\n"])
        if rng.random() < 0.3:
            at = rng.randint(0, len(s))
            s = s[:at] + rng.choice(HARD[10:]) + s[at:]
        strings.append(s)
    while len(strings) < 1100:
        strings.append("".join(rng.choice(POOL) for _ in range(rng.randint(1, 24))))
    return strings


# name: trainer options. Kept small: vocabularies of a few hundred pieces; three use the nmt_nfkc charsmap.
MODELS = {
    "unigram_nfkc": dict(model_type="unigram", vocab_size=400),
    "unigram_identity_bytes": dict(model_type="unigram", vocab_size=600, byte_fallback=True,
                                   normalization_rule_name="identity"),
    "unigram_user_digits_nodummy": dict(model_type="unigram", vocab_size=400, normalization_rule_name="identity",
                                        user_defined_symbols=["<sep>", "hello", "🙂", "ab"], split_digits=True,
                                        add_dummy_prefix=False),
    "unigram_suffix_keepspaces": dict(model_type="unigram", vocab_size=350, normalization_rule_name="identity",
                                      treat_whitespace_as_suffix=True, remove_extra_whitespaces=False),
    "bpe_nfkc_bytes": dict(model_type="bpe", vocab_size=600, byte_fallback=True),
    # A small charsmap compiled from our own rules (RULES below): multi-character keys, expansions, whitespace.
    "unigram_custom_rules": dict(model_type="unigram", vocab_size=300, normalization_rule_tsv="RULES"),
    "bpe_identity": dict(model_type="bpe", vocab_size=400, normalization_rule_name="identity"),
    # escape_whitespaces=false cannot be trained (the trainers require it), so it is appended to the trained model
    # as a second normalizer_spec field, which protobuf merges into the first: spaces stay U+0020.
    "bpe_identity_noescape": dict(model_type="bpe", vocab_size=400, normalization_rule_name="identity",
                                  escape_whitespaces_appended=False),
    "bpe_user_nodummy_keepspaces": dict(model_type="bpe", vocab_size=450, normalization_rule_name="nmt_nfkc_cf",
                                        user_defined_symbols=["<sep>", "hello", "🙂"], add_dummy_prefix=False,
                                        remove_extra_whitespaces=False, split_digits=True, byte_fallback=True,
                                        unk_id=3, bos_id=0, eos_id=1, pad_id=2),
}


# Normalisation rules (source code points -> target code points, hex) for unigram_custom_rules: the longest
# matching source wins ("t h" over "t"), a rule may expand ("é" -> "e" + U+0301) or map to a space.
RULES = """74\t54
74 68\t3B8
74 68 65\t2234
41\t61
E9\t65 301
FB01\t66 69
3000\t20
9\t20
A\t20
1F642\t3A 29
"""


def encode(sp, text):
    """Ids and UTF-8 byte spans. The library reports byte offsets; the Python wrapper turns them into offsets in
    characters of the str (even for bytes input), so they are turned back: exact, since SentencePiece's offsets
    always fall on character boundaries of valid UTF-8 input."""
    proto = sp.encode(text, out_type="immutable_proto")
    byte_at = [0]
    for ch in text:
        byte_at.append(byte_at[-1] + len(ch.encode("utf-8")))
    return [p.id for p in proto.pieces], [[byte_at[p.begin], byte_at[p.end]] for p in proto.pieces]


def main():
    rng = random.Random(20261207)
    sentences, words = gum_sentences_and_words()
    strings = make_strings(sentences, words, rng)
    extra = ["日本語 中文 🙂 emoji 3.14 ＡＢＣ é" for _ in range(3)] + ["tab\tseparated\tvalues", "<sep> hello <sep>"]
    os.makedirs(OUT, exist_ok=True)
    os.chdir(OUT)
    for name, options in MODELS.items():
        # From an iterator into memory, so that no path of this machine ends up in the model's TrainerSpec.
        model = io.BytesIO()
        if options.get("normalization_rule_tsv") == "RULES":
            rules = "rules.tsv"  # relative (to OUT, the working directory): the model records the name given
            with open(rules, "w") as f:
                f.write(RULES)
            options = dict(options, normalization_rule_tsv=rules)
        train_options = {k: v for k, v in options.items() if k != "escape_whitespaces_appended"}
        spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences + extra), model_writer=model,
                                       hard_vocab_limit=False, num_threads=1, minloglevel=2, **train_options)
        data = model.getvalue()
        if "escape_whitespaces_appended" in options:
            # ModelProto field 3 (normalizer_spec), length 2: NormalizerSpec field 5 (escape_whitespaces), varint 0.
            data += bytes([(3 << 3) | 2, 2, (5 << 3) | 0, 0])
        prefix = os.path.join(OUT, name)
        with open(prefix + ".model", "wb") as f:
            f.write(data)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        cases = []
        for text in strings:
            ids, spans = encode(sp, text)
            assert ids == sp.encode(text), text
            cases.append([x for i, (b, e) in zip(ids, spans) for x in (i, b, e)])
        bos = []
        for text in strings[:20]:
            # The proto API refuses add_bos; the ids say where BOS goes (a span of its own it has not).
            bos.append(sp.encode(text, add_bos=True))
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
            json.dump({"model": name + ".model", "library": "sentencepiece " + spm.__version__,
                       "options": {k: v for k, v in options.items()}, "size": sp.get_piece_size(),
                       "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "unk_id": sp.unk_id(),
                       "cases": cases, "bos_cases": bos}, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        if "normalization_rule_tsv" in options:
            os.remove(options["normalization_rule_tsv"])
            options["normalization_rule_tsv"] = "RULES in tools/make_sentencepiece_fixtures.py"
        print(name, sp.get_piece_size(), os.path.getsize(prefix + ".model"), file=sys.stderr)
    with open(os.path.join(OUT, "strings.json"), "w", encoding="utf-8") as f:
        json.dump(strings, f, ensure_ascii=False, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
