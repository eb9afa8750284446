// GGUF: the reader (io/gguf.hpp), the block formats (io/ggml_quants.hpp), the writer (io/gguf_writer.hpp) and the
// Llama loader (models/gguf_llama.hpp). References: blocks laid out and evaluated by hand from ggml's published
// layouts; hand-patched malformed files checked for message and byte offset; and llama.cpp itself
// (node-llama-cpp 3.21.1, tools/gguf_fixtures.mjs), whose log-probabilities for a random Llama written by our
// writer (tests/support/gguf_random_llama.hpp, rebuilt here byte for byte and checked by hash) are committed
// in tests/data/gguf/.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "headlens/io/ggml_quants.hpp"
#include "headlens/io/gguf.hpp"
#include "headlens/io/gguf_writer.hpp"
#include "headlens/io/npy.hpp"
#include "headlens/models/attention_model.hpp"
#include "headlens/models/gguf_llama.hpp"
#include "support/gguf_random_llama.hpp"

namespace test_gguf {

using Catch::Contains;
using headlens::format_error;
using headlens::gguf_file;
using headlens::gguf_type;
using headlens::gguf_value;
using headlens::ggml_type;
using bytes_t = std::vector<unsigned char>;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("headlens_test_gguf_" + name)).string();
}

std::vector<float> dequantize(ggml_type type, const bytes_t& block, std::size_t count) {
  std::vector<float> out(count);
  headlens::dequantize_row(std::uint32_t(type), block.data(), out.data(), count);
  return out;
}

void put_half(bytes_t& b, std::size_t at, std::uint16_t bits) {
  b[at] = static_cast<unsigned char>(bits & 0xFF);
  b[at + 1] = static_cast<unsigned char>(bits >> 8);
}

/// Position of `needle` in `hay` (the first after `from`); fails the test when absent.
std::size_t find(const bytes_t& hay, const std::string& needle, std::size_t from = 0) {
  const auto it = std::search(hay.begin() + std::ptrdiff_t(from), hay.end(), needle.begin(), needle.end());
  REQUIRE(it != hay.end());
  return std::size_t(it - hay.begin());
}

void put_u32(bytes_t& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + std::size_t(i)] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(bytes_t& b, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + std::size_t(i)] = static_cast<unsigned char>(v >> (8 * i));
}

/// A small valid file: three metadata values and two F32 tensors "wt" [32, 2] and "nb" [4].
bytes_t small_file() {
  headlens::gguf_writer w;
  w.set("general.architecture", gguf_value::of_string("test"));
  w.set("test.count", gguf_value::of_uint32(7));
  w.set("test.list", gguf_value::of_int32s({1, -2, 3}));
  std::vector<float> wt(64), nb = {1, 2, 3, 4};
  for (std::size_t i = 0; i < wt.size(); ++i) wt[i] = float(i) * 0.5f;
  w.add_tensor("wt", ggml_type::f32, {32, 2}, wt.data());
  w.add_tensor("nb", ggml_type::f32, {4}, nb.data());
  return w.bytes();
}

/// Opens `b` expecting a format_error whose message contains `text`, and returns its byte offset.
std::uint64_t error_offset(const bytes_t& b, const std::string& text) {
  try {
    gguf_file::from_bytes(b, "bad.gguf");
  } catch (const format_error& e) {
    INFO(e.what());
    CHECK_THAT(std::string(e.what()), Contains(text) && Contains("bad.gguf at byte"));
    CHECK(e.file() == "bad.gguf");
    return e.byte_offset();
  }
  FAIL("no format_error for: " << text);
  return 0;
}

/// Largest |log p| difference accepted against llama.cpp, per weight type. F32: 1e-4 (the log-probs span about 17,
/// so about 6e-6 of their scale; measured 3.9e-6). The others are bounded by llama.cpp's CPU matmul, not by the
/// weights: it rounds the activations to the weight's dot-product type before multiplying (F16 -> F16, BF16 ->
/// BF16, Q8_0 and Q4_0 -> Q8_0 blocks, Q4_K and Q6_K -> Q8_K blocks), where headlens multiplies exactly
/// dequantised weights by unrounded activations. Bounds are 1.5x the measured differences (F16 0.0047, BF16 0.036,
/// Q8_0 0.153, Q4_0 0.139, Q4_K 0.222, Q6_K 0.212); the weights themselves are checked bit for bit against ggml's
/// dequantisation below.
double tolerance(const std::string& type) {
  if (type == "F32") return 1e-4;
  if (type == "F16") return 0.007;
  if (type == "BF16") return 0.054;
  if (type == "Q8_0") return 0.23;
  if (type == "Q4_0") return 0.21;
  if (type == "Q4_K") return 0.33;
  return 0.32;  // Q6_K
}

