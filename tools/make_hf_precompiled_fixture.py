#!/usr/bin/python3
"""Writes tests/data/hf_tokenizer/precompiled_unigram.json: a Unigram tokenizer.json whose normalizer is the
`Precompiled` character map of a real SentencePiece model (nmt_nfkc), trained here by the real sentencepiece
library on the conformance corpus, as Hugging Face's converters write T5/ALBERT/XLM-R files.

Run with Debian's python (python3-sentencepiece), from the repository root:
    /usr/bin/python3 tools/make_hf_precompiled_fixture.py
then write the reference encodings with the real `tokenizers` (see tools/hf_precompiled_reference.mjs).
The model proto is read with a minimal protobuf wire decoder (no protobuf package needed).
"""
import base64
import json
import os
import struct
import tempfile

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, 'tests', 'data', 'tokenizers', 'corpus.json')
OUT = os.path.join(ROOT, 'tests', 'data', 'hf_tokenizer', 'precompiled_unigram.json')


def varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def fields(b):
    i, out = 0, []
    while i < len(b):
        key, i = varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = varint(b, i)
        elif w == 1:
            v, i = b[i:i + 8], i + 8
        elif w == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif w == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError('unsupported wire type %d' % w)
        out.append((f, v))
    return out


def main():
    corpus = json.load(open(CORPUS, encoding='utf-8'))
    with tempfile.TemporaryDirectory() as tmp:
        train = os.path.join(tmp, 'train.txt')
        with open(train, 'w', encoding='utf-8') as f:
            f.write('\n'.join(corpus))
        spm.SentencePieceTrainer.train(input=train, model_prefix=os.path.join(tmp, 'm'), vocab_size=400,
                                       model_type='unigram', normalization_rule_name='nmt_nfkc',
                                       character_coverage=0.9995, byte_fallback=False, minloglevel=2,
                                       num_threads=1, seed_sentencepiece_size=100000)
        data = open(os.path.join(tmp, 'm.model'), 'rb').read()
    pieces, unk, charsmap = [], None, None
    for f, v in fields(data):
        if f == 1:  # SentencePiece: 1 piece, 2 score, 3 type (2 = UNKNOWN)
            p = dict(fields(v))
            if p.get(3, 1) == 2:
                unk = len(pieces)
            pieces.append([p[1].decode('utf-8'), struct.unpack('<f', p[2])[0] if 2 in p else 0.0])
        elif f == 3:  # NormalizerSpec: 2 precompiled_charsmap
            charsmap = dict(fields(v)).get(2)
    tokenizer = {
        'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': [],
        'normalizer': {'type': 'Sequence', 'normalizers': [
            {'type': 'Precompiled', 'precompiled_charsmap': base64.b64encode(charsmap).decode('ascii')},
            {'type': 'Replace', 'pattern': {'Regex': ' {2,}'}, 'content': ' '}]},
        'pre_tokenizer': {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'always', 'split': True},
        'post_processor': None, 'decoder': None,
        'model': {'type': 'Unigram', 'unk_id': unk, 'vocab': pieces, 'byte_fallback': False},
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w', encoding='utf-8') as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    print('wrote', OUT, len(pieces), 'pieces,', len(charsmap), 'charsmap bytes')


if __name__ == '__main__':
    main()
