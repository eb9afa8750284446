// A user-defined head classifier policy.
//
// Any type with `headlens::head_verdict classify(const headlens::head_evidence&) const` is a policy (see
// include/headlens/analysis/policies.hpp and docs/policies.md). This one is stricter than the built-in annotated
// policy about positional heads (only offset -1, at least 95% of the argmaxes, and little mass anywhere else) and
// defers every other decision to it. It runs on a small hand-made document with three made-up heads.
//
//   build/bin/headlens-custom_policy

#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include <headlens/analysis/document.hpp>
#include <headlens/analysis/features.hpp>
#include <headlens/analysis/policies.hpp>
#include <headlens/analysis/report.hpp>

/// "Previous-token heads" in the strict sense: argmax at -1 in at least 95% of the rows and at least `min_mass` of
/// the attention there. Everything else is judged by the annotated policy.
class previous_token_policy {
 public:
  explicit previous_token_policy(double min_mass = 0.6) : min_mass_(min_mass) {}

  headlens::head_verdict classify(const headlens::head_evidence& e) const {
    headlens::head_verdict v = fallback_.classify(e);  // fills layer, head, the four scores and the evidence
    const headlens::positional_evidence& p = e.positional;
    const bool strict = p.rows > 0 && p.top_offset == -1 && p.top_offset_share >= 0.95 && p.previous_mass >= min_mass_;
    if (strict) {
      v.label = headlens::head_label::positional;
      v.reason.clear();
      v.confidence = p.previous_mass;
      v.evidence.insert(v.evidence.begin(), {"mass on the previous word", p.previous_mass, min_mass_});
    } else if (v.label == headlens::head_label::positional) {
      // Positional by Voita et al.'s rule but not a strict previous-token head: say so instead of guessing.
      v.label = headlens::head_label::unassigned;
      v.reason = "positional, but not a strict previous-token head (offset " + std::to_string(p.top_offset) +
                 ", previous-word mass " + std::to_string(std::lround(100 * p.previous_mass)) + "%)";
      v.confidence = 0.5;
    }
    return v;
  }

 private:
  double min_mass_;
  headlens::annotated_policy fallback_;
};

static_assert(headlens::is_head_policy_v<previous_token_policy>, "previous_token_policy must be a policy");

int main() {
  // A document of 40 words in 5 sentences of 8; every word depends on the sentence's first word.
  headlens::document doc;
  doc.id = "example";
  for (int s = 0; s < 5; ++s) {
    doc.sentences.push_back({8 * s, 8 * s + 8, 0, "s" + std::to_string(s + 1), ""});
    for (int i = 0; i < 8; ++i) {
      headlens::word w;
      w.form = i == 7 ? "." : "w" + std::to_string(8 * s + i);
      w.upos = i == 7 ? "PUNCT" : "NOUN";
      w.deprel = i == 0 ? "root" : (i == 7 ? "punct" : "dep");
      w.head = i == 0 ? -1 : 8 * s;
      w.sentence = s;
      doc.words.push_back(w);
    }
  }
  doc.paragraphs.push_back({0, 5});

  // Three heads over the whole document: previous word (sharp), next word (sharp), previous word (soft, 40%).
  const headlens::Index n = 40;
  headlens::tensor<double> maps;
  maps.shape = {1, 3, n, n};
  maps.data.assign(static_cast<std::size_t>(3 * n * n), 0.0);
  auto at = [&](headlens::Index h, headlens::Index r, headlens::Index c) -> double& {
    return maps.data[static_cast<std::size_t>((h * n + r) * n + c)];
  };
  for (headlens::Index r = 0; r < n; ++r) {
    at(0, r, r > 0 ? r - 1 : 0) = 1.0;
    at(1, r, r + 1 < n ? r + 1 : r) = 1.0;
    for (headlens::Index c = 0; c < n; ++c) at(2, r, c) = 0.6 / static_cast<double>(n);
    at(2, r, r > 0 ? r - 1 : 0) += 0.4;
  }

  const std::vector<headlens::head_evidence> evidence = headlens::head_evidence_from_maps(maps, doc);
  const headlens::head_report report =
      headlens::make_report(headlens::classify_heads(previous_token_policy(), evidence), "previous-token");
  headlens::write_table(std::cout, report, 2);

  // Head 0 is a strict previous-token head; head 1 (offset +1) and head 2 (too little mass at -1) are not.
  const bool ok = report.heads[0].label == headlens::head_label::positional &&
                  report.heads[1].label == headlens::head_label::unassigned &&
                  report.heads[2].label == headlens::head_label::unassigned;
  return ok ? 0 : 1;
}