std::vector<double> log_softmax_row(const headlens::matrix<double>& logits, headlens::Index r) {
  const double m = logits.row(r).maxCoeff();
  double sum = 0;
  for (headlens::Index c = 0; c < logits.cols(); ++c) sum += std::exp(logits(r, c) - m);
  std::vector<double> out(std::size_t(logits.cols()));
  for (headlens::Index c = 0; c < logits.cols(); ++c) out[std::size_t(c)] = logits(r, c) - m - std::log(sum);
  return out;
}


/// max |log softmax(logits) - reference| over every entry, and the reference read from tests/data/gguf/<file>.
double max_logprob_diff(const headlens::matrix<double>& logits, const std::string& file) {
  const headlens::matrix<double> reference = headlens::read_npy_matrix<double>(
      std::string(HEADLENS_TEST_DATA_DIR) + "/gguf/" + file, logits.rows(), logits.cols());
  double diff = 0;
  for (headlens::Index r = 0; r < logits.rows(); ++r) {
    const std::vector<double> ours = log_softmax_row(logits, r);
    for (headlens::Index c = 0; c < logits.cols(); ++c) diff = std::max(diff, std::fabs(ours[std::size_t(c)] - reference(r, c)));
  }
  return diff;
}

}  // namespace

TEST_CASE("ggml block layouts dequantise to the values worked out by hand", "[gguf]") {
  SECTION("F16, BF16 and F32 elements") {
    bytes_t h = {0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00};  // 1, -2, 65504, 2^-24
    const std::vector<float> f = dequantize(ggml_type::f16, h, 4);
    CHECK(f == std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)});
    bytes_t b = {0x80, 0x3F, 0x40, 0xC0};  // 1, -3
    CHECK(dequantize(ggml_type::bf16, b, 2) == std::vector<float>{1.0f, -3.0f});
    bytes_t s = {0x00, 0x00, 0x20, 0x40};  // 2.5f
    CHECK(dequantize(ggml_type::f32, s, 1) == std::vector<float>{2.5f});
  }
  SECTION("Q8_0: fp16 d, then 32 int8") {
    bytes_t b(34);
    put_half(b, 0, 0x3800);  // d = 0.5
    for (int i = 0; i < 32; ++i) b[2 + std::size_t(i)] = static_cast<unsigned char>(std::int8_t(i * 8 - 128));
    const std::vector<float> x = dequantize(ggml_type::q8_0, b, 32);
    CHECK(x[0] == -64.0f);   // -128 * 0.5
    CHECK(x[16] == 0.0f);    // 0
    CHECK(x[31] == 60.0f);   // 120 * 0.5
    CHECK(x[5] == -44.0f);   // -88 * 0.5
  }
  SECTION("Q4_0: low nibbles are elements 0..15, high nibbles 16..31, value (q - 8) * d") {
    bytes_t b(18);
    put_half(b, 0, 0x4000);  // d = 2
    for (int i = 0; i < 16; ++i) b[2 + std::size_t(i)] = static_cast<unsigned char>(i | ((15 - i) << 4));
    const std::vector<float> x = dequantize(ggml_type::q4_0, b, 32);
    CHECK(x[0] == -16.0f);   // (0 - 8) * 2
    CHECK(x[15] == 14.0f);   // (15 - 8) * 2
    CHECK(x[16] == 14.0f);   // high nibble of byte 0: 15
    CHECK(x[31] == -16.0f);  // high nibble of byte 15: 0
    CHECK(x[20] == 6.0f);    // high nibble of byte 4: 11 -> 3 * 2
  }
  SECTION("Q4_K: 6-bit scales and mins, sub-blocks 2c and 2c + 1 share bytes 32c..32c + 31") {
    // Sub-block scales sc = {1, 2, 3, 4, 17, 33, 50, 63}, mins m = {0, 5, 10, 15, 20, 40, 48, 62}, packed by
    // hand: bytes 0..3 hold sc0..3 and the top two bits of sc4..7; 4..7 hold m0..3 and the top bits of m4..7;
    // 8..11 hold the low nibbles of sc4..7 (low) and m4..7 (high).
    bytes_t b(144);
    put_half(b, 0, 0x3C00);  // d = 1
    put_half(b, 2, 0x3800);  // dmin = 0.5
    const unsigned char scales[12] = {65, 130, 195, 196, 64, 133, 202, 207, 65, 129, 2, 239};
    std::memcpy(b.data() + 4, scales, 12);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) b[16 + std::size_t(32 * c + l)] = static_cast<unsigned char>((l % 16) | ((15 - l % 16) << 4));
    }
    const std::vector<float> x = dequantize(ggml_type::q4_k, b, 256);
    CHECK(x[0] == 0.0f);      // sub-block 0, q 0: 1 * 0 - 0.5 * 0
    CHECK(x[33] == 25.5f);    // sub-block 1 (high nibbles of bytes 0..31), byte 1: q 14 -> 2 * 14 - 0.5 * 5
    CHECK(x[133] == 75.0f);   // sub-block 4, low nibble of byte 64 + 5: q 5 -> 17 * 5 - 0.5 * 20
    CHECK(x[170] == 145.0f);  // sub-block 5, high nibble of byte 64 + 10: q 5 -> 33 * 5 - 0.5 * 40
    CHECK(x[200] == 376.0f);  // sub-block 6, low nibble of byte 96 + 8: q 8 -> 50 * 8 - 0.5 * 48
    CHECK(x[255] == -31.0f);  // sub-block 7, high nibble of byte 96 + 31: q 0 -> 0 - 0.5 * 62
    CHECK(x[100] == 36.5f);   // sub-block 3, high nibble of byte 32 + 4: q 11 -> 4 * 11 - 0.5 * 15
  }
  SECTION("Q6_K: 4 low bits in ql, 2 high bits in qh, int8 scale per 16 elements, value d * scale * (q - 32)") {
    bytes_t b(210, 0);
    for (int i = 0; i < 64; ++i) b[128 + std::size_t(i)] = 0xAA;  // every q = 32 (high bits 2): value 0
    for (int j = 0; j < 16; ++j) b[192 + std::size_t(j)] = static_cast<unsigned char>(std::int8_t((j % 2 ? -1 : 1) * (j + 1)));
    put_half(b, 208, 0x3400);  // d = 0.25
    // element 0 (half 0, l 0, k 0): q 63 = low nibble 15 of ql[0], bits 0-1 of qh[0] = 3
    b[0] = 0x0F;
    b[128 + 0] = 0xAB;
    // element 65 (half 0, l 1, k 2): q 0 = high nibble of ql[1] = 0, bits 4-5 of qh[1] = 0
    b[128 + 1] = 0x8A;
    // element 180 (half 1, l 20, k 1): q 45 = low nibble 13 of ql[64 + 32 + 20], bits 2-3 of qh[32 + 20] = 2
    b[64 + 52] = 0x0D;
    // element 255 (half 1, l 31, k 3): q 1 = high nibble 1 of ql[64 + 32 + 31], bits 6-7 of qh[32 + 31] = 0
    b[64 + 63] = 0x10;
    b[128 + 63] = 0x2A;
    const std::vector<float> x = dequantize(ggml_type::q6_k, b, 256);
    for (int e = 0; e < 256; ++e) {
      float expected = 0;
      if (e == 0) expected = 0.25f * 1 * 31;      // scale 0 = 1
      if (e == 65) expected = 0.25f * 5 * -32;    // scale 4 = 5
      if (e == 180) expected = 0.25f * -12 * 13;  // scale 11 = -12
      if (e == 255) expected = 0.25f * -16 * -31; // scale 15 = -16
      INFO("element " << e);
      CHECK(x[std::size_t(e)] == expected);
    }
  }
  SECTION("unsupported types and partial blocks are argument errors") {
    bytes_t b(64);
    float out[32];
    REQUIRE_THROWS_WITH(headlens::dequantize_row(3, b.data(), out, 32), Contains("ggml type Q4_1 cannot be converted"));
    REQUIRE_THROWS_WITH(headlens::dequantize_row(8, b.data(), out, 16),
                        Contains("element count 16 of a Q8_0 row is not a multiple of 32"));
    REQUIRE_THROWS_WITH(headlens::quantize_row(3, out, b.data(), 32), Contains("ggml type Q4_1 cannot be written"));
  }
}

