#pragma once
/// \file
/// Writing a pruned Hugging Face checkpoint: the model of a source directory without a set of heads, as a
/// directory that `load_family`, `load_attention_model` (and, for GPT-2, `load_gpt2`) open again, whose outputs
/// equal the source model's with those heads zero-ablated. Needs nlohmann_json.
///
///   headlens::head_set gone(headlens::checkpoint_heads_per_layer("gpt2"));
///   gone.insert({0, 1});
///   headlens::write_pruned_checkpoint("gpt2", gone, "gpt2-pruned");
///
/// What is written (models/head_pruning.hpp says which rows and columns go and why kv heads may repeat):
/// - `model.safetensors`: every tensor of the source (one file, even from a sharded source), in the source's
///   dtype, the attention projections of each layer cut to the heads kept (q, k, v rows or Conv1D columns, in the
///   family's own layout: separate, fused q|k|v, per-head fused, Conv1D; the output projection's columns, or
///   Conv1D rows; biases alike; the output bias kept). Everything else is copied byte for byte. Cutting converts
///   F32, F16, BF16 and F64 through double and back, which is exact.
/// - `config.json`: the source's, plus `headlens_heads_per_layer` and `headlens_kv_heads_per_layer` (one count
///   per layer; every family reads them back). `num_attention_heads` / `n_head` keep the unpruned count, so
///   head_dim = hidden_size / heads stays. For GPT-2, BERT and RoBERTa also Hugging Face's `pruned_heads`
///   ({"layer": [original heads removed]}, composed with the source's own), which `from_pretrained` honours:
///   transformers prunes the fresh model by it before loading the smaller weights. Other families have no such
///   convention in transformers, so only headlens reads their pruned checkpoints.
/// - the tokenizer files of the source (tokenizer.json, tokenizer_config.json, tokenizer.model, vocab.json,
///   merges.txt, vocab.txt, special_tokens_map.json, added_tokens.json, generation_config.json), copied.
/// A layer whose every head is pruned keeps one head with a zero output projection (see head_pruning.hpp); its
/// head is then not listed in `pruned_heads`.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "headlens/analysis/ablation_target.hpp"
#include "headlens/error.hpp"
#include "headlens/io/safetensors.hpp"
#include "headlens/models/detail/family_loader.hpp"
#include "headlens/models/detail/hf_checkpoint.hpp"
#include "headlens/models/families.hpp"
#include "headlens/models/head_pruning.hpp"

