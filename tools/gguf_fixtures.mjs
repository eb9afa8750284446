// Reference log-probabilities from llama.cpp itself for the GGUF fixtures that tools/make_gguf_fixtures.cpp
// writes. llama.cpp comes from the npm package node-llama-cpp, pinned exactly (it ships prebuilt CPU binaries):
//   mkdir -p build/npm-llama && (cd build/npm-llama && npm i -E node-llama-cpp@3.21.1)
//   NODE_PATH=build/npm-llama/node_modules node tools/gguf_fixtures.mjs build/gguf-fixtures
// (NODE_PATH does not apply to ESM imports, so the package is imported from build/npm-llama by path.)
//
// For each llama_<TYPE>.gguf and qwen2_F32.gguf: load on the CPU, one context with an F32 KV cache and no flash attention (so the
// F32 model is evaluated in float throughout), evaluate the fixed ids of tests/support/gguf_random_llama.hpp in
// one batch with LlamaContextSequence.controlledEvaluate, asking every position for the full next-token
// probabilities (sampled greedily: the probabilities are llama.cpp's logits through a float softmax), and write
// log(p) as tests/data/gguf/<name>.logprobs.npy, float64 [positions x vocab].
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const { getLlama } = await import(
  pathToFileURL(path.join(root, "build/npm-llama/node_modules/node-llama-cpp/dist/index.js")).href);

const ids = [1, 262, 75, 104, 101, 32, 280, 3, 258, 44, 287, 120, 266, 10, 200, 271, 33, 2, 261, 150];
const types = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"];
const files = types.map((type) => `llama_${type}`).concat(["qwen2_F32"]);
const inputDir = process.argv[2] ?? "build/gguf-fixtures";
const outDir = path.join(root, "tests/data/gguf");

function writeNpy(file, rows, cols, values) {
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const head = Buffer.alloc(10);
  head.write("\x93NUMPY", 0, "latin1");
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const data = Buffer.alloc(rows * cols * 8);
  for (let i = 0; i < values.length; ++i) data.writeDoubleLE(values[i], i * 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, "latin1"), data]));
}

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
for (const type of files) {
  const model = await llama.loadModel({ modelPath: path.resolve(inputDir, `${type}.gguf`), gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: 64, batchSize: 64, sequences: 1, threads: 2, flashAttention: false,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
  });
  const sequence = context.getSequence();
  const results = await sequence.controlledEvaluate(
    ids.map((id) => [id, { generateNext: { probabilities: true, options: { temperature: 0 } } }]));
  const nVocab = 288;
  const values = new Float64Array(ids.length * nVocab);
  results.forEach((r, pos) => {
    const probs = r.next.probabilities;
    if (probs.size !== nVocab) throw new Error(`${type}: position ${pos} has ${probs.size} probabilities`);
    for (const [token, p] of probs) values[pos * nVocab + token] = Math.log(p);
  });
  writeNpy(path.join(outDir, `${type}.logprobs.npy`), ids.length, nVocab, values);
  console.log(type, "kv", context.kvCacheKeyType, "first position top:", [...results[0].next.probabilities][0]);
  await context.dispose();
  await model.dispose();
}
