#pragma once
/// \file
/// Umbrella header: includes the public headers that need only Eigen and xsimd. Optional parts with other
/// dependencies (JSON reports, HTML) are included on their own.

#include "headlens/error.hpp"
#include "headlens/types.hpp"
