#pragma once
/// \file
/// Reads the weights of a TensorFlow.js model: the `weightsManifest` of `model.json` and the binary shard files
/// it names (`group1-shard1of7`, ...). Every weight is checked (unique name, shape, supported dtype) and the
/// manifest must account for the shards' bytes exactly. Values come back by name as float or int32 tensors,
/// Eigen matrices and vectors. The graph topology is not interpreted.
///
/// Optional header: needs nlohmann_json (3.11) to parse `model.json`; it is not included by `headlens.hpp`.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "headlens/detail/binary_file.hpp"
#include "headlens/error.hpp"
#include "headlens/io/dtype.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// One weight of a TF.js model, decoded.
struct tfjs_weight {
  std::string name;                ///< the manifest's name (a graph node name)
  std::vector<Index> shape;        ///< extents, outermost first; empty for a scalar
  dtype type = dtype::float32;     ///< type of the decoded values: float32, int32 or bool8
  std::optional<dtype> stored;     ///< the quantized storage type (uint8, uint16 or float16) when quantized
  std::size_t group = 0;           ///< index of its group in `weightsManifest`
  std::uint64_t offset = 0;        ///< byte offset of its data in the group's concatenated shards
  std::vector<float> floats;       ///< values in C order when `type == float32`
  std::vector<std::int32_t> ints;  ///< values in C order when `type` is int32 or bool8 (0 / 1)

  /// Number of elements (product of the shape; 1 for a scalar).
  std::size_t size() const noexcept { return type == dtype::float32 ? floats.size() : ints.size(); }
};

/// The weights of a TF.js graph or layers model, by name.
class tfjs_weights {
 public:
  /// Reads a shard file given its path as written in the manifest (relative to model.json's folder); returns
  /// its bytes or throws (`io_error`).
  using shard_reader = std::function<std::vector<unsigned char>(const std::string& path)>;

  /// Reads `model_json` and its shards (paths resolved against the folder of `model_json`). Throws `io_error`
  /// when a file cannot be read and `format_error` (file plus byte offset, or the manifest entry at fault) when
  /// the manifest or the shards are malformed: JSON errors, a missing or ill-typed field, an unsupported dtype or
  /// quantization, a duplicate name, or shard bytes that the weights do not account for exactly.
  static tfjs_weights load(const std::string& model_json) {
    const std::vector<unsigned char> bytes = detail::read_file_bytes(model_json);
    const std::filesystem::path folder = std::filesystem::path(model_json).parent_path();
    return parse(std::string(bytes.begin(), bytes.end()), model_json,
                 [folder](const std::string& path) { return detail::read_file_bytes((folder / path).string()); });
  }

  /// Like `load`, from the text of model.json (named `model_json_name` in errors) and a function that reads a
  /// shard by its manifest path (named that way in errors).
  static tfjs_weights parse(const std::string& model_json_text, const std::string& model_json_name,
                            const shard_reader& read_shard) {
    nlohmann::json root;
    try {
      root = nlohmann::json::parse(model_json_text);
    } catch (const nlohmann::json::parse_error& e) {
      const std::uint64_t at = e.byte > 0 ? e.byte - 1 : 0;
      throw format_error::at_byte(model_json_name, at, std::string("invalid JSON: ") + e.what());
    } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double; no offset given
      throw format_error(model_json_name, 0, 0, "headlens: " + model_json_name + ": invalid JSON: " + e.what());
    }
    tfjs_weights out;
    const manifest_checker check{model_json_name};
    check.require(root.is_object(), "", "the document is not a JSON object");
    const auto manifest = root.find("weightsManifest");
    check.require(manifest != root.end(), "", "there is no \"weightsManifest\"");
    check.require(manifest->is_array(), "weightsManifest", "is not an array");

