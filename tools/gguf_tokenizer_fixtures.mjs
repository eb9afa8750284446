// Reference token ids from llama.cpp itself for the tokenizer-only GGUF files that
// tools/make_gguf_tokenizer_fixtures.cpp writes (see tests/support/gguf_tokenizer_vocab.hpp). llama.cpp comes from
// the npm package node-llama-cpp, pinned exactly (it ships prebuilt CPU binaries):
//   mkdir -p build/npm-llama && (cd build/npm-llama && npm i -E node-llama-cpp@3.21.1)
//   node tools/gguf_tokenizer_fixtures.mjs build/gguf-tok [build/npm-llama]
// Each file is loaded vocabulary-only and every string of tests/data/tokenizers/corpus.json tokenized with
// LlamaModel.tokenize(text, false): llama_tokenize with add_special = false and parse_special = false. Written as
// tests/data/gguf/tokenize_<name>.json: {"gguf_fnv1a": hex of the GGUF bytes' FNV-1a 64, "ids": [[...], ...]}.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const inputDir = process.argv[2] ?? "build/gguf-tok";
const npmDir = process.argv[3] ?? path.join(root, "build/npm-llama");
const { getLlama } = await import(
  pathToFileURL(path.join(npmDir, "node_modules/node-llama-cpp/dist/index.js")).href);

function fnv1a(bytes) {
  let lo = 0x84222325 >>> 0, hi = 0xCBF29CE4 >>> 0;  // 64-bit FNV-1a in two 32-bit halves
  for (const b of bytes) {
    lo = (lo ^ b) >>> 0;
    // multiply by 0x100000001B3 = 2^40 + 0x1B3
    const l = lo * 0x1B3, carry = Math.floor(l / 0x100000000);
    const nhi = (hi * 0x1B3 + carry + ((lo << 8) >>> 0)) >>> 0;
    lo = l >>> 0;
    hi = nhi;
  }
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

const corpus = JSON.parse(fs.readFileSync(path.join(root, "tests/data/tokenizers/corpus.json"), "utf8"));
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
for (const name of ["spm_fixture", "llama2", "llama3_1", "qwen3", "llama3_1-gpt-2", "llama3_1-default"]) {
  const file = path.resolve(inputDir, `${name}.gguf`);
  const model = await llama.loadModel({ modelPath: file, vocabOnly: true, gpuLayers: 0 });
  const ids = corpus.map((text) => model.tokenize(text, false));
  const out = { gguf_fnv1a: fnv1a(fs.readFileSync(file)), ids };
  fs.writeFileSync(path.join(root, `tests/data/gguf/tokenize_${name}.json`),
                   "{\"gguf_fnv1a\": \"" + out.gguf_fnv1a + "\",\n\"ids\": [\n" +
                   ids.map((x) => JSON.stringify(x)).join(",\n") + "\n]}\n");
  console.log(name, out.gguf_fnv1a, ids.reduce((n, x) => n + x.length, 0), "tokens; first:", ids[0]);
  await model.dispose();
}
