// Writes the HTML report the browser test opens: 3 layers x 5 heads (odd sizes) of hand-made verdicts, every label
// and confidences from low to high, and two example sentences whose planted maps differ for every head (head k of
// layer-major index k sends 0.7 of each row to the word k positions on, mod n, the rest spread evenly). The texts
// are hostile on purpose: titles, the note, the policy name, tokens, reasons and evidence names hold `</script>`,
// `<!--`, quotes, markup, a U+2028 line separator and non-ASCII letters; the browser test checks they show as text.
//
//   make_html_fixture <out.html>
#include <fstream>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "headlens/analysis/report_html.hpp"

namespace {

constexpr int layers = 3;
constexpr int heads = 5;

std::vector<float> planted_maps(std::size_t n) {
  std::vector<float> maps(static_cast<std::size_t>(layers * heads) * n * n);
  for (std::size_t k = 0; k < static_cast<std::size_t>(layers * heads); ++k) {
    for (std::size_t i = 0; i < n; ++i) {
      float* row = maps.data() + (k * n + i) * n;
      for (std::size_t j = 0; j < n; ++j) row[j] = 0.3f / static_cast<float>(n);
      row[(i + k) % n] += 0.7f;
    }
  }
  return maps;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_html_fixture <out.html>\n";
    return 2;
  }
  const headlens::head_label cycle[] = {headlens::head_label::syntactic, headlens::head_label::coreference,
                                        headlens::head_label::discourse, headlens::head_label::positional,
                                        headlens::head_label::unassigned};
  std::vector<headlens::head_verdict> verdicts;
  for (int l = 0; l < layers; ++l) {
    for (int h = 0; h < heads; ++h) {
      const int k = l * heads + h;
      headlens::head_verdict v;
      v.layer = l;
      v.head = h;
      v.label = cycle[k % 5];
      v.confidence = (k + 1.0) / (layers * heads);
      for (headlens::head_label c : headlens::head_categories) v.set_score(c, 0.05 * (k % 4) - 0.1);
      if (v.label == headlens::head_label::unassigned)
        v.reason = "sink </script><script>window.headlensInjected=1</script>";
      v.evidence.push_back({"nsubj dep->head accuracy \"quoted\" <b class=\"injected\">x</b>", 0.1 + 0.05 * k, 0.3});
      v.evidence.push_back({"first-word mass", 0.02 * k, std::numeric_limits<double>::quiet_NaN()});
      v.evidence.push_back({"mean distance", 3.5, 2.0});  // outside [0, 1]: no bar
      verdicts.push_back(v);
    }
  }
  headlens::head_report report = headlens::make_report(verdicts, "pol<i class=\"injected\">icy</i>");
  // A causal check: syntactic supported, coreference not supported, discourse and positional not testable (one with
  // a hostile reason).
  headlens::causal_check_result causal;
  causal.random_sets = 20;
  causal.seed = 5;
  causal.units = 3;
  causal.tokens = 42;
  for (std::size_t c = 0; c < headlens::head_category_count; ++c) {
    headlens::label_causal_check& check = causal.labels[c];
    check.label = headlens::head_categories[c];
    for (const headlens::head_verdict& v : report.heads) {
      if (v.label == check.label) check.heads.push_back({v.layer, v.head});
    }
    check.phenomenon_tokens = 10 + static_cast<std::int64_t>(c);
    check.other_tokens = 32 - static_cast<std::int64_t>(c);
  }
  for (std::size_t c = 0; c < 2; ++c) {
    headlens::label_causal_check& check = causal.labels[c];
    for (int k = 0; k < 20; ++k) check.random_effects.push_back(0.01 * ((k * 7) % 20) - 0.05);
    check.random_mean = 0.045;
    check.random_sd = 0.059;
    check.effect = c == 0 ? 0.4 : 0.02;
    check.z = (check.effect - check.random_mean) / check.random_sd;
    check.random_at_least = c == 0 ? 0 : 11;
    check.p_value = (1.0 + static_cast<double>(check.random_at_least)) / 21;
    check.verdict = c == 0 ? headlens::causal_verdict::supported : headlens::causal_verdict::not_supported;
    check.scope = headlens::random_scope::same_layers;
    check.possible_sets = 60;
  }
  causal.labels[2].reason = "annotations missing </script><script>window.headlensInjected=1</script>";
  causal.labels[3].reason = "the label's heads are every head of the model: no other head to draw";
  report.causal = causal;

  headlens::html_maps maps;
  const std::vector<std::string> first = {"The",
                                          "</script>",
                                          "said",
                                          "\"hi\"",
                                          "&",
                                          "it's",
                                          "<!--",
                                          "na\xc3\xafve",
                                          "line\xe2\x80\xa8sep",
                                          "<b class=\"injected\">b</b>",
                                          "."};
  const std::vector<std::string> second = {"A",  "second", "sentence", ",",  "with", "thirteen", "words",
                                           "so", "maps",   "differ",   "by", "size", "."};
  std::vector<float> a = planted_maps(first.size()), b = planted_maps(second.size());
  maps.add("</script><script>window.headlensInjected=1</script>", first, a.data(), layers, heads);
  maps.add("<b class=\"injected\">bold</b> say \"hi\" & 'bye'", second, b.data(), layers, heads);

  headlens::html_options options;
  options.title = "headlens test report </title><script>window.headlensInjected=1</script>";
  options.note = "note </script><!-- \"q\" & 'a'";
  std::ofstream out(argv[1], std::ios::binary);
  if (!out) {
    std::cerr << "make_html_fixture: cannot open " << argv[1] << "\n";
    return 1;
  }
  headlens::write_html(out, report, maps, options);
  return out.flush() ? 0 : 1;
}