TEST_CASE("the quantisers write blocks that dequantise close to their input", "[gguf]") {
  gguf_fixture::rng r{42};
  const std::vector<float> x = gguf_fixture::random_values(r, 512, 2.0f);
  struct bound {
    ggml_type type;
    double relative;  // max error / max |x| over the row: half a step, or a whole one where the top code clips
  };
  for (const bound& b : {bound{ggml_type::f16, 1e-3}, bound{ggml_type::bf16, 8e-3}, bound{ggml_type::q8_0, 6e-3},
                         bound{ggml_type::q4_0, 0.13}, bound{ggml_type::q4_k, 0.08}, bound{ggml_type::q6_k, 0.02}}) {
    bytes_t q(std::size_t(headlens::ggml_row_bytes(std::uint32_t(b.type), 512)));
    headlens::quantize_row(std::uint32_t(b.type), x.data(), q.data(), 512);
    const std::vector<float> y = dequantize(b.type, q, 512);
    double err = 0;
    for (std::size_t i = 0; i < 512; ++i) err = std::max(err, double(std::fabs(y[i] - x[i])));
    INFO(headlens::ggml_type_name(std::uint32_t(b.type)) << " max error " << err);
    CHECK(err <= b.relative * 2.0);
    CHECK(err > 0);
  }
}

