#pragma once
/// \file
/// The version of headlens, as the top-level CMakeLists.txt's `project(headlens VERSION ...)` states it (a test
/// checks the two agree). Head cards record it in their provenance.

#define HEADLENS_VERSION_MAJOR 0
#define HEADLENS_VERSION_MINOR 1
#define HEADLENS_VERSION_PATCH 0

namespace headlens {

/// The version as "major.minor.patch".
inline constexpr const char* version_string = "0.1.0";

}  // namespace headlens
