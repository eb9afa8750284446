#pragma once
/// \file
/// Umbrella header: includes the public headers that need only Eigen and xsimd. Optional parts with other
/// dependencies (JSON reports, HTML) are included on their own.

#include "headlens/error.hpp"
#include "headlens/types.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/kernels/attention_config.hpp"
#include "headlens/kernels/multi_head_attention.hpp"
#include "headlens/kernels/softmax.hpp"
#include "headlens/io/npy.hpp"
#include "headlens/io/safetensors.hpp"