TEST_CASE("GGUF metadata of every type and tensors round-trip through the writer and reader", "[gguf]") {
  headlens::gguf_writer w(64);
  w.set("u8", gguf_value::scalar(gguf_type::uint8, 250));
  w.set("i8", gguf_value::scalar(gguf_type::int8, std::uint64_t(std::int64_t(-5))));
  w.set("u16", gguf_value::scalar(gguf_type::uint16, 65535));
  w.set("i16", gguf_value::scalar(gguf_type::int16, std::uint64_t(std::int64_t(-300))));
  w.set("u32", gguf_value::of_uint32(4000000000u));
  w.set("i32", gguf_value::of_int32(-70000));
  w.set("u64", gguf_value::of_uint64(1ull << 40));
  w.set("i64", gguf_value::scalar(gguf_type::int64, std::uint64_t(std::int64_t(-(1ll << 40)))));
  w.set("f32", gguf_value::of_float32(0.25f));
  w.set("f64", gguf_value::of_float64(1.0 / 3));
  w.set("yes", gguf_value::of_bool(true));
  w.set("s", gguf_value::of_string("h\xC3\xA9llo"));
  w.set("strings", gguf_value::of_strings({"a", "", "ccc"}));
  w.set("floats", gguf_value::of_float32s({1.5f, -2}));
  gguf_value nested;
  nested.type = gguf_type::array;
  nested.element_type = gguf_type::array;
  nested.array_items = {gguf_value::of_int32s({1, 2}), gguf_value::of_strings({"x"})};
  w.set("nested", nested);
  std::vector<float> a(256 * 2), v = {3, 4, 5};
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = float(i % 17) - 8;
  w.add_tensor("a", ggml_type::q8_0, {256, 2}, a.data());
  w.add_tensor("v", ggml_type::f32, {3}, v.data());

  const std::string path = temp_path("roundtrip.gguf");
  w.write(path);
  const gguf_file f(path);
#ifdef HEADLENS_HAVE_MMAP
  CHECK(f.is_mapped());  // the data is paged in, not copied
#endif
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 64);
  CHECK(f.data_offset() % 64 == 0);
  CHECK(f.get_uint("u8") == 250);
  CHECK(f.get_number("i8") == -5);
  CHECK(f.get_uint("u16") == 65535);
  CHECK(f.get_number("i16") == -300);
  CHECK(f.get_uint("u32") == 4000000000u);
  CHECK(f.get_number("i32") == -70000);
  CHECK(f.get_uint("u64") == (1ull << 40));
  CHECK(f.get_number("i64") == -double(1ll << 40));
  CHECK(f.get_number("f32") == 0.25);
  CHECK(f.get_number("f64") == 1.0 / 3);
  CHECK(f.get_bool("yes"));
  CHECK(f.get_string("s") == "h\xC3\xA9llo");
  CHECK(f.get_strings("strings") == std::vector<std::string>{"a", "", "ccc"});
  CHECK(f.get_numbers("floats") == std::vector<double>{1.5, -2});
  const gguf_value* n = f.find("nested");
  REQUIRE(n != nullptr);
  REQUIRE(n->array_items.size() == 2);
  CHECK(n->array_items[0].array_bits == std::vector<std::uint64_t>{1, 2});
  CHECK(n->array_items[1].array_strings == std::vector<std::string>{"x"});
  REQUIRE_THROWS_WITH(f.get_uint("i8"), Contains("metadata i8 is a int8, expected a non-negative integer"));
  REQUIRE_THROWS_WITH(f.get_string("u8"), Contains("metadata u8 is a uint8, expected a string"));
  REQUIRE_THROWS_WITH(f.get_uint("absent"), Contains("metadata key absent is missing"));

  REQUIRE(f.tensors().size() == 2);
  const headlens::gguf_tensor_info& t = f.tensor("a");
  CHECK(t.dims == std::vector<std::uint64_t>{256, 2});
  CHECK(t.type == 8);
  CHECK(t.bytes == 2 * 8 * 34);
  CHECK(t.offset % 64 == 0);
  const headlens::matrix<float> m = f.read_matrix<float>("a");
  REQUIRE(m.rows() == 2);
  REQUIRE(m.cols() == 256);
  for (int i = 0; i < 512; ++i) CHECK(std::fabs(m(i / 256, i % 256) - a[std::size_t(i)]) <= 8.0f / 127 / 2 * 1.01f);
  CHECK(f.read_vector<double>("v") == headlens::vector<double>(Eigen::Vector3d(3, 4, 5)));
  REQUIRE_THROWS_WITH(f.tensor("b"), Contains("no tensor named b"));
  std::filesystem::remove(path);
}