namespace headlens {

/// What `write_pruned_checkpoint` wrote.
struct pruned_checkpoint_summary {
  std::vector<layer_pruning> layers;      ///< per layer: heads kept, kv heads kept (see head_pruning.hpp)
  std::vector<Index> heads_per_layer;     ///< query heads per layer in the written checkpoint
  std::vector<Index> kv_heads_per_layer;  ///< kv heads per layer in the written checkpoint
  std::uint64_t parameters_before = 0;    ///< elements of every tensor of the source
  std::uint64_t parameters_after = 0;     ///< and of the written file
  std::vector<std::string> copied_files;  ///< tokenizer files copied from the source
};

/// Query heads per layer of the checkpoint in `directory` (pruned or not), for a `head_set` over it. Throws as
/// `load_family` does for config.json.
inline std::vector<int> checkpoint_heads_per_layer(const std::string& directory) {
  const detail::family_settings s = family_settings_of(detail::hf_config::read(directory + "/config.json"));
  std::vector<int> out;
  for (Index l = 0; l < s.layers; ++l) out.push_back(int(s.heads_of(l)));
  return out;
}

namespace detail {

// One tensor to cut: along `axis` (0: rows, 1: columns; a vector has axis 0), keep the blocks `[start, start +
// width)` in order; zero the result when `zero`.
struct tensor_cut {
  int axis = 0;
  Index extent = 0;                             // the extent along the axis the source must have
  std::vector<std::pair<Index, Index>> blocks;  // (start, width)
  bool zero = false;
};

inline std::vector<std::pair<Index, Index>> head_blocks(const std::vector<Index>& heads, Index offset, Index width,
                                                        Index stride = 0) {
  if (stride == 0) stride = width;
  std::vector<std::pair<Index, Index>> out;
  for (Index h : heads) out.push_back({offset + h * stride, width});
  return out;
}

inline tensor<double> apply_cut(const tensor<double>& t, const tensor_cut& cut) {
  const Index rows = t.shape[0], cols = t.shape.size() == 2 ? t.shape[1] : 1;
  Index kept = 0;
  for (const auto& b : cut.blocks) kept += b.second;
  tensor<double> out;
  out.shape = t.shape;
  out.shape[std::size_t(cut.axis)] = kept;
  out.data.reserve(std::size_t(kept * (cut.axis == 0 ? cols : rows)));
  if (cut.axis == 0) {
    for (const auto& b : cut.blocks) {
      for (Index r = b.first; r < b.first + b.second; ++r) {
        for (Index c = 0; c < cols; ++c) out.data.push_back(t.data[std::size_t(r * cols + c)]);
      }
    }
  } else {
    for (Index r = 0; r < rows; ++r) {
      for (const auto& b : cut.blocks) {
        for (Index c = b.first; c < b.first + b.second; ++c) out.data.push_back(t.data[std::size_t(r * cols + c)]);
      }
    }
  }
  if (cut.zero) std::fill(out.data.begin(), out.data.end(), 0.0);
  return out;
}

// The cuts of every attention tensor of layer `l` (full names) for `p`, in the family's layout.
inline void layer_cuts(const family_settings& s, const family_tensor_names& n, const std::string& prefix, Index l,
                       const layer_pruning& p, std::vector<std::pair<std::string, tensor_cut>>& cuts) {
  const Index hd = s.head_dim, heads = p.heads, kv = p.kv_heads;
  const Index qw = heads * hd, kw = kv * hd;
  const std::string base = prefix + layer_name(n.layer, l);
  const auto add = [&](const std::string& name, int axis, Index extent, std::vector<std::pair<Index, Index>> blocks,
                       bool zero = false) {
    cuts.push_back({name, tensor_cut{axis, extent, std::move(blocks), zero}});
  };
  const auto concat = [](std::vector<std::pair<Index, Index>> a, const std::vector<std::pair<Index, Index>>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const std::string q = base + n.q;
  const bool qkv_bias = s.qkv_bias;
  switch (n.qkv) {
    case qkv_layout::separate: {
      add(q + ".weight", 0, qw, head_blocks(p.kept, 0, hd));
      add(base + n.k + ".weight", 0, kw, head_blocks(p.kv_sources, 0, hd));
      add(base + n.v + ".weight", 0, kw, head_blocks(p.kv_sources, 0, hd));
      if (qkv_bias) {
        add(q + ".bias", 0, qw, head_blocks(p.kept, 0, hd));
        add(base + n.k + ".bias", 0, kw, head_blocks(p.kv_sources, 0, hd));
        add(base + n.v + ".bias", 0, kw, head_blocks(p.kv_sources, 0, hd));
      }
      break;
    }
    case qkv_layout::concatenated:
    case qkv_layout::conv1d: {
      const auto blocks = concat(concat(head_blocks(p.kept, 0, hd), head_blocks(p.kv_sources, qw, hd)),
                                 head_blocks(p.kv_sources, qw + kw, hd));
      add(q + ".weight", n.qkv == qkv_layout::conv1d ? 1 : 0, qw + 2 * kw, blocks);
      if (qkv_bias) add(q + ".bias", 0, qw + 2 * kw, blocks);
      break;
    }
    case qkv_layout::per_head: {  // rows h*3*hd .. (h+1)*3*hd hold head h's q, k, v (MHA: kv_sources == kept)
      add(q + ".weight", 0, 3 * qw, head_blocks(p.kept, 0, 3 * hd));
      if (qkv_bias) add(q + ".bias", 0, 3 * qw, head_blocks(p.kept, 0, 3 * hd));
      break;
    }
  }
  add(base + n.o + ".weight", n.o_conv1d ? 0 : 1, qw, head_blocks(p.kept, 0, hd), p.zero_output);
}

inline bool is_tokenizer_file(const std::string& name) {
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "merges.txt",
                        "vocab.txt", "special_tokens_map.json", "added_tokens.json", "generation_config.json"}) {
    if (name == f) return true;
  }
  return false;
}

}  // namespace detail

