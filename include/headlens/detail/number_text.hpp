#pragma once
// How reports write counts.

#include <cstddef>
#include <string>

namespace headlens::detail {

/// A count with thousands separated by commas: 12,345.
inline std::string with_commas(std::size_t value) {
  const std::string digits = std::to_string(value);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace headlens::detail
