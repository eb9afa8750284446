#pragma once
// Comparing the feature totals of two heads measured two ways (streaming and materialised), within float rounding.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <catch2/catch.hpp>

#include <headlens/analysis/features.hpp>

namespace testing_support {

/// Compares two heads' totals: every count equal, every fixed-point sum within `relative` of the larger total
/// (at least one unit of mass or distance).
inline void check_totals_close(const headlens::head_feature_totals& a, const headlens::head_feature_totals& b,
                        double relative = 1e-5) {
  const auto close = [&](std::int64_t x, std::int64_t y, double scale, const char* what) {
    INFO(what << ": " << double(x) / scale << " vs " << double(y) / scale);
    const double tolerance = relative * std::max(1.0, std::max(std::abs(double(x)), std::abs(double(y))) / scale);
    CHECK(std::abs(double(x - y)) / scale <= tolerance);
  };
  const double mass = headlens::detail::feature_mass_scale, dist = headlens::detail::feature_distance_scale;
  CHECK(a.windows == b.windows);
  CHECK(a.rows == b.rows);
  CHECK(a.offset_rows == b.offset_rows);
  CHECK(a.argmax_at_offset == b.argmax_at_offset);
  CHECK(a.argmax_rows == b.argmax_rows);
  close(a.sink_mass, b.sink_mass, mass, "sink");
  close(a.free_mass, b.free_mass, mass, "free");
  close(a.entropy_mass, b.entropy_mass, mass, "entropy mass");
  close(a.unit_free_mass, b.unit_free_mass, mass, "unit free mass");
  for (std::size_t d = 0; d < a.offset_mass.size(); ++d) close(a.offset_mass[d], b.offset_mass[d], mass, "offset");
  close(a.entropy, b.entropy, mass, "entropy");
  close(a.distance, b.distance, dist, "distance");
  close(a.first_token_mass, b.first_token_mass, mass, "first token");
  close(a.separator_mass, b.separator_mass, mass, "separator");
  close(a.punctuation_mass, b.punctuation_mass, mass, "punctuation");
  close(a.cross_sentence_mass, b.cross_sentence_mass, mass, "cross sentence");
  close(a.cross_paragraph_mass, b.cross_paragraph_mass, mass, "cross paragraph");
  close(a.cross_unit_mass, b.cross_unit_mass, mass, "cross unit");
  CHECK(a.unit_rows == b.unit_rows);
  CHECK(a.units == b.units);
  CHECK(a.units_related_correct == b.units_related_correct);
  CHECK(a.coreference_count == b.coreference_count);
  CHECK(a.coreference_correct == b.coreference_correct);
  CHECK(a.relations == b.relations);
}

}  // namespace testing_support
