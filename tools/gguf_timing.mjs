// llama.cpp's prompt processing on the ~1.1B random Llama of tools/gguf_timing.cpp, through node-llama-cpp 3.21.1
// (see tools/gguf_fixtures.mjs for the install): CPU, 2 threads, batch = the prompt, F16 KV cache, no flash
// attention; best of REPEATS evaluations of TOKENS ids from a cleared sequence.
//   node tools/gguf_timing.mjs build/llama1b_F16.gguf 512 3
import path from "node:path";
import { pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const { getLlama } = await import(
  pathToFileURL(path.join(root, "build/npm-llama/node_modules/node-llama-cpp/dist/index.js")).href);
const [file, tokensArg = "512", repeatsArg = "3"] = process.argv.slice(2);
const tokens = Number(tokensArg), repeats = Number(repeatsArg);
const ids = Array.from({ length: tokens }, (_, i) => (i * 7919 + 1) % 32000);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error", maxThreads: 2 });
const model = await llama.loadModel({ modelPath: path.resolve(file), gpuLayers: 0 });
const context = await model.createContext({ contextSize: Math.max(tokens, 512), batchSize: tokens, threads: 2,
                                            flashAttention: false, sequences: 1 });
const sequence = context.getSequence();
let best = Infinity;
for (let k = 0; k < repeats; ++k) {
  await sequence.clearHistory();
  const start = process.hrtime.bigint();
  await sequence.evaluateWithoutGeneratingNewTokens(ids);
  best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
}
console.log(`llama.cpp: ${tokens} tokens, best of ${repeats}: ${best.toFixed(3)} s, ${(tokens / best).toFixed(1)} tokens/s`);
await context.dispose();
await model.dispose();