TEST_CASE("malformed GGUF headers are format errors naming the byte offset", "[gguf]") {
  const bytes_t good = small_file();
  REQUIRE_NOTHROW(gguf_file::from_bytes(good, "good.gguf"));
  const std::size_t kv_start = 24;
  const std::size_t wt_info = find(good, std::string("\x02\0\0\0\0\0\0\0wt", 10));
  const std::size_t wt_dims = wt_info + 10;           // n_dims
  const std::size_t wt_type = wt_dims + 4 + 16;       // after two dims
  const std::size_t wt_offset = wt_type + 4;

  SECTION("truncated") {
    CHECK(error_offset(bytes_t(good.begin(), good.begin() + 10), "truncated: the tensor count needs 8 bytes") == 8);
    CHECK(error_offset(bytes_t(good.begin(), good.begin() + 2), "truncated: the magic") == 0);
    CHECK(error_offset(bytes_t(good.begin(), good.begin() + std::ptrdiff_t(wt_type + 2)),
                       "truncated: a tensor's type needs 4 bytes") == wt_type);
  }
  SECTION("bad magic and version") {
    bytes_t b = good;
    b[3] = 'X';
    CHECK(error_offset(b, "magic is \"GGUX\", expected \"GGUF\"") == 0);
    b = good;
    put_u32(b, 4, 2);  // version 2 has the same layout (64-bit counts and lengths)
    CHECK(gguf_file::from_bytes(b).version() == 2);
    put_u32(b, 4, 4);
    CHECK(error_offset(b, "version is 4, expected 2 or 3") == 4);
    put_u32(b, 4, 0x03000000);
    CHECK(error_offset(b, "(a big-endian file?)") == 4);
  }
  SECTION("counts past the file size, before any allocation") {
    bytes_t b = good;
    put_u64(b, 8, 1ull << 60);
    CHECK(error_offset(b, "the tensor count is 1152921504606846976, but the") == 8);
    b = good;
    put_u64(b, 16, 1ull << 40);
    CHECK(error_offset(b, "the metadata count is 1099511627776, but the") == 16);
    b = good;
    const std::size_t list = find(b, "test.list") + 9;  // type tag, element type, count
    put_u64(b, list + 8, 1ull << 50);
    CHECK(error_offset(b, "an array's element count is 1125899906842624, but the") == list + 8);
    b = good;
    put_u64(b, kv_start, 1ull << 62);  // the first key's length
    CHECK(error_offset(b, "a metadata key length is 4611686018427387904, past the end of the file") == kv_start);
  }
  SECTION("a tensor past the end of the file") {
    const bytes_t b(good.begin(), good.end() - 17);  // the last tensor's padding and its last byte
    CHECK(error_offset(b, "tensor nb (F32 [4], 16 bytes at data offset 256) runs past the end of the file") ==
          find(good, std::string("\x02\0\0\0\0\0\0\0nb", 10)));
    bytes_t c = good;
    put_u64(c, wt_offset, 1ull << 20);
    CHECK(error_offset(c, "tensor wt (F32 [32, 2], 256 bytes at data offset 1048576) runs past") == wt_info);
  }
  SECTION("bad alignment") {
    headlens::gguf_writer w;
    w.set("general.alignment", gguf_value::of_uint32(48));
    const bytes_t b = w.bytes();
    CHECK(error_offset(b, "general.alignment is 48, expected a power of two") == find(b, "general.alignment") + 21);
    headlens::gguf_writer w2;
    w2.set("general.alignment", gguf_value::of_uint64(64));
    CHECK(error_offset(w2.bytes(), "general.alignment is a uint64, expected a uint32") > 0);
    bytes_t c = good;
    put_u64(c, wt_offset, 8);
    CHECK(error_offset(c, "tensor wt offset 8 is not a multiple of the alignment 32") == wt_offset);
  }
  SECTION("unknown types") {
    bytes_t b = good;
    put_u32(b, wt_type, 99);
    CHECK(error_offset(b, "tensor wt has unknown ggml type 99") == wt_type);
    b = good;
    put_u32(b, wt_type, 4);  // a type ggml removed
    CHECK(error_offset(b, "tensor wt has unknown ggml type 4") == wt_type);
    b = good;
    const std::size_t tag = find(b, "test.count") + 10;
    put_u32(b, tag, 13);
    CHECK(error_offset(b, "a metadata value type is 13, expected a GGUF value type 0..12") == tag);
  }
  SECTION("dims") {
    bytes_t b = good;
    put_u32(b, wt_dims, 5);
    CHECK(error_offset(b, "tensor wt has 5 dimensions, expected 1 to 4") == wt_dims);
    b = good;
    put_u32(b, wt_type, 8);  // Q8_0 rows of 32: fine in size terms but 32 * 2 elements need 68 bytes
    CHECK_NOTHROW(gguf_file::from_bytes(b, "ok.gguf"));
    put_u64(b, wt_dims + 4, 16);
    CHECK(error_offset(b, "tensor wt has rows of 16 elements, expected a multiple of Q8_0's block size 32") == wt_dims);
    b = good;
    put_u64(b, wt_dims + 4, 1ull << 62);
    put_u64(b, wt_dims + 12, 4);
    CHECK(error_offset(b, "tensor wt dimension 1 is 4, the element count overflows") == wt_dims + 12);
  }
  SECTION("duplicates and nesting") {
    headlens::gguf_writer w;
    w.set("k", gguf_value::of_uint32(1));
    w.set("l", gguf_value::of_uint32(2));
    bytes_t d = w.bytes();
    d[find(d, std::string("\x01\0\0\0\0\0\0\0l", 9)) + 8] = 'k';
    CHECK(error_offset(d, "metadata key k appears twice") == find(d, std::string("\x01\0\0\0\0\0\0\0k", 9), 30));
    gguf_value deep = gguf_value::of_int32s({1});
    for (int i = 0; i < 9; ++i) {
      gguf_value outer;
      outer.type = gguf_type::array;
      outer.element_type = gguf_type::array;
      outer.array_items = {deep};
      deep = outer;
    }
    headlens::gguf_writer w2;
    w2.set("deep", deep);
    CHECK(error_offset(w2.bytes(), "arrays nested deeper than 8 levels") > 0);
  }
}

