// safetensors reading and writing, and the float16 / bfloat16 / float8 conversions: fixtures assembled by
// tools/make_io_fixtures.py with torch's own conversions, values worked out by hand, and hand-built malformed
// buffers checked for message and byte offset.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "headlens/io/safetensors.hpp"

namespace test_safetensors {

using Catch::Contains;
using headlens::dtype;
using headlens::format_error;
using extents = std::vector<headlens::Index>;

namespace {

std::string fixture(const std::string& name) { return std::string(HEADLENS_TEST_DATA_DIR) + "/io/" + name; }

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("headlens_test_safetensors_" + name)).string();
}

/// A safetensors file from a header text and `data_bytes` zero bytes of data; `length` overrides the header
/// length field when not -1.
std::vector<unsigned char> st_raw(const std::string& header, std::size_t data_bytes = 0, long long length = -1) {
  const std::uint64_t n = length >= 0 ? static_cast<std::uint64_t>(length) : header.size();
  std::vector<unsigned char> out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>((n >> (8 * i)) & 0xFF));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

headlens::safetensors_file open_bytes(const std::vector<unsigned char>& bytes) {
  return headlens::safetensors_file::from_memory(bytes, "bad.safetensors");
}

format_error open_error(const std::vector<unsigned char>& bytes) {
  try {
    open_bytes(bytes);
  } catch (const format_error& e) {
    return e;
  }
  FAIL("no format_error thrown");
  throw std::logic_error("unreachable");
}

std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

}  // namespace

TEST_CASE("float16 conversion, values worked out by hand", "[safetensors][half]") {
  using headlens::half_to_float;
  CHECK(half_to_float(0x3C00) == 1.0f);       // exponent 15 = bias, mantissa 0
  CHECK(half_to_float(0xC000) == -2.0f);      // sign, exponent 16
  CHECK(half_to_float(0x7BFF) == 65504.0f);   // (2 - 2^-10) * 2^15, the largest half
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));           // smallest subnormal
  CHECK(half_to_float(0x03FF) == std::ldexp(1023.0f, -24));        // largest subnormal
  CHECK(half_to_float(0x0200) == std::ldexp(1.0f, -15));           // subnormal with one bit
  CHECK(half_to_float(0x0400) == std::ldexp(1.0f, -14));           // smallest normal
  CHECK(half_to_float(0x3555) == 0.333251953125f);                 // 1.0101010101b * 2^-2
  CHECK(half_to_float(0x8001) == -std::ldexp(1.0f, -24));
  CHECK(half_to_float(0x0000) == 0.0f);
  CHECK(!std::signbit(half_to_float(0x0000)));
  CHECK(std::signbit(half_to_float(0x8000)));
  CHECK(half_to_float(0x8000) == 0.0f);
  CHECK(half_to_float(0x7C00) == std::numeric_limits<float>::infinity());
  CHECK(half_to_float(0xFC00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(half_to_float(0x7E00)));
  CHECK(std::isnan(half_to_float(0x7C01)));  // signalling NaN stays NaN, not infinity
  CHECK(std::isnan(half_to_float(0xFFFF)));
}

TEST_CASE("bfloat16 and float8 conversion, values worked out by hand", "[safetensors][half]") {
  CHECK(headlens::bfloat16_to_float(0x3F80) == 1.0f);
  CHECK(headlens::bfloat16_to_float(0xC000) == -2.0f);
  CHECK(headlens::bfloat16_to_float(0x4049) == 3.140625f);  // 1.1001001b * 2
  CHECK(headlens::bfloat16_to_float(0x0001) == std::ldexp(1.0f, -133));  // subnormal: 2^-149 * 2^16
  CHECK(headlens::bfloat16_to_float(0x7F80) == std::numeric_limits<float>::infinity());
  CHECK(std::isnan(headlens::bfloat16_to_float(0x7FC0)));

  CHECK(headlens::float8_e4m3_to_float(0x38) == 1.0f);     // exponent 7 = bias
  CHECK(headlens::float8_e4m3_to_float(0x7E) == 448.0f);   // 1.75 * 2^8, the largest
  CHECK(headlens::float8_e4m3_to_float(0x01) == std::ldexp(1.0f, -9));  // smallest subnormal
  CHECK(headlens::float8_e4m3_to_float(0xC0) == -2.0f);
  CHECK(std::isnan(headlens::float8_e4m3_to_float(0x7F)));
  CHECK(std::isnan(headlens::float8_e4m3_to_float(0xFF)));
  CHECK(headlens::float8_e5m2_to_float(0x3C) == 1.0f);
  CHECK(headlens::float8_e5m2_to_float(0x7B) == 57344.0f);  // 1.75 * 2^15
  CHECK(headlens::float8_e5m2_to_float(0x01) == std::ldexp(1.0f, -16));
  CHECK(headlens::float8_e5m2_to_float(0x7C) == std::numeric_limits<float>::infinity());
}