    for (std::size_t g = 0; g < manifest->size(); ++g) {
      const nlohmann::json& group = (*manifest)[g];
      const std::string group_path = "weightsManifest[" + std::to_string(g) + "]";
      check.require(group.is_object(), group_path, "is not an object");
      const auto paths = group.find("paths");
      check.require(paths != group.end() && paths->is_array(), group_path + ".paths", "is missing or not an array");
      const auto weights = group.find("weights");
      check.require(weights != group.end() && weights->is_array(), group_path + ".weights",
                    "is missing or not an array");

      // The group's shards, concatenated; remember where each starts for messages.
      std::vector<unsigned char> data;
      std::vector<std::pair<std::string, std::uint64_t>> shards;  // (path, start in `data`)
      for (std::size_t p = 0; p < paths->size(); ++p) {
        check.require((*paths)[p].is_string(), group_path + ".paths[" + std::to_string(p) + "]", "is not a string");
        const std::string path = (*paths)[p].get<std::string>();
        std::vector<unsigned char> shard = read_shard(path);
        shards.emplace_back(path, data.size());
        data.insert(data.end(), shard.begin(), shard.end());
      }

      std::uint64_t offset = 0;
      for (std::size_t w = 0; w < weights->size(); ++w) {
        const std::string entry_path = group_path + ".weights[" + std::to_string(w) + "]";
        tfjs_weight weight = parse_entry((*weights)[w], entry_path, check);
        weight.group = g;
        weight.offset = offset;
        std::uint64_t count = 0;
        detail::element_count(weight.shape, count);  // checked in parse_entry
        const std::size_t element_size = dtype_size(weight.stored ? *weight.stored : weight.type);
        const std::uint64_t byte_count = count * element_size;
        if (offset + byte_count > data.size()) {
          const auto where = locate(shards, offset);
          throw format_error::at_byte(where.first, where.second,
                                      "weight \"" + weight.name + "\" (" + entry_path + ", shape " +
                                          detail::shape_string(weight.shape) + ", " + std::to_string(byte_count) +
                                          " bytes) starts at byte " + std::to_string(offset) + " of group " +
                                          std::to_string(g) + " and runs past the end of its shards (" +
                                          std::to_string(data.size()) + " bytes)");
        }
        decode(weight, data.data() + offset, count, (*weights)[w], entry_path, check);
        offset += byte_count;
        if (!out.index_.emplace(weight.name, out.weights_.size()).second) {
          const tfjs_weight& first = out.weights_[out.index_.at(weight.name)];
          check.fail(entry_path, "duplicate weight name \"" + weight.name + "\" (first in weightsManifest[" +
                                     std::to_string(first.group) + "])");
        }
        out.weights_.push_back(std::move(weight));
      }
      if (offset != data.size()) {
        const auto where = locate(shards, offset);
        throw format_error::at_byte(where.first, where.second,
                                    "the shards of group " + std::to_string(g) + " hold " +
                                        std::to_string(data.size()) + " bytes but its weights use " +
                                        std::to_string(offset) + "; " + std::to_string(data.size() - offset) +
                                        " bytes are not accounted for");
      }
    }
    return out;
  }

  /// Number of weights.
  std::size_t size() const noexcept { return weights_.size(); }
  /// All weights in manifest order.
  const std::vector<tfjs_weight>& weights() const noexcept { return weights_; }
  /// Whether a weight is named `name`.
  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  /// The weight named `name`. Throws `argument_error` naming it when there is none.
  const tfjs_weight& at(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end()) detail::fail<argument_error>("the model has no weight named \"", name, "\"");
    return weights_[it->second];
  }

  /// A float weight as a tensor. Throws `argument_error` when missing or not float32.
  tensor<float> float_tensor(const std::string& name) const {
    const tfjs_weight& w = float_weight(name);
    return tensor<float>{w.shape, w.floats};
  }

  /// An int32 (or bool) weight as a tensor. Throws `argument_error` when missing or not int32 / bool.
  tensor<std::int32_t> int_tensor(const std::string& name) const {
    const tfjs_weight& w = at(name);
    if (w.type == dtype::float32) detail::fail<argument_error>("weight \"", name, "\" is float32, not int32");
    return tensor<std::int32_t>{w.shape, w.ints};
  }

  /// A float weight of shape [..., rows, cols] whose leading extents are all 1 (e.g. a 1x1 convolution kernel
  /// [1, 1, in, out]) as a row-major rows x cols matrix: element (r, c) is the stored [.., r, c].
  /// Throws `argument_error` when missing or not float32, `shape_error` for another shape.
  matrix<float> float_matrix(const std::string& name) const {
    const tfjs_weight& w = float_weight(name);
    if (w.shape.size() < 2 || !leading_ones(w.shape, 2)) {
      detail::fail<shape_error>("weight \"", name, "\" has shape ", detail::shape_string(w.shape),
                                ", expected a matrix [rows, cols] (optionally with leading extents of 1)");
    }
    const Index rows = w.shape[w.shape.size() - 2];
    const Index cols = w.shape.back();
    return Eigen::Map<const matrix<float>>(w.floats.data(), rows, cols);
  }

  /// A float weight of shape [n] (optionally with leading extents of 1) as a vector. Throws `argument_error`
  /// when missing or not float32, `shape_error` for another shape.
  vector<float> float_vector(const std::string& name) const {
    const tfjs_weight& w = float_weight(name);
    if (w.shape.empty() || !leading_ones(w.shape, 1)) {
      detail::fail<shape_error>("weight \"", name, "\" has shape ", detail::shape_string(w.shape),
                                ", expected a vector [n]");
    }
    return Eigen::Map<const vector<float>>(w.floats.data(), static_cast<Index>(w.floats.size()));
  }

  /// A float weight holding one value (shape [] or all extents 1). Throws `argument_error` when missing or not
  /// float32, `shape_error` when it holds more or fewer values.
  float float_scalar(const std::string& name) const {
    const tfjs_weight& w = float_weight(name);
    if (w.floats.size() != 1) {
      detail::fail<shape_error>("weight \"", name, "\" has shape ", detail::shape_string(w.shape),
                                ", expected a single value");
    }
    return w.floats[0];
  }

 private:
  /// Builds messages naming model.json and the manifest entry at fault.
  struct manifest_checker {
    std::string file;
    [[noreturn]] void fail(const std::string& path, const std::string& what) const {
      const std::string where = path.empty() ? std::string() : path + " ";
      throw format_error(file, 0, 0, "headlens: " + file + ": " + where + what);
    }
    void require(bool ok, const std::string& path, const std::string& what) const {
      if (!ok) fail(path, what);
    }
  };

  static bool leading_ones(const std::vector<Index>& shape, std::size_t kept) {
    for (std::size_t i = 0; i + kept < shape.size(); ++i) {
      if (shape[i] != 1) return false;
    }
    return true;
  }

  /// The shard file holding byte `offset` of a group's concatenation, and the offset inside it (the end of the
  /// last shard for `offset == total`).
  static std::pair<std::string, std::uint64_t> locate(const std::vector<std::pair<std::string, std::uint64_t>>& shards,
                                                      std::uint64_t offset) {
    if (shards.empty()) return {"<no shards>", offset};
    std::size_t i = 0;
    while (i + 1 < shards.size() && shards[i + 1].second <= offset) ++i;
    return {shards[i].first, offset - shards[i].second};
  }

  const tfjs_weight& float_weight(const std::string& name) const {
    const tfjs_weight& w = at(name);
    if (w.type != dtype::float32) {
      detail::fail<argument_error>("weight \"", name, "\" is ", dtype_name(w.type), ", not float32");
    }
    return w;
  }

  static dtype parse_dtype(const std::string& name, bool& known) {
    known = true;
    if (name == "float32") return dtype::float32;
    if (name == "int32") return dtype::int32;
    if (name == "bool") return dtype::bool8;
    known = false;
    return dtype::float32;
  }

  static tfjs_weight parse_entry(const nlohmann::json& entry, const std::string& path, const manifest_checker& check) {
    check.require(entry.is_object(), path, "is not an object");
    tfjs_weight w;
    const auto name = entry.find("name");
    check.require(name != entry.end() && name->is_string(), path + ".name", "is missing or not a string");
    w.name = name->get<std::string>();
    const std::string label = path + " (\"" + w.name + "\")";

    const auto shape = entry.find("shape");
    check.require(shape != entry.end() && shape->is_array(), label, "has no \"shape\" array");
    for (const auto& extent : *shape) {
      check.require(extent.is_number_integer() && extent.get<std::int64_t>() >= 0, label,
                    "has a shape extent that is not a non-negative integer: " + shape->dump());
      w.shape.push_back(static_cast<Index>(extent.get<std::int64_t>()));
    }
    std::uint64_t count = 0;
    check.require(detail::element_count(w.shape, count) && count <= (std::uint64_t(1) << 40), label,
                  "has a shape too large to hold: " + shape->dump());

    const auto type = entry.find("dtype");
    check.require(type != entry.end() && type->is_string(), label, "has no \"dtype\" string");
    bool known = false;
    w.type = parse_dtype(type->get<std::string>(), known);
    check.require(known, label, "has dtype \"" + type->get<std::string>() + "\", expected float32, int32 or bool");

    const auto quantization = entry.find("quantization");
    if (quantization != entry.end()) {
      check.require(quantization->is_object(), label + ".quantization", "is not an object");
      const auto q = quantization->find("dtype");
      check.require(q != quantization->end() && q->is_string(), label + ".quantization", "has no \"dtype\" string");
      const std::string qname = q->get<std::string>();
      if (qname == "uint8") {
        w.stored = dtype::uint8;
      } else if (qname == "uint16") {
        w.stored = dtype::uint16;
      } else if (qname == "float16") {
        w.stored = dtype::float16;
      } else {
        check.fail(label + ".quantization", "has dtype \"" + qname + "\", expected uint8, uint16 or float16");
      }
      const auto original = quantization->find("original_dtype");
      if (original != quantization->end()) {
        check.require(original->is_string(), label + ".quantization.original_dtype", "is not a string");
        bool ok = false;
        const dtype o = parse_dtype(original->get<std::string>(), ok);
        check.require(ok && o == w.type, label + ".quantization.original_dtype",
                      "is \"" + original->get<std::string>() + "\" but the weight's dtype is " + type->dump());
      }
      check.require(w.type != dtype::bool8, label, "is a quantized bool, which TF.js does not define");
      check.require(!(w.stored == dtype::float16 && w.type != dtype::float32), label,
                    "is float16-quantized but not float32");
    }
    return w;
  }

  static void decode(tfjs_weight& w, const unsigned char* src, std::uint64_t count, const nlohmann::json& entry,
                     const std::string& path, const manifest_checker& check) {
    const auto n = static_cast<std::size_t>(count);
    std::vector<double> dequantized;
    if (w.stored) {
      if (*w.stored == dtype::float16) {
        w.floats.resize(n);
        for (std::size_t i = 0; i < n; ++i)
          w.floats[i] = half_to_float(static_cast<std::uint16_t>(detail::load_le(src + 2 * i, 2)));
        return;
      }
      const nlohmann::json& q = entry.at("quantization");
      const auto scale = q.find("scale");
      const auto min = q.find("min");
      check.require(scale != q.end() && scale->is_number() && min != q.end() && min->is_number(),
                    path + ".quantization", "needs numeric \"scale\" and \"min\"");
      const double s = scale->get<double>();
      const double m = min->get<double>();
      const std::size_t size = dtype_size(*w.stored);
      dequantized.resize(n);
      for (std::size_t i = 0; i < n; ++i)
        dequantized[i] = static_cast<double>(detail::load_le(src + size * i, size)) * s + m;
      if (w.type == dtype::float32) {
        w.floats.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
          // Like a JavaScript Float32Array store: beyond float's range is an infinity (a plain cast would be UB).
          const double d = dequantized[i];
          const double big = static_cast<double>(std::numeric_limits<float>::max());
          w.floats[i] = d > big    ? std::numeric_limits<float>::infinity()
                        : d < -big ? -std::numeric_limits<float>::infinity()
                                   : static_cast<float>(d);
        }
      } else {
        w.ints.resize(n);
        // JavaScript's Math.round: halves round up.
        for (std::size_t i = 0; i < n; ++i) {
          const double rounded = std::floor(dequantized[i] + 0.5);
          check.require(rounded >= -2147483648.0 && rounded <= 2147483647.0, path,
                        "dequantizes element " + std::to_string(i) + " to " + std::to_string(rounded) +
                            ", outside the int32 range");
          w.ints[i] = static_cast<std::int32_t>(rounded);
        }
      }
      return;
    }
    switch (w.type) {
      case dtype::float32:
        w.floats.resize(n);
        if (detail::host_is_little_endian()) {
          if (n != 0) std::memcpy(w.floats.data(), src, 4 * n);
        } else {
          for (std::size_t i = 0; i < n; ++i) {
            const auto bits = static_cast<std::uint32_t>(detail::load_le(src + 4 * i, 4));
            std::memcpy(&w.floats[i], &bits, 4);
          }
        }
        break;
      case dtype::int32:
        w.ints.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
          w.ints[i] = static_cast<std::int32_t>(static_cast<std::uint32_t>(detail::load_le(src + 4 * i, 4)));
        }
        break;
      default:  // bool8
        w.ints.resize(n);
        for (std::size_t i = 0; i < n; ++i) w.ints[i] = src[i] != 0 ? 1 : 0;
        break;
    }
  }

  std::vector<tfjs_weight> weights_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace headlens
