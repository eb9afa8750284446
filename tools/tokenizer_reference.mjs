// Reference encodings for the tokenizer conformance test (tests/test_tokenizer_conformance.cpp): the real
// Hugging Face `tokenizers` library encodes every string of tests/data/tokenizers/corpus.json with each tokenizer,
// and this writes the ids and byte spans it returns, so that the test needs no Node.
//
// How to run (Node 20), from a scratch directory outside git (build/ is ignored):
//
//   mkdir -p build/npm-ref && cd build/npm-ref && npm init -y
//   npm install -E tokenizers@0.23.2 @huggingface/tokenizers@0.2.0
//   ../../tools/fetch-tokenizers.sh          # the real tokenizer.json files, in build/models/tokenizers
//   node ../../tools/tokenizer_reference.mjs [TOKENIZERS_DIR]
//
// TOKENIZERS_DIR defaults to build/models/tokenizers. The packages are resolved from the current directory.
//
// The reference is `tokenizers` (npm), the Rust library itself as a Node addon (prebuilt .node files in the
// package, no install script): the same code as Python's `tokenizers`. `@huggingface/tokenizers` (the pure
// JavaScript port behind transformers.js) encodes the real files too, with their tokenizer_config.json, and
// its ids are compared with the Rust ones: disagreements are counted in each reference file and listed in
// build/tokenizer-reference-disagreements.json, not used as the reference.
//
// Offsets: the Node addon reports each token's span in Unicode code points of the input (not UTF-16 code
// units: "a😀" gives [0,1],[1,2]); this script converts them to UTF-8 byte offsets of the input, which is what
// headlens's text_token holds. Every Rust span starts and ends on a character boundary (a token covering part of
// a character's bytes, as byte-level or byte-fallback tokens do, gets the whole character), so the conversion is
// exact. Each string is encoded with add_special_tokens true (each file's post-processor adds what it adds by
// default), and every fourth of them (every third for the synthetic files) also with add_special_tokens false (the
// post-processor still runs: it trims offsets but adds nothing).
//
// Writes tests/data/tokenizers/<name>.reference.json, one per tokenizer:
//   { "name", "source": "npm" | "synthetic", "file" (npm: folder under TOKENIZERS_DIR; synthetic: path under
//     tests/data/tokenizers), "package", "version", "integrity" (npm only), "tokenizer_json_sha256",
//     "reference", "offsets": "utf8_bytes", "corpus_sha256", "corpus_fnv1a64",
//     "js_port": { "version", "agree", "disagree", "error" },
//     "add_special_tokens": { "strings": [indices into corpus.json], "encodings": [[id, begin, end, id, ...], ...] },
//     "no_special_tokens": { "strings": [...], "encodings": [...] } }
// Synthetic tokenizers (tests/data/tokenizers/synthetic/*.json, from tools/make_synthetic_tokenizers.mjs) are
// encoded on every eighth GUM sentence and every hard case.

import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(join(process.cwd(), 'package.json'));
const rust = require('tokenizers');
const jsport = require('@huggingface/tokenizers');
const rustVersion = require('tokenizers/package.json').version;
const jsVersion = JSON.parse(readFileSync(require.resolve('@huggingface/tokenizers').replace(/dist\/.*$/, 'package.json'))).version;

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const dataDir = join(root, 'tests', 'data', 'tokenizers');
const tokDir = resolve(process.argv[2] ?? join(root, 'build', 'models', 'tokenizers'));

// The real tokenizers, as tools/fetch-tokenizers.sh pins them (name, package, version, integrity are read from
// the script so the two cannot drift apart).
function pinned() {
  const script = readFileSync(join(here, 'fetch-tokenizers.sh'), 'utf8');
  const rows = [];
  for (const m of script.matchAll(/^\s+"(\S+)\s+(\S+)\s+(\S+)\s+(sha512-\S+)"$/gm)) {
    rows.push({ name: m[1], package: m[2], version: m[3], integrity: m[4] });
  }
  if (rows.length === 0) throw new Error('no pinned tokenizers found in tools/fetch-tokenizers.sh');
  return rows;
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

// 64-bit FNV-1a of the bytes, in hex: the conformance test recomputes it over corpus.json (no SHA-256 in C++ there).
function fnv1a64(buf) {
  let h = 0xcbf29ce484222325n;
  for (const b of buf) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h.toString(16).padStart(16, '0');
}

// UTF-8 byte offset of every code point boundary of s: bytes[k] is where code point k starts.
function codePointToByte(s) {
  const bytes = [0];
  let b = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0);
    b += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    bytes.push(b);
  }
  return bytes;
}