TEST_CASE("float to float16 / bfloat16 rounds to nearest even", "[safetensors][half]") {
  using headlens::float_to_half;
  CHECK(float_to_half(1.0f) == 0x3C00);
  CHECK(float_to_half(-2.0f) == 0xC000);
  CHECK(float_to_half(65504.0f) == 0x7BFF);
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);      // tie, down to even
  CHECK(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);  // tie, up to even
  CHECK(float_to_half(1.0f + 1.5f * std::ldexp(1.0f, -11)) == 0x3C01);
  CHECK(float_to_half(65519.0f) == 0x7BFF);
  CHECK(float_to_half(65520.0f) == 0x7C00);  // tie between 65504 and 2^16: even is infinity
  CHECK(float_to_half(1e10f) == 0x7C00);
  CHECK(float_to_half(-std::numeric_limits<float>::infinity()) == 0xFC00);
  CHECK(float_to_half(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);               // tie, down to even (zero)
  CHECK(float_to_half(std::ldexp(1.5f, -25)) == 0x0001);
  CHECK(float_to_half(std::ldexp(3.0f, -25)) == 0x0002);               // 1.5 * 2^-24: tie, up to even
  CHECK(float_to_half(std::ldexp(2047.0f, -25)) == 0x0400);            // rounds up into the smallest normal
  CHECK(float_to_half(-0.0f) == 0x8000);
  CHECK((float_to_half(std::numeric_limits<float>::quiet_NaN()) & 0x7FFF) > 0x7C00);

  CHECK(headlens::float_to_bfloat16(1.0f) == 0x3F80);
  CHECK(headlens::float_to_bfloat16(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);      // tie, down to even
  CHECK(headlens::float_to_bfloat16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3F82);  // tie, up to even
  CHECK((headlens::float_to_bfloat16(std::numeric_limits<float>::quiet_NaN()) & 0x7F) != 0);

  // Every finite or infinite half survives half -> float -> half.
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    const float f = headlens::half_to_float(h);
    if (std::isnan(f)) continue;
    if (float_to_half(f) != h) FAIL("half 0x" << std::hex << b << " does not round trip");
  }
}

TEST_CASE("safetensors: float16 and bfloat16 bit patterns agree with torch", "[safetensors][half]") {
  const headlens::safetensors_file f(fixture("half_spread.safetensors"));
  for (const std::string kind : {"half_bits", "bf_bits"}) {
    const auto raw = f.raw_bytes(kind);
    const auto ours = f.read_tensor<float>(kind);
    const auto torch = f.read_tensor<float>(kind + "_as_f32");
    REQUIRE(ours.size() == 2048);
    REQUIRE(raw.second == 4096);
    int nans = 0, subnormals = 0, infinities = 0;
    for (std::size_t i = 0; i < 2048; ++i) {
      INFO(kind << " pattern 0x" << std::hex << (raw.first[2 * i] | (raw.first[2 * i + 1] << 8)));
      if (std::isnan(torch.data[i])) {
        CHECK(std::isnan(ours.data[i]));
        ++nans;
        continue;
      }
      CHECK(bits_of(ours.data[i]) == bits_of(torch.data[i]));
      if (std::isinf(torch.data[i])) ++infinities;
      if (std::fpclassify(torch.data[i]) == FP_SUBNORMAL ||
          (kind == "half_bits" && torch.data[i] != 0 && std::fabs(torch.data[i]) < std::ldexp(1.0f, -14))) {
        ++subnormals;
      }
    }
    // The spread really reaches the special cases.
    CHECK(nans > 0);
    CHECK(subnormals > 0);
    if (kind == "half_bits") CHECK(infinities > 0);  // 0x7C00 is in the spread; for bfloat16 only NaNs are
    // float64 conversion is the same value.
    const auto ours64 = f.read_tensor<double>(kind);
    for (std::size_t i = 0; i < 2048; ++i) {
      if (!std::isnan(ours.data[i])) CHECK(ours64.data[i] == static_cast<double>(ours.data[i]));
    }
  }
}