TEST_CASE("the GGUF Llama loader matches llama.cpp's logits", "[gguf][llama]") {
  // Hashes of the files tools/gguf_fixtures.mjs evaluated (printed by tools/make_gguf_fixtures.cpp).
  struct expected_file {
    const char* name;
    std::uint64_t hash;
  };
  const std::vector<expected_file> hashes = {
      {"F32", 0x75101cdce8288474ull},  {"F16", 0x8d587eff328285b4ull},  {"BF16", 0x67c58d1f1f89fd76ull},
      {"Q8_0", 0xf9da845b634b8968ull}, {"Q4_0", 0x2c8aa3346a31775dull}, {"Q4_K", 0x5620fa6e531e8094ull},
      {"Q6_K", 0xc54393e3efdb5151ull},
  };
  const std::vector<std::int32_t> ids = gguf_fixture::ids();
  const std::string data = std::string(HEADLENS_TEST_DATA_DIR) + "/gguf/";
  const headlens::matrix<double> f32_reference =
      headlens::read_npy_matrix<double>(data + "llama_F32.logprobs.npy", headlens::Index(ids.size()), 288);
  std::size_t i = 0;
  for (const auto& t : gguf_fixture::fixture_types()) {
    const bytes_t bytes = gguf_fixture::llama_bytes(t.type);
    INFO("fixture " << t.name);
    REQUIRE(gguf_fixture::fnv1a(bytes) == hashes[i++].hash);
    const std::string path = temp_path(std::string("llama_") + t.name + ".gguf");
    headlens::detail::write_file_bytes(path, bytes.data(), bytes.size());
    const gguf_file f(path);
    const auto model = headlens::load_gguf_llama<double>(f);
    const headlens::matrix<double> logits = model.forward(ids);
    const headlens::matrix<double> reference =
        headlens::read_npy_matrix<double>(data + "llama_" + t.name + ".logprobs.npy", headlens::Index(ids.size()), 288);
    double diff = 0, quantisation = 0, scale = 0;
    for (headlens::Index r = 0; r < logits.rows(); ++r) {
      const std::vector<double> ours = log_softmax_row(logits, r);
      for (headlens::Index c = 0; c < logits.cols(); ++c) {
        diff = std::max(diff, std::fabs(ours[std::size_t(c)] - reference(r, c)));
        quantisation = std::max(quantisation, std::fabs(ours[std::size_t(c)] - f32_reference(r, c)));
        scale = std::max(scale, std::fabs(reference(r, c)));
      }
    }
    INFO(t.name << ": max |log p - llama.cpp| = " << diff << ", against llama.cpp's F32 model " << quantisation
                << ", log-prob scale " << scale);
    CHECK(diff <= tolerance(t.name));
    // For the low-bit types the weights' own rounding moves the log-probs far more than the two runtimes differ:
    // a block decoded differently would show up as a difference of the size of `quantisation`.
    if (std::string(t.name) == "Q4_0" || std::string(t.name) == "Q4_K" || std::string(t.name) == "Q6_K") {
      CHECK(diff < 0.6 * quantisation);
    }
    std::filesystem::remove(path);
  }
}

