// `headlens attention`: runs one attention layer from files, the way a user checks that a port matches PyTorch.
//
//   headlens attention --weights W.safetensors --input X.npy --out Y.npy [--patterns P.npy] --heads H
//                      [--kv-heads G] [--causal] [--rotary] [--rotary-base B] [--double] ...
//
// The layout of W is detected from its keys: torch.nn.MultiheadAttention's state dict (in_proj_weight, ...) or
// Llama's (q_proj.weight, ...; optional *.bias). Every check runs before any work, and each message names the file,
// key or option that is wrong, what it was and what was expected.

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <headlens/io/npy.hpp>
#include <headlens/io/safetensors.hpp>
#include <headlens/kernels/multi_head_attention.hpp>

#include "command.hpp"

namespace {

using headlens::Index;
using headlens_cli::fail;

struct attention_args {
  std::string weights, input, out, patterns, memory, key_padding, attn_mask, prefix;
  Index heads = 0;
  Index kv_heads = 0;  // 0: from the weights
  bool causal = false, rotary = false, use_double = false;
  double rotary_base = 10000.0;
  Index rotary_dim = 0;  // 0: head_dim
};

std::string shape_text(const std::vector<Index>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// ---- weights -----------------------------------------------------------------------------------------------------

/// The layer as the weights file describes it, before any values are read.
struct layer_plan {
  bool pytorch_mha = false;  // else Llama
  headlens::attention_config config;
  std::string d_model_source;  // the tensor d_model was taken from, for messages
};

/// Shape of tensor `key`, which must exist; `layout` explains why it is needed.
std::vector<Index> shape_of(const headlens::safetensors_file& file, const std::string& key, const char* layout) {
  if (!file.has(key)) {
    std::string names;
    for (const std::string& name : file.names()) names += (names.empty() ? "'" : ", '") + name + "'";
    fail("weights ", file.source(), " have no tensor '", key, "', which the ", layout,
         " layout needs; keys present: ", names.empty() ? std::string("none") : names);
  }
  return file.info(key).shape;
}

void expect_shape(const headlens::safetensors_file& file, const std::string& key, const std::vector<Index>& want,
                  const std::string& why) {
  const std::vector<Index> got = file.info(key).shape;
  if (got != want) {
    fail("tensor '", key, "' in ", file.source(), " has shape ", shape_text(got), ", expected ", shape_text(want), " (",
         why, ")");
  }
}

layer_plan plan_layer(const headlens::safetensors_file& file, const attention_args& args) {
  const auto key = [&](const char* name) { return args.prefix + name; };
  layer_plan plan;
  headlens::attention_config& c = plan.config;
  c.n_heads = args.heads;
  c.causal = args.causal;
  c.rotary = args.rotary;
  c.rotary_base = args.rotary_base;
  c.rotary_dim = args.rotary_dim;

  if (file.has(key("in_proj_weight"))) {
    constexpr const char* layout = "nn.MultiheadAttention";
    plan.pytorch_mha = true;
    plan.d_model_source = key("in_proj_weight");
    const std::vector<Index> in = file.info(key("in_proj_weight")).shape;
    if (in.size() != 2 || in[0] != 3 * in[1]) {
      fail("tensor '", key("in_proj_weight"), "' in ", file.source(), " has shape ", shape_text(in),
           ", expected [3 * d_model, d_model] (q, k and v stacked)");
    }
    const Index e = in[1];
    if (e % args.heads != 0) {
      fail("--heads is ", args.heads, ", expected a divisor of d_model = ", e, " (from '", key("in_proj_weight"), "' ",
           shape_text(in), ")");
    }
    if (args.kv_heads != 0 && args.kv_heads != args.heads) {
      fail("--kv-heads is ", args.kv_heads, ", expected ", args.heads, " (= --heads): ", layout,
           " weights have a key and value head per query head");
    }
    shape_of(file, key("out_proj.weight"), layout);
    expect_shape(file, key("out_proj.weight"), {e, e}, "[d_model, d_model]");
    if (file.has(key("in_proj_bias"))) expect_shape(file, key("in_proj_bias"), {3 * e}, "[3 * d_model]");
    if (file.has(key("out_proj.bias"))) expect_shape(file, key("out_proj.bias"), {e}, "[d_model]");
    c.d_model = e;
    c.n_kv_heads = args.heads;
    c.head_dim = e / args.heads;
    c.bias = file.has(key("in_proj_bias")) || file.has(key("out_proj.bias"));
  } else if (file.has(key("q_proj.weight"))) {
    constexpr const char* layout = "Llama-style (q_proj/k_proj/v_proj/o_proj)";
    plan.d_model_source = key("q_proj.weight");
    const std::vector<Index> q = file.info(key("q_proj.weight")).shape;
    if (q.size() != 2) {
      fail("tensor '", key("q_proj.weight"), "' in ", file.source(), " has shape ", shape_text(q),
           ", expected [n_heads * head_dim, d_model]");
    }
    if (q[0] % args.heads != 0) {
      fail("--heads is ", args.heads, ", expected a divisor of the ", q[0], " rows of '", key("q_proj.weight"), "' ",
           shape_text(q), " (n_heads * head_dim)");
    }
    const Index d = q[1], hd = q[0] / args.heads;
    const std::vector<Index> k = shape_of(file, key("k_proj.weight"), layout);
    shape_of(file, key("v_proj.weight"), layout);
    shape_of(file, key("o_proj.weight"), layout);
    Index kv = args.kv_heads;
    if (kv == 0) {  // from k_proj.weight: [n_kv_heads * head_dim, d_model]
      if (k.size() != 2 || k[0] % hd != 0 || k[0] == 0) {
        fail("tensor '", key("k_proj.weight"), "' in ", file.source(), " has shape ", shape_text(k),
             ", expected [n_kv_heads * head_dim, d_model] with head_dim = ", hd, " and d_model = ", d);
      }
      kv = k[0] / hd;
    }
    if (args.heads % kv != 0) {
      fail(args.kv_heads ? "--kv-heads is " : "the weights give n_kv_heads = ", kv, ", expected a divisor of --heads = ",
           args.heads);
    }
    const std::string kv_why = "n_kv_heads * head_dim = " + std::to_string(kv) + " * " + std::to_string(hd) +
                               " rows, d_model = " + std::to_string(d) + " columns";
    expect_shape(file, key("k_proj.weight"), {kv * hd, d}, kv_why);
    expect_shape(file, key("v_proj.weight"), {kv * hd, d}, kv_why);
    expect_shape(file, key("o_proj.weight"), {d, args.heads * hd},
                 "d_model rows, n_heads * head_dim = " + std::to_string(args.heads) + " * " + std::to_string(hd) +
                     " columns");
    const std::pair<const char*, Index> biases[] = {
        {"q_proj.bias", args.heads * hd}, {"k_proj.bias", kv * hd}, {"v_proj.bias", kv * hd}, {"o_proj.bias", d}};
    c.bias = false;
    for (const auto& b : biases) {
      if (file.has(key(b.first))) {
        expect_shape(file, key(b.first), {b.second}, "one entry per output row of its weight");
        c.bias = true;
      }
    }
    c.d_model = d;
    c.n_kv_heads = kv;
    c.head_dim = hd;
  } else if (file.has(key("q_proj_weight"))) {
    fail("weights ", file.source(), " have '", key("q_proj_weight"),
         "': nn.MultiheadAttention with kdim or vdim != embed_dim, which headlens attention does not support "
         "(keys and values must have width d_model)");
  } else {
    std::string names;
    for (const std::string& name : file.names()) names += (names.empty() ? "'" : ", '") + name + "'";
    fail("weights ", file.source(), " have neither '", key("in_proj_weight"), "' (nn.MultiheadAttention) nor '",
         key("q_proj.weight"), "' (Llama-style); keys present: ", names.empty() ? std::string("none") : names,
         args.prefix.empty() ? " (use --prefix for keys under a module path)" : "");
  }

  if (c.rotary) {
    const Index r = c.rotary_size();
    if (r <= 0 || r > c.head_dim || r % 2 != 0) {
      fail("--rotary-dim is ", args.rotary_dim, args.rotary_dim == 0 ? " (head_dim)" : "",
           ", expected an even number from 2 to head_dim = ", c.head_dim);
    }
    if (!(args.rotary_base > 1)) fail("--rotary-base is ", args.rotary_base, ", expected a number above 1");
  }
  return plan;
}

template <class Scalar>
headlens::attention_weights<Scalar> load_weights(const headlens::safetensors_file& file, const attention_args& args,
                                                 const layer_plan& plan) {
  const auto key = [&](const char* name) { return args.prefix + name; };
  const auto bias = [&](const char* name, Index size) -> headlens::vector<Scalar> {
    if (!plan.config.bias) return {};
    if (file.has(key(name))) return file.read_vector<Scalar>(key(name), size);
    return headlens::vector<Scalar>::Zero(size);  // a layer with some biases: the missing ones are zero
  };
  const Index d = plan.config.d_model, hd = plan.config.head_dim;
  if (plan.pytorch_mha) {
    return headlens::attention_weights<Scalar>::from_pytorch_mha(
        file.read_matrix<Scalar>(key("in_proj_weight")), bias("in_proj_bias", 3 * d),
        file.read_matrix<Scalar>(key("out_proj.weight")), bias("out_proj.bias", d));
  }
  const Index q_rows = plan.config.n_heads * hd, kv_rows = plan.config.kv_heads() * hd;
  return headlens::attention_weights<Scalar>::from_linear(
      file.read_matrix<Scalar>(key("q_proj.weight")), file.read_matrix<Scalar>(key("k_proj.weight")),
      file.read_matrix<Scalar>(key("v_proj.weight")), file.read_matrix<Scalar>(key("o_proj.weight")),
      bias("q_proj.bias", q_rows), bias("k_proj.bias", kv_rows), bias("v_proj.bias", kv_rows),
      bias("o_proj.bias", d));
}

// ---- activations -------------------------------------------------------------------------------------------------

/// A [T x d_model] or [B x T x d_model] float .npy: its batch, length, and whether it had the batch axis.
struct sequence_file {
  headlens::npy_array array;
  Index batch = 1, tokens = 0;
  bool batched = false;
};

sequence_file read_sequences(const std::string& path, const char* what, const layer_plan& plan) {
  sequence_file s;
  s.array = headlens::read_npy(path);
  const auto& shape = s.array.shape;
  const Index d = plan.config.d_model;
  if (s.array.type != headlens::dtype::float32 && s.array.type != headlens::dtype::float64) {
    fail(what, " ", path, " has dtype ", headlens::dtype_name(s.array.type), ", expected float32 or float64");
  }
  if ((shape.size() != 2 && shape.size() != 3) || shape.back() != d) {
    fail(what, " ", path, " has shape ", shape_text(shape), ", expected [T, ", d, "] or [B, T, ", d, "] (d_model = ",
         d, " from '", plan.d_model_source, "')");
  }
  s.batched = shape.size() == 3;
  s.batch = s.batched ? shape[0] : 1;
  s.tokens = shape[shape.size() - 2];
  if (s.batch == 0 || s.tokens == 0) fail(what, " ", path, " has shape ", shape_text(shape), ", expected at least one token");
  return s;
}

template <class Scalar>
headlens::matrix<Scalar> rows_of(const sequence_file& s, Index d) {
  const headlens::tensor<Scalar> t = headlens::as_tensor<Scalar>(s.array);
  headlens::matrix<Scalar> m(s.batch * s.tokens, d);
  std::copy(t.data.begin(), t.data.end(), m.data());
  return m;
}

/// Writes `count` values as a .npy of `type` (float32 or float64) and `shape`.
template <class Scalar>
void write_as(const std::string& path, headlens::dtype type, const Scalar* data, const std::vector<Index>& shape) {
  std::size_t count = 1;
  for (Index e : shape) count *= std::size_t(e);
  if (type == headlens::dtype::float32) {
    const std::vector<float> values(data, data + count);
    headlens::write_npy(path, values.data(), shape);
  } else {
    const std::vector<double> values(data, data + count);
    headlens::write_npy(path, values.data(), shape);
  }
}

/// Collects every head's pattern into [B x H x T_q x T_k], C order.
template <class Scalar>
struct pattern_collector {
  static constexpr headlens::point_set points{headlens::hook_point::pattern};
  Index heads, t_q, t_k;
  std::vector<Scalar> values;
  pattern_collector(Index batch, Index heads_, Index t_q_, Index t_k_)
      : heads(heads_), t_q(t_q_), t_k(t_k_), values(std::size_t(batch * heads_ * t_q_ * t_k_), Scalar(0)) {}
  void operator()(const headlens::hook_context& ctx, headlens::matrix_view<Scalar> p) {
    Scalar* dst = values.data() + std::size_t(((ctx.batch_row * heads + ctx.head) * t_q) * t_k);
    for (Index i = 0; i < t_q; ++i)
      for (Index j = 0; j < t_k; ++j) dst[i * t_k + j] = p(i, j);
  }
};

template <class Scalar>
void run(const attention_args& args, const headlens::safetensors_file& file, const layer_plan& plan,
         const sequence_file& x, const sequence_file* memory) {
  const Index d = plan.config.d_model, heads = plan.config.n_heads;
  const Index t_q = x.tokens, t_k = memory ? memory->tokens : x.tokens;

  headlens::forward_options<Scalar> options;
  options.batch = x.batch;
  if (!args.key_padding.empty()) {
    const headlens::npy_array kp = headlens::read_npy(args.key_padding);
    if (kp.type != headlens::dtype::bool8) {
      fail("key padding ", args.key_padding, " has dtype ", headlens::dtype_name(kp.type),
           ", expected bool (true = padding)");
    }
    const bool as_row = !x.batched && kp.shape == std::vector<Index>{t_k};
    if (!as_row && kp.shape != std::vector<Index>{x.batch, t_k}) {
      fail("key padding ", args.key_padding, " has shape ", shape_text(kp.shape), ", expected [B, T_k] = [", x.batch,
           ", ", t_k, "]", x.batched ? "" : " or [T_k]");
    }
    const headlens::tensor<bool> values = headlens::as_tensor<bool>(kp);
    options.key_padding.resize(x.batch, t_k);
    for (Index i = 0; i < options.key_padding.size(); ++i) options.key_padding.data()[i] = values.data[std::size_t(i)];
  }
  if (!args.attn_mask.empty()) {
    const headlens::npy_array mask = headlens::read_npy(args.attn_mask);
    if (mask.type != headlens::dtype::float32 && mask.type != headlens::dtype::float64) {
      fail("attention mask ", args.attn_mask, " has dtype ", headlens::dtype_name(mask.type),
           ", expected float32 or float64 (additive, -inf blocks)");
    }
    if (mask.shape != std::vector<Index>{t_q, t_k}) {
      fail("attention mask ", args.attn_mask, " has shape ", shape_text(mask.shape), ", expected [T_q, T_k] = [", t_q,
           ", ", t_k, "]");
    }
    options.attn_mask = headlens::as_matrix<Scalar>(mask);
  }

  const headlens::multi_head_attention<Scalar> mha(plan.config, load_weights<Scalar>(file, args, plan));
  const headlens::matrix<Scalar> xs = rows_of<Scalar>(x, d);
  headlens::matrix<Scalar> out;
  std::unique_ptr<pattern_collector<Scalar>> patterns;
  if (!args.patterns.empty()) patterns = std::make_unique<pattern_collector<Scalar>>(x.batch, heads, t_q, t_k);
  if (memory) {
    const headlens::matrix<Scalar> ms = rows_of<Scalar>(*memory, d);
    out = patterns ? mha.forward_cross(xs, ms, options, *patterns) : mha.forward_cross(xs, ms, options);
  } else {
    out = patterns ? mha.forward(xs, options, *patterns) : mha.forward(xs, options);
  }

  write_as(args.out, x.array.type, out.data(), x.array.shape);
  std::cout << "wrote " << args.out << " " << shape_text(x.array.shape) << " " << headlens::dtype_name(x.array.type);
  if (patterns) {
    std::vector<Index> shape{heads, t_q, t_k};
    if (x.batched) shape.insert(shape.begin(), x.batch);
    write_as(args.patterns, x.array.type, patterns->values.data(), shape);
    std::cout << " and " << args.patterns << " " << shape_text(shape);
  }
  std::cout << " (" << (plan.pytorch_mha ? "nn.MultiheadAttention" : "Llama-style") << " weights, d_model " << d
            << ", " << heads << " heads over " << plan.config.kv_heads() << " kv heads of " << plan.config.head_dim
            << ", " << (std::is_same<Scalar, double>::value ? "double" : "float") << ")\n";
}

void run_attention(const attention_args& args) {
  const headlens::safetensors_file file(args.weights);
  const layer_plan plan = plan_layer(file, args);
  const sequence_file x = read_sequences(args.input, "input", plan);
  sequence_file memory;
  if (!args.memory.empty()) {
    if (args.causal) fail("--causal is not allowed with --memory (cross-attention has no causal order)");
    memory = read_sequences(args.memory, "memory", plan);
    if (memory.batched != x.batched || memory.batch != x.batch) {
      fail("memory ", args.memory, " has shape ", shape_text(memory.array.shape), ", expected ",
           x.batched ? "[" + std::to_string(x.batch) + ", T_k, d_model]" : std::string("[T_k, d_model]"),
           " to match the input's ", shape_text(x.array.shape));
    }
  }
  const bool use_double = args.use_double || x.array.type == headlens::dtype::float64;
  const sequence_file* mem = args.memory.empty() ? nullptr : &memory;
  if (use_double) {
    run<double>(args, file, plan, x, mem);
  } else {
    run<float>(args, file, plan, x, mem);
  }
}

void setup_attention(CLI::App& app) {
  auto args = std::make_shared<attention_args>();
  CLI::App* sub = app.add_subcommand(
      "attention",
      "Run one attention layer from files: Y = attention(X) with weights W, optionally saving every head's pattern. "
      "This is how to check that a model port matches PyTorch.");
  sub->add_option("--weights", args->weights,
                  "safetensors file with the layer's state dict: torch.nn.MultiheadAttention's (in_proj_weight "
                  "[3E x E], out_proj.weight [E x E], optional in_proj_bias, out_proj.bias) or Llama-style "
                  "(q_proj.weight [H*hd x E], k_proj.weight and v_proj.weight [G*hd x E], o_proj.weight [E x H*hd], "
                  "optional q_proj.bias ... o_proj.bias; a missing bias counts as zero). Any dtype safetensors has "
                  "for floats (F32, F64, F16, BF16, ...)")
      ->required();
  sub->add_option("--input", args->input,
                  "X.npy, float32 or float64: [T x E] (one sequence) or [B x T x E] (a batch of equal-length "
                  "sequences; use --key-padding for shorter ones)")
      ->required();
  sub->add_option("--out", args->out, "Y.npy to write: the layer's output, with X's shape and dtype")->required();
  sub->add_option("--patterns", args->patterns,
                  "P.npy to write: every head's attention weights (post-softmax), [H x T_q x T_k] for a [T x E] "
                  "input, [B x H x T_q x T_k] for a batched one, in X's dtype. A fully masked query row is all zero");
  sub->add_option("--heads", args->heads, "number of query heads H; head_dim = (rows of the q projection) / H")
      ->required()
      ->check(CLI::PositiveNumber);
  sub->add_option("--kv-heads", args->kv_heads,
                  "number of key/value heads G for GQA/MQA (a divisor of H). Default: from k_proj.weight's rows "
                  "(Llama-style), H (nn.MultiheadAttention)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--causal", args->causal, "causal self-attention: query i sees keys 0..i only");
  auto* rotary = sub->add_flag("--rotary", args->rotary,
                               "rotary position embedding on q and k, Llama's rotate-half convention, positions 0..T-1 "
                               "(keys of --memory 0..T_k-1)");
  sub->add_option("--rotary-base", args->rotary_base, "rotary base theta (default 10000)")->needs(rotary);
  sub->add_option("--rotary-dim", args->rotary_dim, "leading dims of each head that rotate (default: head_dim)")
      ->needs(rotary)
      ->check(CLI::PositiveNumber);
  sub->add_flag("--double", args->use_double,
                "compute in double precision (default: float for a float32 X; a float64 X is always computed in "
                "double). Outputs keep X's dtype");
  sub->add_option("--memory", args->memory,
                  "M.npy: cross-attention, keys and values from this memory ([T_k x E] or [B x T_k x E], like X)");
  sub->add_option("--key-padding", args->key_padding,
                  "KP.npy, bool [B x T_k] (or [T_k] for a [T x E] input): true where a key is padding and gets no "
                  "weight (PyTorch's key_padding_mask)");
  sub->add_option("--attn-mask", args->attn_mask,
                  "AM.npy, float [T_q x T_k], added to every head's scaled scores (-inf blocks), as PyTorch's float "
                  "attn_mask");
  sub->add_option("--prefix", args->prefix,
                  "prefix of the weight keys, for a layer inside a larger state dict (e.g. model.layers.0.self_attn.)");
  sub->footer(
      "Errors print one line, `headlens attention: <message>`, naming the key, file or option that is wrong, and "
      "exit with status 1 (2 for a malformed command line).");
  sub->callback([args] { run_attention(*args); });
}

const headlens_cli::register_command attention_command{"attention", setup_attention};

}  // namespace
