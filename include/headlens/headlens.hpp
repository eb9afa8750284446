#pragma once
/// \file
/// Umbrella header: every public header that needs only Eigen, xsimd and the standard library. The parts with
/// other dependencies include nlohmann_json and are included on their own: `io/tfjs.hpp`,
/// `analysis/features_json.hpp`, `analysis/report_json.hpp`, and the model loaders `models/gpt2.hpp`,
/// `models/llama.hpp`, `models/hugging_face.hpp`, `models/use_lite.hpp`.

// Errors and array types.
#include "headlens/error.hpp"
#include "headlens/types.hpp"

// Kernels.
#include "headlens/kernels/activation.hpp"
#include "headlens/kernels/attention_config.hpp"
#include "headlens/kernels/attention_sparsity.hpp"
#include "headlens/kernels/multi_head_attention.hpp"
#include "headlens/kernels/rotary.hpp"
#include "headlens/kernels/softmax.hpp"
#include "headlens/kernels/sparsity_statistics.hpp"
#include "headlens/kernels/streaming_statistics.hpp"

// Hooks and interventions.
#include "headlens/hooks/activation_cache.hpp"
#include "headlens/hooks/head_gating.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/hooks/hook_registry.hpp"
#include "headlens/hooks/interventions.hpp"

// Files people already have.
#include "headlens/io/npy.hpp"
#include "headlens/io/safetensors.hpp"

// Text.
#include "headlens/text/bpe.hpp"
#include "headlens/text/sentencepiece.hpp"
#include "headlens/text/token.hpp"
#include "headlens/text/word_splitter.hpp"
#include "headlens/text/word_tokenizer.hpp"

// Reference transformer blocks.
#include "headlens/models/head_means.hpp"
#include "headlens/models/layered_ablation_target.hpp"
#include "headlens/models/transformer.hpp"
#include "headlens/models/transformer_ablation.hpp"

// Head analysis.
#include "headlens/analysis/ablation_target.hpp"
#include "headlens/analysis/ablation_unit.hpp"
#include "headlens/analysis/alignment.hpp"
#include "headlens/analysis/causal_check.hpp"
#include "headlens/analysis/causal_check_result.hpp"
#include "headlens/analysis/conllu.hpp"
#include "headlens/analysis/features.hpp"
#include "headlens/analysis/head_importance.hpp"
#include "headlens/analysis/phenomenon_tokens.hpp"
#include "headlens/analysis/policies.hpp"
#include "headlens/analysis/report.hpp"
#include "headlens/analysis/report_html.hpp"
#include "headlens/analysis/text_document.hpp"