/// Writes the checkpoint in `source` without the heads of `removed` to `destination` (created when missing; its
/// model.safetensors and config.json are replaced). See the file comment for what is written. Throws
/// `argument_error` when `removed` is shaped for another model or `destination` is `source`, `io_error` when a
/// file cannot be read or written, and the errors of `load_family` for a malformed source (`format_error` naming
/// a missing tensor, `shape_error` naming a misshapen one).
inline pruned_checkpoint_summary write_pruned_checkpoint(const std::string& source, const head_set& removed,
                                                         const std::string& destination) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(destination, ec) && fs::equivalent(source, destination, ec)) {
    detail::fail<argument_error>("destination ", destination, " is the source directory, expected another one");
  }
  const detail::hf_config c = detail::hf_config::read(source + "/config.json");
  const model_family_entry& e = model_family_of(c);
  const detail::family_settings s = family_settings_of(c);
  const detail::family_tensor_names n = e.names(e.model_type);
  const std::vector<safetensors_file> files = detail::open_checkpoint(source);
  const std::vector<const safetensors_file*> pointers = detail::file_pointers(files);

  std::vector<attention_config> configs;
  for (Index l = 0; l < s.layers; ++l) {
    attention_config a;
    a.d_model = s.d;
    a.n_heads = s.heads_of(l);
    a.n_kv_heads = s.kv_heads_of(l);
    a.head_dim = s.head_dim;
    configs.push_back(a);
  }
  pruned_checkpoint_summary summary;
  summary.layers = plan_pruning_layout(configs, removed);

  // The prefix the tensors are stored under, as the loader decides it.
  const detail::hf_tensors root(pointers, "", s.name);
  const std::string embed = std::string(n.embed) + ".weight";
  const bool prefixed = root.has(n.prefix + embed) || (n.prefix_by_default && !root.has(embed));
  const std::string prefix = prefixed ? n.prefix : "";
  std::vector<std::pair<std::string, detail::tensor_cut>> cuts;
  for (Index l = 0; l < s.layers; ++l) detail::layer_cuts(s, n, prefix, l, summary.layers[std::size_t(l)], cuts);

  safetensors_writer writer;
  std::map<std::string, std::size_t> cut_of;
  for (std::size_t i = 0; i < cuts.size(); ++i) cut_of[cuts[i].first] = i;
  std::vector<bool> done(cuts.size(), false);
  for (const safetensors_file& f : files) {
    for (const std::string& name : f.names()) {
      const safetensors_tensor_info& info = f.info(name);
      summary.parameters_before += std::uint64_t(info.size());
      const auto found = cut_of.find(name);
      const std::size_t which = found == cut_of.end() ? cuts.size() : found->second;
      if (which == cuts.size()) {
        const auto raw = f.raw_bytes(name);
        writer.add_raw(name, info.type, info.shape, raw.first, raw.second);
        summary.parameters_after += std::uint64_t(info.size());
        continue;
      }
      const detail::tensor_cut& cut = cuts[which].second;
      const bool is_float = info.type == dtype::float32 || info.type == dtype::float16 ||
                            info.type == dtype::bfloat16 || info.type == dtype::float64;
      if (!is_float) {
        throw format_error::at_byte(f.source(), info.header_offset,
                                    "tensor '" + name + "' has dtype " + detail::safetensors_dtype_name(info.type) +
                                        ", expected F32, F16, BF16 or F64");
      }
      const bool vector_ok = info.shape.size() == 1 && cut.axis == 0;
      if (!(info.shape.size() == 2 || vector_ok) || info.shape[std::size_t(cut.axis)] != cut.extent) {
        detail::fail<shape_error>("tensor '", name, "' in ", f.source(), " has shape ",
                                  detail::shape_string(info.shape), ", expected ", cut.extent, " along axis ", cut.axis,
                                  " (", s.name, " layer of ", cut.extent / s.head_dim, " heads of ", s.head_dim, ")");
      }
      const tensor<double> small = detail::apply_cut(f.read_tensor<double>(name), cut);
      writer.add(name, small.data.data(), small.shape, info.type);
      summary.parameters_after += std::uint64_t(small.data.size());
      done[which] = true;
    }
  }
  for (std::size_t i = 0; i < cuts.size(); ++i) {
    if (!done[i]) {
      throw format_error(
          files.front().source(), 0, 0,
          detail::message(files.front().source(), ": missing tensor '", cuts[i].first, "' (", s.name, " checkpoint)"));
    }
  }

  nlohmann::json config = nlohmann::json::parse(std::ifstream(source + "/config.json"));
  nlohmann::json heads = nlohmann::json::array(), kv = nlohmann::json::array();
  for (const layer_pruning& p : summary.layers) {
    summary.heads_per_layer.push_back(Index(p.kept.size()));
    summary.kv_heads_per_layer.push_back(Index(p.kv_sources.size()));
    heads.push_back(p.kept.size());
    kv.push_back(p.kv_sources.size());
  }
  config[detail::heads_per_layer_key] = heads;
  config[detail::kv_heads_per_layer_key] = kv;
  if (has_pruned_heads_convention(e.model_type)) {
    // Original indices: the source's own pruned_heads say which of the original heads its head j is.
    const detail::layer_head_counts before = detail::read_layer_heads(c, s.layers, s.heads, s.kv_heads, true);
    const bool composable = before.heads.empty() || !before.removed.empty();
    if (composable) {
      nlohmann::json pruned = nlohmann::json::object();
      for (Index l = 0; l < s.layers; ++l) {
        std::vector<Index> original;
        for (Index h = 0; h < s.heads; ++h) {
          const auto& r = before.removed.empty() ? std::vector<Index>() : before.removed[std::size_t(l)];
          if (std::find(r.begin(), r.end(), h) == r.end()) original.push_back(h);
        }
        std::vector<Index> gone = before.removed.empty() ? std::vector<Index>() : before.removed[std::size_t(l)];
        for (Index h : summary.layers[std::size_t(l)].removed()) {
          if (!summary.layers[std::size_t(l)].zero_output || h != 0) gone.push_back(original[std::size_t(h)]);
        }
        std::sort(gone.begin(), gone.end());
        if (!gone.empty()) pruned[std::to_string(l)] = gone;
      }
      config["pruned_heads"] = pruned;
    } else {
      config.erase("pruned_heads");
    }
  }

  fs::create_directories(destination, ec);
  if (ec) detail::fail<io_error>("cannot create directory ", destination, ": ", ec.message());
  writer.write(destination + "/model.safetensors");
  const std::string text = config.dump(2) + "\n";
  std::ofstream out(destination + "/config.json", std::ios::binary);
  out << text;
  if (!out) detail::fail<io_error>("cannot write ", destination, "/config.json");
  for (const fs::directory_entry& entry : fs::directory_iterator(source)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || !detail::is_tokenizer_file(name)) continue;
    fs::copy_file(entry.path(), fs::path(destination) / name, fs::copy_options::overwrite_existing, ec);
    if (ec) detail::fail<io_error>("cannot copy ", entry.path().string(), " to ", destination, ": ", ec.message());
    summary.copied_files.push_back(name);
  }
  return summary;
}

}  // namespace headlens