TEST_CASE("the GGUF Llama loader in float matches llama.cpp's F32 logits", "[gguf][llama]") {
  const std::vector<std::int32_t> ids = gguf_fixture::ids();
  const std::string path = temp_path("llama_float.gguf");
  const bytes_t bytes = gguf_fixture::llama_bytes(ggml_type::f32);
  headlens::detail::write_file_bytes(path, bytes.data(), bytes.size());
  const auto model = headlens::load_gguf_llama<float>(path);
  const headlens::matrix<double> logits = model.forward(ids).cast<double>();
  const double diff = max_logprob_diff(logits, "llama_F32.logprobs.npy");
  INFO("float: max |log p - llama.cpp| = " << diff);
  CHECK(diff <= 1e-4);
  std::filesystem::remove(path);
}

TEST_CASE("load_attention_model runs a GGUF file with its own tokenizer or one given apart, as llama.cpp does",
          "[gguf][llama]") {
  const std::vector<std::int32_t> ids = gguf_fixture::ids();
  const std::string path = temp_path("llama_attention_model.gguf");
  const bytes_t bytes = gguf_fixture::llama_bytes(ggml_type::f32);
  headlens::detail::write_file_bytes(path, bytes.data(), bytes.size());
  const std::string words = std::string(HEADLENS_TEST_DATA_DIR) + "/models/words/vocab.json";
  // Its own tokenizer: the fixture's SentencePiece-style vocabulary, BOS first (tokenizer.ggml.add_bos_token).
  const auto own = headlens::load_attention_model(path);
  CHECK(own->description() == "Llama (2 layers x 4 heads, SentencePiece BPE)");
  const auto own_tokens = own->tokenize("hello");
  REQUIRE_FALSE(own_tokens.empty());
  CHECK(own_tokens.back().end == 5);
  headlens::attention_model_options options;
  options.tokenizer = words;
  const auto model = headlens::load_attention_model(path, options);
  CHECK(model->description() == "Llama (2 layers x 4 heads, word vocabulary)");
  CHECK(model->causal());
  CHECK(model->vocab_size() == 288);
  CHECK(headlens::token_ids(model->tokenize("the cat")) == std::vector<std::int32_t>{3, 4});  // no BOS of its own
  const headlens::matrix<double> logits = model->logits(ids).cast<double>();
  const double diff = max_logprob_diff(logits, "llama_F32.logprobs.npy");
  INFO("through load_attention_model: max |log p - llama.cpp| = " << diff);
  CHECK(diff <= 1e-4);
  const headlens::tensor<float> maps = model->attention(ids);
  CHECK(maps.shape == std::vector<headlens::Index>{2, 4, headlens::Index(ids.size()), headlens::Index(ids.size())});
  std::filesystem::remove(path);
}

TEST_CASE("a GGUF Qwen2 (Q, K, V biases, unpermuted rotary rows) matches llama.cpp's logits", "[gguf][llama]") {
  const std::vector<std::int32_t> ids = gguf_fixture::ids();
  const bytes_t bytes = gguf_fixture::llama_bytes(ggml_type::f32, "qwen2");
  REQUIRE(gguf_fixture::fnv1a(bytes) == 0x600c9353e0f96a07ull);  // the file tools/gguf_fixtures.mjs evaluated
  const gguf_file f = gguf_file::from_bytes(bytes, "qwen2_F32.gguf");
  const auto model = headlens::load_gguf_llama<double>(f);
  CHECK(model.blocks()[0].attention().config().bias);
  const headlens::matrix<double> logits = model.forward(ids);
  const double diff = max_logprob_diff(logits, "qwen2_F32.logprobs.npy");
  INFO("qwen2: max |log p - llama.cpp| = " << diff);
  CHECK(diff <= 1e-4);
}

TEST_CASE("our dequantisation equals ggml's own, bit for bit, on the fixture blocks", "[gguf]") {
  for (const char* type : {"F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"}) {
    INFO(type);
    const auto& types = gguf_fixture::fixture_types();
    const auto it = std::find_if(types.begin(), types.end(), [&](const auto& t) { return std::string(t.name) == type; });
    REQUIRE(it != types.end());
    const gguf_file f = gguf_file::from_bytes(gguf_fixture::llama_bytes(it->type));
    const headlens::matrix<float> ours = f.read_matrix<float>("blk.0.attn_q.weight");
    const headlens::matrix<float> ggml = headlens::read_npy_matrix<float>(
        std::string(HEADLENS_TEST_DATA_DIR) + "/gguf/ggml_" + type + "_attn_q_rows.npy", 4, 256);
    CHECK(ours.topRows(4) == ggml);
  }
}

}  // namespace test_gguf

namespace test_gguf {
namespace {

/// A tiny F32 Llama (d 32, 1 layer, 2 heads, 1 kv head, ff 32, vocab 8) for the loader's error paths; `edit`
/// changes it before it is written.
struct tiny_llama {
  std::string architecture = "llama";
  bool with_output = true;
  bool output_is_embedding = false;
  std::string drop_tensor;
  std::string drop_key;
  std::uint64_t q_rows = 32;
  std::string scaling = "none";
  bool rope_freqs = false;

