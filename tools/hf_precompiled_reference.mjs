// Reference encodings of tests/data/hf_tokenizer/precompiled_unigram.json (tools/make_hf_precompiled_fixture.py) by
// the real Hugging Face `tokenizers` (the Rust library's Node addon), for test_hf_tokenizer.cpp. Every third string of
// tests/data/tokenizers/corpus.json; offsets converted from code points to UTF-8 bytes of the input.
//
// Run from a scratch directory holding `npm install -E tokenizers@0.23.2` (e.g. build/npm-ref, as
// tools/tokenizer_reference.mjs sets up):  node ../../tools/hf_precompiled_reference.mjs
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(join(process.cwd(), 'package.json'));
const { Tokenizer } = require('tokenizers');
const version = require('tokenizers/package.json').version;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const file = join(root, 'tests', 'data', 'hf_tokenizer', 'precompiled_unigram.json');
const corpus = JSON.parse(readFileSync(join(root, 'tests', 'data', 'tokenizers', 'corpus.json'), 'utf8'));
const tok = Tokenizer.fromFile(file);
const strings = [];
const encodings = [];
for (let i = 0; i < corpus.length; i += 3) {
  const s = corpus[i];
  const enc = await tok.encode(s, null, { addSpecialTokens: true });
  const ids = enc.getIds();
  const offsets = enc.getOffsets();
  const byteAt = [0];
  for (const c of Array.from(s)) byteAt.push(byteAt[byteAt.length - 1] + Buffer.byteLength(c, 'utf8'));
  const flat = [];
  for (let k = 0; k < ids.length; ++k) flat.push(ids[k], byteAt[offsets[k][0]], byteAt[offsets[k][1]]);
  strings.push(i);
  encodings.push(flat);
}
// The strings themselves are stored, so that the reference does not depend on the corpus staying as it is.
writeFileSync(join(root, 'tests', 'data', 'hf_tokenizer', 'precompiled_unigram.reference.json'),
              JSON.stringify({ reference: `tokenizers ${version} (Node addon)`, offsets: 'utf8_bytes',
                               texts: strings.map((i) => corpus[i]), encodings }));
console.log(`wrote ${strings.length} reference encodings`);