TEST_CASE("safetensors: mixed fixture", "[safetensors]") {
  const headlens::safetensors_file f(fixture("mixed.safetensors"));
  CHECK(f.names() == std::vector<std::string>{"w", "b", "half", "half_as_f32", "bf", "bf_as_f32", "ids", "small",
                                              "mask", "scalar", "empty"});
  CHECK(f.size() == 11);
  CHECK(f.has("w"));
  CHECK_FALSE(f.has("W"));
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("note") == "caf\xc3\xa9 \"quoted\"\n");  // \u00e9 decoded to UTF-8, escapes decoded

  const auto& w = f.info("w");
  CHECK(w.type == dtype::float32);
  CHECK(w.shape == extents{2, 3});
  CHECK(w.begin == 0);
  CHECK(w.end == 24);
  CHECK(w.size() == 6);

  const headlens::matrix<float> m = f.read_matrix<float>("w", 2, 3);
  CHECK(m(0, 0) == 0.5f);
  CHECK(m(0, 1) == -1.25f);
  CHECK(m(1, 0) == 0.001f);
  CHECK(m(1, 1) == 65504.0f);
  CHECK(std::signbit(m(1, 2)));
  CHECK(f.read_matrix<double>("w") == m.cast<double>());

  const headlens::vector<double> b = f.read_vector<double>("b", 3);
  CHECK(b(0) == 1.5);
  CHECK(b(1) == -2.0);
  CHECK(b(2) == 1e300);

  const auto half = f.read_tensor<float>("half");
  CHECK(f.info("half").type == dtype::float16);
  CHECK(half.data[0] == 1.0f);
  CHECK(half.data[1] == -2.0f);
  CHECK(half.data[2] == 65504.0f);
  CHECK(half.data[3] == std::ldexp(1.0f, -24));
  CHECK(half.data[4] == std::ldexp(1.0f, -14));
  CHECK(half.data[5] == std::numeric_limits<float>::infinity());
  CHECK(half.data[6] == -std::numeric_limits<float>::infinity());
  CHECK(half.data[7] == 0.333251953125f);
  CHECK(half.data == f.read_tensor<float>("half_as_f32").data);

  const auto bf = f.read_tensor<float>("bf");
  CHECK(f.info("bf").type == dtype::bfloat16);
  CHECK(bf.data[0] == 1.0f);
  CHECK(bf.data[1] == -2.0f);
  CHECK(bf.data[2] == 3.140625f);
  CHECK(bf.data[3] > 0.0f);
  CHECK(std::fpclassify(bf.data[3]) == FP_SUBNORMAL);  // 1e-40 is a bfloat16 subnormal
  CHECK(bf.data[4] == std::numeric_limits<float>::infinity());
  CHECK(std::signbit(bf.data[5]));
  CHECK(bf.data == f.read_tensor<float>("bf_as_f32").data);

  CHECK(f.read_tensor<std::int64_t>("ids").data == std::vector<std::int64_t>{-1, 0, std::int64_t(1) << 40, 7});
  CHECK(f.read_tensor<double>("ids").data == std::vector<double>{-1, 0, 1099511627776.0, 7});
  REQUIRE_THROWS_AS(f.read_tensor<std::int32_t>("ids"), headlens::argument_error);
  REQUIRE_THROWS_WITH(f.read_tensor<std::int32_t>("ids"),
                      Contains("tensor 'ids' in ") && Contains("element 2 (1099511627776) does not fit"));
  const headlens::matrix<int> small = f.read_matrix<int>("small", 2, 2);
  CHECK(small == (Eigen::Matrix<int, 2, 2, Eigen::RowMajor>() << 1, -2, 3, -4).finished());
  CHECK(f.read_tensor<bool>("mask").data == std::vector<bool>{true, false, true});
  CHECK(f.read_vector<float>("mask") == Eigen::Vector3f(1, 0, 1));

  const auto scalar = f.read_tensor<double>("scalar");
  CHECK(scalar.shape.empty());
  CHECK(scalar.data == std::vector<double>{3.25});
  const headlens::matrix<float> empty = f.read_matrix<float>("empty", 0, 3);
  CHECK(empty.rows() == 0);
  CHECK(empty.cols() == 3);
}

