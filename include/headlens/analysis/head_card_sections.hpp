#pragma once
/// \file
/// What the analyses measured, put into a head card (analysis/head_card.hpp): the causal check of the labels
/// (analysis/causal_check.hpp) and head importance (analysis/head_importance.hpp). Each function fills the card's
/// section and the per-head entries from the analysis's own result, saying only what was measured: a label left
/// out of the check stays "not causally checked", an interval that could not be computed stays null.
///
///   headlens::head_card card = headlens::make_head_card(report, headlens::card_model_of(*model, "gpt2"), provenance);
///   if (report.causal) headlens::add_causal_check(card, *report.causal);
///   headlens::add_head_importance(card, importance, "next-token cross-entropy");

#include <cmath>
#include <cstdint>
#include <string>

#include "headlens/analysis/causal_check_result.hpp"
#include "headlens/analysis/head_card.hpp"
#include "headlens/analysis/head_importance.hpp"

namespace headlens {

/// The tokens whose loss the causal check of `label` compares (docs/causal-check.md).
inline const char* causal_phenomenon_tokens(head_label label) noexcept {
  switch (label) {
    case head_label::syntactic:
      return "tokens whose syntactic head or a dependent is visible to them";
    case head_label::coreference:
      return "tokens of mentions with a visible earlier antecedent";
    case head_label::discourse:
      return "first tokens of sentences and discourse units";
    case head_label::positional:
      return "every token";
    case head_label::unassigned:
      break;
  }
  return "";
}

/// Replaces the card's causal checks with `result`'s, one per category (labels that no head carries included:
/// they are "not testable" with their reason).
inline void add_causal_check(head_card& card, const causal_check_result& result) {
  card.causal_checks.clear();
  for (const label_causal_check& c : result.labels) {
    card_causal_check out;
    out.label = c.label;
    out.heads = static_cast<int>(c.heads.size());
    out.ablation = to_string(result.kind);
    out.tokens = causal_phenomenon_tokens(c.label);
    out.effect = c.effect;
    out.random_effect = c.random_mean;
    out.p_value = c.p_value;
    out.draws = static_cast<int>(c.random_effects.size());
    out.verdict = c.verdict;
    out.reason = c.reason;
    if (out.verdict == causal_verdict::not_testable && out.reason.empty()) out.reason = "not testable";
    card.causal_checks.push_back(std::move(out));
  }
}

/// Puts `result` into the card: the card-level run (`loss` names the task loss, e.g. "next-token cross-entropy")
/// and each head's zero and mean estimates with their intervals and its rank (by zero ablation when measured, else
/// by mean). Throws `argument_error` when a head of `result` is not on the card.
inline void add_head_importance(head_card& card, const head_importance_result& result, std::string loss) {
  card_importance_run run;
  run.loss = std::move(loss);
  run.context = result.context;
  run.interval = "95% Student-t interval of the per-document means";
  run.documents = static_cast<std::int64_t>(result.documents.size());
  const importance_of_kind* ranked = result.find(ablation::zero);
  if (ranked == nullptr) ranked = result.find(ablation::mean);
  if (ranked != nullptr) {
    if (std::isfinite(ranked->stability.rho)) run.ranking_stable = ranked->stability.stable;
    run.ranking_agreement = ranked->stability.rho;
  }
  card.importance = run;
  const auto estimate = [](const document_interval& i) {
    card_estimate e;
    e.value = i.mean;
    if (i.has_interval()) e.low = i.low, e.high = i.high;
    return e;
  };
  for (const importance_of_kind& kind : result.kinds) {
    for (const head_importance& h : kind.heads) {
      card_head* head = nullptr;
      for (card_head& c : card.heads) {
        if (c.verdict.layer == h.head.layer && c.verdict.head == h.head.head) head = &c;
      }
      if (head == nullptr) {
        detail::fail<argument_error>("add_head_importance: head ", to_string(h.head), " is not on the card");
      }
      if (!head->importance) head->importance = card_importance{};
      (kind.kind == ablation::zero ? head->importance->zero : head->importance->mean) = estimate(h.change);
      if (&kind == ranked) head->importance->rank = static_cast<int>(h.rank);
    }
  }
}

}  // namespace headlens
