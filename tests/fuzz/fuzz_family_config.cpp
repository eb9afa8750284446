// libFuzzer harness for the family table's config.json readers (models/families.hpp): any byte string, read as a
// config.json, must either give settings from which every layer's attention config validates, or throw
// headlens::format_error (not a JSON object) or headlens::argument_error (a field at fault); per-layer head counts
// of a pruned checkpoint included. Any other exception,
// a crash, a sanitizer report or a broken invariant is a finding. No weights are read: the settings are checked
// the way `build_transformer` would use them.
//
// libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DHEADLENS_LIBFUZZER -Iinclude
//     -isystem /usr/include/eigen3 tests/fuzz/fuzz_family_config.cpp -o fuzz_family_config &&
//     ./fuzz_family_config -max_total_time=300 /tmp/family-corpus tests/fuzz/corpus/family_config
// Without HEADLENS_LIBFUZZER (any compiler, as the CMake build does) a main() replays files or directories.
#include <headlens/models/families.hpp>

#include "fuzz_invariant.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

void check(const headlens::detail::family_settings& s) {
  require(s.vocab > 0 && s.d > 0 && s.layers > 0 && s.ff > 0, "positive sizes");
  require(s.heads > 0 && s.kv_heads > 0 && s.heads % s.kv_heads == 0, "heads a multiple of kv heads");
  require(s.head_dim > 0, "a head width");
  require(s.sliding_window.empty() || headlens::Index(s.sliding_window.size()) == s.layers, "a window per layer");
  require(!s.learned_positions || (s.position_offset >= 0 && s.position_offset < s.position_rows), "position rows");
  require(s.max_tokens > 0, "a positive max_tokens");
  // A pruned checkpoint's per-layer head counts (headlens_heads_per_layer, pruned_heads).
  require(s.layer_heads.size() == s.layer_kv_heads.size(), "kv counts beside head counts");
  require(s.layer_heads.empty() || headlens::Index(s.layer_heads.size()) == s.layers, "a head count per layer");
  for (std::size_t i = 0; i < s.layer_heads.size(); ++i) {
    require(s.layer_heads[i] >= 1 && s.layer_heads[i] <= s.heads, "1 <= heads of a layer <= heads");
    require(s.layer_kv_heads[i] >= 1 && s.layer_heads[i] % s.layer_kv_heads[i] == 0, "kv heads dividing heads");
  }
  for (headlens::Index i = 0; i < s.layers && i < 4; ++i) {
    headlens::attention_config c;
    c.d_model = s.d;
    c.n_heads = s.heads_of(i);
    c.n_kv_heads = s.kv_heads_of(i);
    c.head_dim = s.head_dim;
    c.causal = s.causal;
    c.rotary = s.rotary;
    c.rotary_base = s.rope_theta;
    c.rotary_dim = s.rotary_dim;
    c.rotary_scale = s.rope_scaling;
    c.softcap = s.softcap;
    c.scale = s.scale;
    c.sliding_window = s.sliding_window.empty() ? 0 : s.sliding_window[std::size_t(i)];
    c.qk_norm = s.qk_norm;
    c.qk_norm_eps = s.eps;
    try {
      c.validate();
    } catch (const headlens::argument_error& e) {
      std::fprintf(stderr, "fuzz_family_config: accepted settings give an invalid layer: %s\n", e.what());
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const headlens::detail::hf_config c = headlens::detail::hf_config::parse(text, "config.json");
    const headlens::model_family_entry& e = headlens::model_family_of(c);
    check(headlens::family_settings_of(c));  // the family's settings and a pruned checkpoint's head counts
    (void)e.names(e.model_type);
  } catch (const headlens::format_error&) {
  } catch (const headlens::argument_error&) {
  }
  return 0;
}

#include "replay_main.hpp"  // the replay main when built without libFuzzer