TEST_CASE("safetensors: lookup and conversion errors", "[safetensors]") {
  const headlens::safetensors_file f(fixture("mixed.safetensors"));
  REQUIRE_THROWS_AS(f.info("wq"), headlens::argument_error);
  REQUIRE_THROWS_WITH(f.read_matrix<float>("wq"),
                      Contains("no tensor named 'wq' in ") && Contains("mixed.safetensors; available: 'w', 'b', 'half', "
                                                                        "'half_as_f32', 'bf', 'bf_as_f32', 'ids', "
                                                                        "'small', ... (3 more)"));
  REQUIRE_THROWS_AS(f.read_matrix<float>("b"), headlens::shape_error);
  REQUIRE_THROWS_WITH(f.read_matrix<float>("b"), Contains("tensor 'b' in ") &&
                                                     Contains("has shape [3], expected [rows, cols]"));
  REQUIRE_THROWS_WITH(f.read_matrix<float>("w", 3, 2), Contains("has shape [2, 3], expected [3, 2]"));
  REQUIRE_THROWS_WITH(f.read_matrix<float>("w", 2, 4), Contains("has shape [2, 3], expected [2, 4]"));
  REQUIRE_THROWS_WITH(f.read_vector<float>("w"), Contains("tensor 'w' in ") &&
                                                     Contains("has shape [2, 3], expected [n]"));
  REQUIRE_THROWS_WITH(f.read_vector<float>("b", 4), Contains("has shape [3], expected [4]"));
  REQUIRE_THROWS_AS(f.read_tensor<int>("w"), headlens::argument_error);
  REQUIRE_THROWS_WITH(f.read_tensor<int>("w"), Contains("tensor 'w' in ") &&
                                                   Contains("is F32, which cannot be read as the requested scalar type"));
  REQUIRE_THROWS_WITH(f.read_tensor<bool>("ids"), Contains("is I64, which cannot be read"));

  const auto empty = headlens::safetensors_file::from_memory(st_raw("{}"), "empty.safetensors");
  CHECK(empty.size() == 0);
  CHECK(empty.metadata().empty());
  REQUIRE_THROWS_WITH(empty.info("x"), Contains("no tensor named 'x' in empty.safetensors; available: none"));

  REQUIRE_THROWS_AS(headlens::safetensors_file(fixture("missing.safetensors")), headlens::io_error);
  REQUIRE_THROWS_WITH(headlens::safetensors_file(fixture("missing.safetensors")),
                      Contains("cannot open ") && Contains("missing.safetensors for reading"));
}

