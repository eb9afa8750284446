#pragma once
/// \file
/// Internal: reading a Hugging Face checkpoint directory (`config.json` through nlohmann_json, `model.safetensors`
/// through headlens's reader) with errors that name the file, the key or tensor at fault and what was expected.
/// Shared by models/gpt2.hpp and models/llama.hpp.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/io/safetensors.hpp"
#include "headlens/types.hpp"

namespace headlens {
namespace detail {

/// A parsed config.json and its path, with typed getters whose errors name the file and the key.
class hf_config {
 public:
  /// Reads and parses `path`. Throws `io_error` when it cannot be read, `format_error` (file, byte offset) when it
  /// is not a JSON object.
  static hf_config read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) detail::fail<io_error>("cannot read ", path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return parse(buffer.str(), path);
  }

  /// Parses JSON text; `name` stands for the file in messages. Throws `format_error` when it is not a JSON object.
  static hf_config parse(const std::string& text, const std::string& name) {
    hf_config c;
    c.path_ = name;
    try {
      c.json_ = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw format_error::at_byte(name, e.byte, std::string("not valid JSON (") + e.what() + ")");
    } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double (out_of_range 406)
      throw format_error::at_byte(name, 0, std::string("not readable JSON (") + e.what() + ")");
    }
    if (!c.json_.is_object()) throw format_error::at_byte(name, 0, "expected a JSON object of settings");
    return c;
  }

  /// Builds a config from JSON already parsed; `name` stands for the file in messages.
  static hf_config from_json(nlohmann::json json, std::string name = "<config>") {
    hf_config c;
    c.path_ = std::move(name);
    c.json_ = std::move(json);
    if (!c.json_.is_object()) throw format_error::at_byte(c.path_, 0, "expected a JSON object of settings");
    return c;
  }

  const std::string& path() const noexcept { return path_; }

  /// True when `key` is present and not null.
  bool has(const std::string& key) const { return json_.contains(key) && !json_.at(key).is_null(); }

  /// A required positive integer.
  Index positive(const std::string& key) const {
    if (!has(key)) bad(key, "is missing, expected a positive integer");
    return positive_value(key);
  }
  /// An optional positive integer (`fallback` when absent or null).
  Index positive_or(const std::string& key, Index fallback) const {
    return has(key) ? positive_value(key) : fallback;
  }
  /// An optional finite number.
  double number_or(const std::string& key, double fallback) const {
    if (!has(key)) return fallback;
    const nlohmann::json& v = json_.at(key);
    if (!v.is_number() || !std::isfinite(v.get<double>())) bad(key, "is " + v.dump() + ", expected a finite number");
    return v.get<double>();
  }
  /// An optional boolean.
  bool boolean_or(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    const nlohmann::json& v = json_.at(key);
    if (!v.is_boolean()) bad(key, "is " + v.dump() + ", expected true or false");
    return v.get<bool>();
  }
  /// An optional string.
  std::string string_or(const std::string& key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const nlohmann::json& v = json_.at(key);
    if (!v.is_string()) bad(key, "is " + v.dump() + ", expected a string");
    return v.get<std::string>();
  }
  /// The raw value (null when absent).
  nlohmann::json value(const std::string& key) const { return json_.contains(key) ? json_.at(key) : nlohmann::json(); }

  /// Throws `argument_error` "<file>: "<key>" <what>".
  [[noreturn]] void bad(const std::string& key, const std::string& what) const {
    detail::fail<argument_error>(path_, ": \"", key, "\" ", what);
  }

 private:
  Index positive_value(const std::string& key) const {
    const nlohmann::json& v = json_.at(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() <= 0) bad(key, "is " + v.dump() + ", expected a positive integer");
    return Index(v.get<std::int64_t>());
  }
  std::string path_;
  nlohmann::json json_;
};

/// "[a, b]" for messages.
inline std::string shape_text(std::initializer_list<Index> shape) {
  std::string s = "[";
  bool first = true;
  for (Index e : shape) {
    s += (first ? "" : ", ") + std::to_string(e);
    first = false;
  }
  return s + "]";
}