async function encodeAll(file, configFile, strings, indices, addSpecial) {
  const tok = rust.Tokenizer.fromFile(file);
  let js = null;
  let jsError = null;
  try {
    const json = JSON.parse(readFileSync(file, 'utf8'));
    const config = configFile && existsSync(configFile) ? JSON.parse(readFileSync(configFile, 'utf8')) : {};
    js = new jsport.Tokenizer(json, config);
  } catch (e) {
    jsError = String(e.message ?? e).slice(0, 200);
  }
  const encodings = [];
  const disagreements = [];
  let agree = 0;
  for (const i of indices) {
    const s = strings[i];
    const enc = await tok.encode(s, null, { addSpecialTokens: addSpecial });
    const ids = enc.getIds();
    const offsets = enc.getOffsets();
    const toByte = codePointToByte(s);
    const flat = [];
    ids.forEach((id, k) => {
      const [b, e] = offsets[k];
      if (b > e || e >= toByte.length) throw new Error(`${file}: string ${i}: offset [${b},${e}) outside the text`);
      flat.push(id, toByte[b], toByte[e]);
    });
    encodings.push(flat);
    if (js !== null) {
      let jsIds;
      try {
        jsIds = Array.from(js.encode(s, { add_special_tokens: addSpecial }).ids, Number);
      } catch (e) {
        jsIds = `error: ${String(e.message ?? e).slice(0, 120)}`;
      }
      if (JSON.stringify(jsIds) === JSON.stringify(ids)) agree += 1;
      else disagreements.push({ string: i, add_special_tokens: addSpecial, text: s, rust: ids, js: jsIds });
    }
  }
  return { encodings, jsPort: { version: jsVersion, agree, disagree: disagreements.length, error: jsError }, disagreements };
}

// Both encodings of one tokenizer: with special tokens on `indices`, without on every `stride`-th of them.
async function encodeBoth(file, configFile, indices, stride) {
  const plain = indices.filter((_, k) => k % stride === 0);
  const withSpecial = await encodeAll(file, configFile, corpus, indices, true);
  const without = await encodeAll(file, configFile, corpus, plain, false);
  const jsPort = { ...withSpecial.jsPort, agree: withSpecial.jsPort.agree + without.jsPort.agree,
                   disagree: withSpecial.jsPort.disagree + without.jsPort.disagree };
  return { withSpecial, without, plain, jsPort, disagreements: [...withSpecial.disagreements, ...without.disagreements] };
}

function write(name, meta, result, indices) {
  const head = JSON.stringify({
    name,
    ...meta,
    reference: `tokenizers ${rustVersion} (the Rust library's Node addon)`,
    offsets: 'utf8_bytes',
    corpus_sha256: corpusSha,
    corpus_fnv1a64: fnv1a64(corpusText),
    js_port: result.jsPort,
  }).slice(0, -1);
  // Compact: one encoding a line keeps the file small and its diffs readable.
  const lines = (encodings) => `[\n${encodings.map((e) => JSON.stringify(e)).join(',\n')}\n]`;
  const text = `${head},\n"add_special_tokens":{"strings":${JSON.stringify(indices)},\n"encodings":${lines(result.withSpecial.encodings)}},\n` +
               `"no_special_tokens":{"strings":${JSON.stringify(result.plain)},\n"encodings":${lines(result.without.encodings)}}}\n`;
  writeFileSync(join(dataDir, `${name}.reference.json`), text);
  const tokens = result.withSpecial.encodings.reduce((n, e) => n + e.length / 3, 0);
  console.error(`${name}: ${indices.length} strings (${result.plain.length} also without special tokens), ${tokens} tokens; ` +
                `JS port agrees on ${result.jsPort.agree}, disagrees on ${result.jsPort.disagree}` +
                `${result.jsPort.error ? ` (cannot load: ${result.jsPort.error})` : ''}`);
}

const corpusText = readFileSync(join(dataDir, 'corpus.json'));
const corpus = JSON.parse(corpusText);
const corpusSha = sha256(corpusText);
const all = corpus.map((_, i) => i);
const disagreementLog = {};

for (const p of pinned()) {
  const file = join(tokDir, p.name, 'tokenizer.json');
  const stamp = join(tokDir, p.name, '.integrity');
  if (!existsSync(file) || readFileSync(stamp, 'utf8').trim() !== p.integrity) {
    throw new Error(`${file} missing or not from ${p.package}@${p.version}; run tools/fetch-tokenizers.sh`);
  }
  const result = await encodeBoth(file, join(tokDir, p.name, 'tokenizer_config.json'), all, 4);
  write(p.name, { source: 'npm', file: `${p.name}/tokenizer.json`, package: p.package, version: p.version,
                  integrity: p.integrity, tokenizer_json_sha256: sha256(readFileSync(file)) }, result, all);
  disagreementLog[p.name] = result.disagreements;
}

const synthDir = join(dataDir, 'synthetic');
if (existsSync(synthDir)) {
  // Every eighth GUM sentence or variant, and every hand-written or random hard case (those follow, from "").
  const firstHard = corpus.indexOf('');
  const subset = all.filter((i) => i % 8 === 0 || i >= firstHard);
  for (const f of readdirSync(synthDir).filter((f) => f.endsWith('.json')).sort()) {
    const name = `synthetic_${basename(f, '.json')}`;
    const file = join(synthDir, f);
    const result = await encodeBoth(file, null, subset, 3);
    write(name, { source: 'synthetic', file: `synthetic/${f}`, tokenizer_json_sha256: sha256(readFileSync(file)) },
          result, subset);
    disagreementLog[name] = result.disagreements;
  }
}

writeFileSync(join(root, 'build', 'tokenizer-reference-disagreements.json'), JSON.stringify(disagreementLog, null, 1));