TEMPLATE_TEST_CASE("safetensors: writer round trip", "[safetensors]", float, double) {
  const headlens::Index rows = GENERATE(1, 7);
  const headlens::Index cols = GENERATE(1, 9, 16);
  headlens::matrix<TestType> m(rows, cols);
  for (headlens::Index i = 0; i < rows; ++i)
    for (headlens::Index j = 0; j < cols; ++j) m(i, j) = static_cast<TestType>(i * 100 - j) / TestType(3);
  const Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic> col_major = m;  // written in C order all the same
  const headlens::vector<TestType> v = m.row(0).transpose();
  std::vector<TestType> maps(2 * 3 * 4 * 4);
  for (std::size_t k = 0; k < maps.size(); ++k) maps[k] = static_cast<TestType>(k) * TestType(0.25);

  headlens::safetensors_writer w;
  w.add("m", m);
  w.add("m_col_major", col_major);
  w.add("v", v);
  w.add("maps", maps.data(), {2, 3, 4, 4});
  w.add("m_half", m, dtype::float16);
  w.add("m_bf16", m, dtype::bfloat16);
  w.add("m_other", m, std::is_same<TestType, float>::value ? dtype::float64 : dtype::float32);
  const std::int64_t ids[] = {5, -6};
  w.add("ids", ids, {2});
  w.set_metadata("format", "pt");
  w.set_metadata("quote\"back\\slash", "line\nbreak\x01");
  const auto bytes = w.bytes();
  CHECK(headlens::detail::load_le(bytes.data(), 8) % 8 == 0);

  const std::string path = temp_path("roundtrip.safetensors");
  w.write(path);
  const headlens::safetensors_file f(path);
  CHECK(f.names() == std::vector<std::string>{"m", "m_col_major", "v", "maps", "m_half", "m_bf16", "m_other", "ids"});
  CHECK(f.info("m").type == headlens::dtype_of<TestType>::value);
  CHECK(f.read_matrix<TestType>("m", rows, cols) == m);
  CHECK(f.read_matrix<TestType>("m_col_major") == m);
  CHECK(f.read_vector<TestType>("v", cols) == v);
  const auto t = f.read_tensor<TestType>("maps");
  CHECK(t.shape == extents{2, 3, 4, 4});
  CHECK(t.data == maps);
  CHECK(f.info("m_half").type == dtype::float16);
  CHECK(f.info("m_bf16").type == dtype::bfloat16);
  const headlens::matrix<float> as_half = f.read_matrix<float>("m_half");
  const headlens::matrix<float> as_bf16 = f.read_matrix<float>("m_bf16");
  for (headlens::Index i = 0; i < rows; ++i) {
    for (headlens::Index j = 0; j < cols; ++j) {
      const float x = static_cast<float>(m(i, j));
      CHECK(as_half(i, j) == headlens::half_to_float(headlens::float_to_half(x)));
      CHECK(as_half(i, j) == Approx(x).epsilon(1.0 / 2048));  // half has 11 significant bits
      CHECK(as_bf16(i, j) == Approx(x).epsilon(1.0 / 256));   // bfloat16 has 8
    }
  }
  CHECK(f.read_matrix<TestType>("m_other").template cast<float>() == m.template cast<float>());
  CHECK(f.read_tensor<std::int64_t>("ids").data == std::vector<std::int64_t>{5, -6});
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("quote\"back\\slash") == "line\nbreak\x01");

  std::map<std::string, headlens::tensor<TestType>> tensors;
  tensors["a"] = headlens::tensor<TestType>{{2}, {TestType(1), TestType(2)}};
  tensors["b"] = headlens::tensor<TestType>{{}, {TestType(-3)}};
  headlens::write_safetensors(path, tensors, {{"k", "v"}});
  const headlens::safetensors_file g(path);
  CHECK(g.read_tensor<TestType>("a").data == tensors["a"].data);
  CHECK(g.read_tensor<TestType>("b").shape.empty());
  CHECK(g.metadata().at("k") == "v");
  std::filesystem::remove(path);
}

TEST_CASE("safetensors: writer errors", "[safetensors]") {
  headlens::safetensors_writer w;
  const float x[] = {1, 2, 3};
  w.add("x", x, {3});
  REQUIRE_THROWS_AS(w.add("x", x, {3}), headlens::argument_error);
  REQUIRE_THROWS_WITH(w.add("x", x, {3}), Contains("tensor 'x' was already added"));
  REQUIRE_THROWS_WITH(w.add("__metadata__", x, {3}), Contains("'__metadata__' is reserved"));
  REQUIRE_THROWS_AS(w.add("neg", x, {-1}), headlens::shape_error);
  const int ints[] = {1, 2};
  REQUIRE_THROWS_WITH(w.add("i", ints, {2}, dtype::float16), Contains("tensor 'i': cannot store int32 data as float16"));
  headlens::tensor<float> t{{2, 2}, {1, 2, 3}};
  REQUIRE_THROWS_AS(w.add("t", t), headlens::shape_error);
  REQUIRE_THROWS_WITH(w.add("t", t), Contains("tensor 't' has 3 values, expected the product of shape [2, 2]"));
  REQUIRE_THROWS_AS(w.write("/nonexistent-dir/x.safetensors"), headlens::io_error);
}