/// Opens the tensor files of a checkpoint directory: `model.safetensors`, or else every shard named in the
/// `weight_map` of `model.safetensors.index.json` (in order of first mention). Throws `io_error` when neither
/// exists or a shard cannot be read, `format_error` when the index or a shard is malformed.
inline std::vector<safetensors_file> open_checkpoint(const std::string& directory) {
  std::vector<safetensors_file> files;
  const std::string single = directory + "/model.safetensors";
  const std::string index_path = directory + "/model.safetensors.index.json";
  if (std::ifstream(single).good() || !std::ifstream(index_path).good()) {
    files.emplace_back(single);  // io_error naming model.safetensors when neither file is there
    return files;
  }
  const hf_config index_file = hf_config::read(index_path);
  const nlohmann::json map = index_file.value("weight_map");
  if (!map.is_object() || map.empty()) index_file.bad("weight_map", "is " + map.dump() + ", expected an object of tensor -> shard file");
  std::vector<std::string> shards;
  for (const auto& item : map.items()) {
    if (!item.value().is_string()) {
      index_file.bad("weight_map", "maps '" + item.key() + "' to " + item.value().dump() + ", expected a file name");
    }
    const std::string shard = item.value().get<std::string>();
    if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
  }
  for (const std::string& shard : shards) files.emplace_back(directory + "/" + shard);
  return files;
}

/// Tensors of a checkpoint (one file or several shards), read under a key prefix, with their presence, dtype and
/// shape checked before any conversion. `model` names the family in messages ("GPT-2"). Holds references.
class hf_tensors {
 public:
  hf_tensors(const std::vector<const safetensors_file*>& files, std::string prefix, std::string model)
      : files_(files), prefix_(std::move(prefix)), model_(std::move(model)) {}

  const std::string& prefix() const noexcept { return prefix_; }
  bool has(const std::string& name) const { return find(prefix_ + name) != nullptr; }

  /// Tensor `prefix + name` as a [rows x cols] matrix. Throws `format_error` when it is missing or stored in an
  /// unsupported dtype, `shape_error` when its shape differs; each message names the tensor and the expected shape.
  template <class Scalar>
  matrix<Scalar> read_matrix(const std::string& name, Index rows, Index cols) const {
    const std::string key = prefix_ + name;
    return check(key, {rows, cols}).template read_matrix<Scalar>(key, rows, cols);
  }

  /// Tensor `prefix + name` as a vector of `size` entries; errors as `read_matrix`.
  template <class Scalar>
  vector<Scalar> read_vector(const std::string& name, Index size) const {
    const std::string key = prefix_ + name;
    return check(key, {size}).template read_vector<Scalar>(key, size);
  }

 private:
  const safetensors_file* find(const std::string& key) const {
    for (const safetensors_file* f : files_) {
      if (f->has(key)) return f;
    }
    return nullptr;
  }

  std::string sources() const {
    if (files_.size() == 1) return files_.front()->source();
    return files_.front()->source() + " and " + std::to_string(files_.size() - 1) + " more shards";
  }

  const safetensors_file& check(const std::string& key, std::initializer_list<Index> shape) const {
    const safetensors_file* file = find(key);
    if (file == nullptr) {
      throw format_error(files_.empty() ? std::string("<no files>") : files_.front()->source(), 0, 0,
                         message(files_.empty() ? std::string("<no files>") : sources(), ": missing tensor '", key,
                                 "', expected shape ", shape_text(shape), " (", model_, " checkpoint)"));
    }
    const safetensors_tensor_info& info = file->info(key);
    if (info.type != dtype::float32 && info.type != dtype::float16 && info.type != dtype::bfloat16 &&
        info.type != dtype::float64) {
      throw format_error::at_byte(file->source(), info.header_offset,
                                  "tensor '" + key + "' has dtype " + safetensors_dtype_name(info.type) +
                                      ", expected F32, F16, BF16 or F64");
    }
    if (info.shape.size() != shape.size() || !std::equal(info.shape.begin(), info.shape.end(), shape.begin())) {
      fail<shape_error>("tensor '", key, "' in ", file->source(), " has shape ", detail::shape_string(info.shape),
                        ", expected ", shape_text(shape));
    }
    return *file;
  }

  std::vector<const safetensors_file*> files_;
  std::string prefix_;
  std::string model_;
};

/// Pointers to `files`, for `hf_tensors`.
inline std::vector<const safetensors_file*> file_pointers(const std::vector<safetensors_file>& files) {
  std::vector<const safetensors_file*> out;
  for (const safetensors_file& f : files) out.push_back(&f);
  return out;
}

}  // namespace detail
}  // namespace headlens