  bytes_t bytes() const {
    headlens::gguf_writer w;
    auto set = [&](const std::string& key, gguf_value v) {
      if (key != drop_key) w.set(key, std::move(v));
    };
    set("general.architecture", gguf_value::of_string(architecture));
    set("llama.embedding_length", gguf_value::of_uint32(32));
    set("llama.block_count", gguf_value::of_uint32(1));
    set("llama.feed_forward_length", gguf_value::of_uint32(32));
    set("llama.attention.head_count", gguf_value::of_uint32(2));
    set("llama.attention.head_count_kv", gguf_value::of_uint32(1));
    set("llama.attention.layer_norm_rms_epsilon", gguf_value::of_float32(1e-5f));
    set("llama.rope.scaling.type", gguf_value::of_string(scaling));
    gguf_fixture::rng r{7};
    std::vector<float> embedding = gguf_fixture::random_values(r, 8 * 32, 1.0f);
    auto add = [&](const std::string& name, std::vector<std::uint64_t> dims, const std::vector<float>& v) {
      if (name != drop_tensor) w.add_tensor(name, ggml_type::f32, dims, v.data());
    };
    auto random = [&](const std::string& name, std::vector<std::uint64_t> dims) {
      std::uint64_t n = 1;
      for (std::uint64_t d : dims) n *= d;
      add(name, dims, gguf_fixture::random_values(r, n, 0.25f, dims.size() == 1 ? 1.0f : 0.0f));
    };
    add("token_embd.weight", {32, 8}, embedding);
    if (rope_freqs) add("rope_freqs.weight", {8}, std::vector<float>(8, 1.0f));
    random("blk.0.attn_norm.weight", {32});
    random("blk.0.attn_q.weight", {32, q_rows});
    random("blk.0.attn_k.weight", {32, 16});
    random("blk.0.attn_v.weight", {32, 16});
    random("blk.0.attn_output.weight", {32, 32});
    random("blk.0.ffn_norm.weight", {32});
    random("blk.0.ffn_gate.weight", {32, 32});
    random("blk.0.ffn_up.weight", {32, 32});
    random("blk.0.ffn_down.weight", {32, 32});
    random("output_norm.weight", {32});
    if (output_is_embedding) {
      add("output.weight", {32, 8}, embedding);
    } else if (with_output) {
      random("output.weight", {32, 8});
    }
    return w.bytes();
  }
};

}  // namespace

TEST_CASE("the GGUF Llama loader names the key or tensor at fault", "[gguf][llama]") {
  auto load = [](const tiny_llama& t) {
    return headlens::load_gguf_llama<double>(gguf_file::from_bytes(t.bytes(), "tiny.gguf"));
  };
  tiny_llama t;
  REQUIRE_NOTHROW(load(t));
  t.architecture = "gpt2";
  REQUIRE_THROWS_WITH(load(t), Contains("tiny.gguf at byte") &&
                                   Contains("metadata general.architecture is \"gpt2\", expected \"llama\" or \"qwen2\""));
  t = tiny_llama();
  t.drop_key = "llama.block_count";
  REQUIRE_THROWS_WITH(load(t), Contains("metadata key llama.block_count is missing"));
  t = tiny_llama();
  t.scaling = "yarn";
  REQUIRE_THROWS_WITH(load(t), Contains("metadata llama.rope.scaling.type is \"yarn\", expected \"none\""));
  t = tiny_llama();
  t.rope_freqs = true;
  REQUIRE_THROWS_WITH(load(t), Contains("tensor rope_freqs.weight (rotary frequency factors, Llama 3.1-style rope "
                                        "scaling) is present, expected none"));
  t = tiny_llama();
  t.drop_tensor = "blk.0.ffn_up.weight";
  REQUIRE_THROWS_WITH(load(t), Contains("no tensor named blk.0.ffn_up.weight"));
  t = tiny_llama();
  t.q_rows = 16;
  REQUIRE_THROWS_WITH(load(t), Contains("tensor blk.0.attn_q.weight has dims [32, 16], expected [32, 32]"));
}

TEST_CASE("a GGUF Llama without output.weight ties its head to the token embedding", "[gguf][llama]") {
  tiny_llama tied, explicit_head;
  tied.with_output = false;
  explicit_head.output_is_embedding = true;
  const auto a = headlens::load_gguf_llama<double>(gguf_file::from_bytes(tied.bytes()));
  const auto b = headlens::load_gguf_llama<double>(gguf_file::from_bytes(explicit_head.bytes()));
  CHECK(a.vocab_size() == 8);
  const std::vector<std::int32_t> ids = {1, 5, 0, 7, 3};
  const headlens::matrix<double> la = a.forward(ids), lb = b.forward(ids);
  CHECK((la - lb).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(la.cwiseAbs().maxCoeff() > 0.1);
}

}  // namespace test_gguf