TEST_CASE("safetensors: malformed length and layout", "[safetensors]") {
  SECTION("shorter than the length field") {
    const auto e = open_error({1, 2, 3, 4, 5});
    CHECK(e.byte_offset() == 5);
    CHECK(e.file() == "bad.safetensors");
    CHECK_THAT(e.what(), Contains("bad.safetensors at byte 5: truncated file: 5 bytes, shorter than the 8-byte"));
  }
  SECTION("header length past the end") {
    const auto e = open_error(st_raw("{}", 10, 1000));
    CHECK(e.byte_offset() == 0);
    CHECK_THAT(e.what(), Contains("at byte 0: header length 1000 runs past the end of the file (20 bytes)"));
    auto huge = st_raw("{}");
    for (std::size_t i = 0; i < 8; ++i) huge[i] = 0xFF;
    huge[0] = 0xFE;  // 2^64 - 2: must not wrap around when added to 8
    REQUIRE_THROWS_WITH(open_bytes(huge), Contains("header length 18446744073709551614 runs past"));
  }
  SECTION("header not an object") {
    const auto e = open_error(st_raw("  [1]"));
    CHECK(e.byte_offset() == 10);
    CHECK_THAT(e.what(), Contains("the header is an array, expected a JSON object"));
  }
  SECTION("empty header") {
    REQUIRE_THROWS_WITH(open_bytes(st_raw("")), Contains("at byte 8: invalid JSON header: expected a value, found end of header"));
  }
}

TEST_CASE("safetensors: malformed JSON", "[safetensors]") {
  struct bad_case {
    std::string header;
    std::string message;
    std::size_t offset;  // within the header; the file offset is 8 more
  };
  const std::vector<bad_case> cases = {
      {R"({"a":{"dtype":"F32",}})", "expected a string key, found character '}'", 20},
      {R"({"a" {}})", "expected ':' after a key, found character '{'", 5},
      {R"({"a":{}} x)", "unexpected character 'x' after the JSON value", 9},
      {R"({"a":{})", "expected ',' or '}' in an object, found end of header", 7},
      {R"({"a":[1 2]})", "expected ',' or ']' in an array, found character '2'", 8},
      {R"({"a":"unterminated})", "unterminated string", 5},
      {R"({"a":01})", "numbers may not have leading zeros", 5},
      {R"({"a":1.5})", "only integers are supported, found a number with a fraction or exponent", 5},
      {R"({"a":1e3})", "only integers are supported", 5},
      {R"({"a":-})", "expected a digit after '-'", 6},
      {R"({"a":99999999999999999999})", "integer out of the 64-bit range", 5},
      {R"({"a":"\x"})", "invalid escape in a string", 6},
      {R"({"a":"\u12G4"})", "invalid hex digit in a \\u escape", 10},
      {R"({"a":"\ud800"})", "unpaired high surrogate in a \\u escape", 6},
      {R"({"a":"\udc00"})", "unpaired low surrogate in a \\u escape", 6},
      {"{\"a\":\"tab\there\"}", "unescaped control character in a string", 9},
      {"{\"a\":\"\xC3\x28\"}", "invalid UTF-8 in a string", 6},
      {"{\"a\":\"\xE0\x80\x80\"}", "invalid UTF-8 in a string", 6},
      {"{\"a\":\"\xED\xA0\x80\"}", "invalid UTF-8 in a string", 6},
      {R"({"a":tru})", "expected a value, found a misspelt literal", 5},
      {R"({"a":?})", "expected a value, found character '?'", 5},
      {R"({"a":1,"a":2})", "duplicate key \"a\"", 7},
      {"{\"a\":\x01}", "expected a value, found byte 0x01", 5},
      {std::string(70, '[') + std::string(70, ']'), "nesting deeper than 64", 64},
  };
  for (const auto& c : cases) {
    INFO(c.header);
    const auto e = open_error(st_raw(c.header));
    CHECK_THAT(e.what(), Contains("bad.safetensors at byte ") && Contains("invalid JSON header: " + c.message));
    CHECK(e.byte_offset() == 8 + c.offset);
  }
  // Escapes and surrogate pairs decode; trailing spaces (the padding) are allowed.
  const auto ok = open_bytes(st_raw(R"({"__metadata__":{"k":"\ud83d\ude00 \u00e9\/\b\f\n\r\t\"\\"}}   )"));
  CHECK(ok.metadata().at("k") == "\xF0\x9F\x98\x80 \xC3\xA9/\b\f\n\r\t\"\\");
}

TEST_CASE("safetensors: malformed tensor entries", "[safetensors]") {
  struct bad_case {
    std::string header;
    std::size_t data;
    std::string message;
    std::size_t offset;  // within the header; the file offset is 8 more
  };
  const std::vector<bad_case> cases = {
      {R"({"a":[1]})", 0, "tensor 'a' is an array, expected an object with dtype, shape and data_offsets", 5},
      {R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4, "tensor 'a' has no \"dtype\"", 5},
      {R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4, "tensor 'a' has no \"shape\"", 5},
      {R"({"a":{"dtype":"F32","shape":[1]}})", 4, "tensor 'a' has no \"data_offsets\"", 5},
      {R"({"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", 4,
       "tensor 'a': \"dtype\" is an integer, expected a string", 14},
      {R"({"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", 4,
       "tensor 'a': unknown dtype \"F12\" (known: F64 F32 F16 BF16", 14},
      {R"({"a":{"dtype":"F32","shape":{},"data_offsets":[0,4]}})", 4,
       "tensor 'a': \"shape\" is an object, expected an array", 28},
      {R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4,
       "tensor 'a': shape entries must be non-negative integers", 29},
      {R"({"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})", 4,
       "tensor 'a': shape entries must be non-negative integers", 29},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 8,
       "tensor 'a': data_offsets must be two non-negative integers [begin, end]", 47},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 8,
       "tensor 'a': data_offsets must be two non-negative integers", 47},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8,
       "tensor 'a': data_offsets [8, 4] end before they begin", 47},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", 8,
       "tensor 'a': data_offsets [0, 12] run past the end of the 8-byte data buffer", 47},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8,
       "tensor 'a': data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12 bytes", 47},
      {R"({"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,4]}})", 8,
       "tensor 'a': data_offsets [0, 4] hold 4 bytes, but shape [2, 2] of BF16 needs 8 bytes", 50},
      {R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8,
       "shape [4294967296, 4294967296] of F64 needs more bytes than fit 64 bits", 67},
      {R"({"a":{"dtype":"F64","shape":[4294967296,536870912],"data_offsets":[0,8]}})", 8,
       "shape [4294967296, 536870912] of F64 needs more bytes than fit 64 bits", 66},
      {R"({"a":{"dtype":"F64","shape":[4294967296,536870911],"data_offsets":[0,8]}})", 8,
       "needs 18446744039349813248 bytes", 66},
      {R"({"__metadata__":[]})", 0, "__metadata__ is an array, expected an object of strings", 16},
      {R"({"__metadata__":{"n":1}})", 0, "__metadata__ value of 'n' is an integer, expected a string", 21},
  };
  for (const auto& c : cases) {
    INFO(c.header);
    const auto e = open_error(st_raw(c.header, c.data));
    CHECK_THAT(e.what(), Contains("bad.safetensors at byte ") && Contains(c.message));
    CHECK(e.byte_offset() == 8 + c.offset);
  }
}

TEST_CASE("safetensors: overlapping tensors are rejected, holes and empty tensors are not", "[safetensors]") {
  const std::string a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string b_overlap = R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})";
  const std::string header = "{" + a + "," + b_overlap + "}";
  const auto e = open_error(st_raw(header, 12));
  CHECK_THAT(e.what(), Contains("tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a' ([0, 8])"));
  CHECK(e.byte_offset() == 8 + header.find("\"b\""));

  // The same region twice, listed in reverse order: still an overlap.
  const std::string c_same = R"("c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]})";
  REQUIRE_THROWS_WITH(open_bytes(st_raw("{" + c_same + "," + a + "}", 8)), Contains("overlaps tensor"));

  // A tensor inside another's range.
  const std::string d_inside = R"("d":{"dtype":"U8","shape":[2],"data_offsets":[2,4]})";
  REQUIRE_THROWS_WITH(open_bytes(st_raw("{" + a + "," + d_inside + "}", 8)),
                      Contains("tensor 'd' (data_offsets [2, 4]) overlaps tensor 'a' ([0, 8])"));

  // A hole between tensors and a zero-size tensor are fine.
  const std::string b_after_hole = R"("b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]})";
  const std::string z = R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]})";
  const auto ok = open_bytes(st_raw("{" + a + "," + b_after_hole + "," + z + "}", 16));
  CHECK(ok.size() == 3);
  CHECK(ok.read_tensor<float>("z").data.empty());
  CHECK(ok.read_tensor<float>("b").data == std::vector<float>{0.0f});
}

TEST_CASE("safetensors: every dtype name is read", "[safetensors]") {
  const std::vector<std::pair<std::string, dtype>> names = {
      {"F64", dtype::float64}, {"F32", dtype::float32}, {"F16", dtype::float16}, {"BF16", dtype::bfloat16},
      {"F8_E4M3", dtype::float8_e4m3}, {"F8_E5M2", dtype::float8_e5m2}, {"I64", dtype::int64}, {"I32", dtype::int32},
      {"I16", dtype::int16}, {"I8", dtype::int8}, {"U64", dtype::uint64}, {"U32", dtype::uint32},
      {"U16", dtype::uint16}, {"U8", dtype::uint8}, {"BOOL", dtype::bool8}};
  for (const auto& n : names) {
    INFO(n.first);
    const std::size_t bytes = 2 * headlens::dtype_size(n.second);
    const std::string header = R"({"t":{"dtype":")" + n.first + R"(","shape":[2],"data_offsets":[0,)" +
                               std::to_string(bytes) + "]}}";
    const auto f = open_bytes(st_raw(header, bytes));
    CHECK(f.info("t").type == n.second);
    CHECK(f.read_tensor<double>("t").data == std::vector<double>{0.0, 0.0});
  }
}

TEST_CASE("safetensors: corrupted files fail with format_error, never worse", "[safetensors][fuzz]") {
  // Deterministic mutations of a valid file: flipped bytes in the length and header, truncations. Each must
  // either open (and then read every tensor) or throw format_error; run under the sanitizers this also proves
  // no read goes out of bounds.
  std::vector<unsigned char> original;
  {
    headlens::safetensors_writer w;
    const float values[] = {1, 2, 3, 4, 5, 6};
    w.add("a", values, {2, 3});
    w.add("b", values, {3}, dtype::float16);
    w.set_metadata("k", "v");
    original = w.bytes();
  }
  std::uint32_t state = 12345;
  auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  int opened = 0, rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<unsigned char> bytes = original;
    const int edits = 1 + static_cast<int>(next() % 3);
    for (int k = 0; k < edits; ++k) {
      const std::size_t at = next() % bytes.size();
      bytes[at] = static_cast<unsigned char>(next() & 0xFF);
    }
    if (next() % 4 == 0) bytes.resize(next() % bytes.size());
    try {
      const auto f = open_bytes(bytes);
      for (const auto& name : f.names()) {
        if (headlens::detail::can_convert<double>(f.info(name).type)) (void)f.read_tensor<double>(name);
      }
      ++opened;
    } catch (const format_error&) {
      ++rejected;
    }
  }
  CHECK(opened > 0);
  CHECK(rejected > 0);
}

}  // namespace test_safetensors
