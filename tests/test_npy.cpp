// NumPy .npy reading and writing: fixtures written by numpy itself (tools/make_io_fixtures.py), round trips,
// and hand-built malformed buffers, each checked for its message and byte offset.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "headlens/io/npy.hpp"

namespace test_npy {

using Catch::Contains;
using headlens::dtype;
using headlens::format_error;

namespace {

std::string fixture(const std::string& name) { return std::string(HEADLENS_TEST_DATA_DIR) + "/io/" + name; }

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("headlens_test_npy_" + name)).string();
}

/// A .npy file from its parts: version, header text (padded as given) and data bytes. `length` overrides the
/// header length field when not -1.
std::vector<unsigned char> npy_raw(unsigned major, const std::string& header, std::size_t data_bytes = 0,
                                   long long length = -1) {
  std::vector<unsigned char> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(major), 0};
  const std::uint64_t n = length >= 0 ? static_cast<std::uint64_t>(length) : header.size();
  const std::size_t width = major == 1 ? 2 : 4;
  for (std::size_t i = 0; i < width; ++i) out.push_back(static_cast<unsigned char>((n >> (8 * i)) & 0xFF));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

std::string dict(const std::string& descr, const std::string& fortran, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n";
}

headlens::npy_array parse(const std::vector<unsigned char>& bytes) {
  return headlens::read_npy_from_memory(bytes.data(), bytes.size(), "bad.npy");
}

/// The format_error thrown by parsing `bytes` (fails the test when nothing is thrown).
format_error parse_error(const std::vector<unsigned char>& bytes) {
  try {
    parse(bytes);
  } catch (const format_error& e) {
    return e;
  }
  FAIL("no format_error thrown");
  throw std::logic_error("unreachable");
}

std::vector<unsigned char> file_bytes(const std::string& path) {
  std::vector<unsigned char> out;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  int c;
  while ((c = std::fgetc(f)) != EOF) out.push_back(static_cast<unsigned char>(c));
  std::fclose(f);
  return out;
}

}  // namespace

TEST_CASE("npy: float32 matrix written by numpy", "[npy]") {
  const auto a = headlens::read_npy(fixture("f4_2x3.npy"));
  CHECK(a.type == dtype::float32);
  CHECK(a.shape == std::vector<headlens::Index>{2, 3});
  CHECK(a.size() == 6);
  CHECK(a.source == fixture("f4_2x3.npy"));

  const headlens::matrix<float> m = headlens::as_matrix<float>(a, 2, 3);
  CHECK(m(0, 0) == 0.5f);
  CHECK(m(0, 1) == -1.25f);
  CHECK(m(0, 2) == 3.0f);
  CHECK(m(1, 0) == 0.001f);
  CHECK(m(1, 1) == 65504.0f);
  CHECK(m(1, 2) == 0.0f);
  CHECK(std::signbit(m(1, 2)));

  // float32 -> float64 is exact: the double holds the float's value, not 0.001.
  const headlens::matrix<double> d = headlens::as_matrix<double>(a);
  CHECK(d(1, 0) == static_cast<double>(0.001f));
  CHECK(d(1, 0) != 0.001);
  CHECK(headlens::read_npy_matrix<double>(fixture("f4_2x3.npy"), 2, -1) == d);
}

TEST_CASE("npy: big-endian float64 is byte-swapped", "[npy]") {
  const auto a = headlens::read_npy(fixture("f8_be_3.npy"));
  CHECK(a.type == dtype::float64);
  const headlens::vector<double> v = headlens::as_vector<double>(a, 3);
  CHECK(v(0) == 1.5);
  CHECK(v(1) == -2.0);
  CHECK(v(2) == 1e300);
  // Narrowing to float follows C++ conversion: out of range becomes infinity.
  CHECK(std::isinf(headlens::as_vector<float>(a)(2)));
}

TEST_CASE("npy: integers, bools and float16", "[npy]") {
  const auto i8 = headlens::read_npy(fixture("i8_4.npy"));
  CHECK(i8.type == dtype::int64);
  CHECK(headlens::as_tensor<std::int64_t>(i8).data == std::vector<std::int64_t>{-1, 0, std::int64_t(1) << 40, 7});
  CHECK(headlens::as_tensor<double>(i8).data == std::vector<double>{-1.0, 0.0, 1099511627776.0, 7.0});
  REQUIRE_THROWS_WITH(headlens::as_tensor<std::int32_t>(i8),
                      Contains("element 2 (1099511627776) does not fit the requested integer type"));
  REQUIRE_THROWS_WITH(headlens::as_tensor<std::uint8_t>(i8), Contains("element 0 (-1) does not fit"));

  const auto i4 = headlens::read_npy(fixture("i4_2x2.npy"));
  const headlens::matrix<int> m = headlens::as_matrix<int>(i4, 2, 2);
  CHECK(m(0, 0) == 1);
  CHECK(m(0, 1) == -2);
  CHECK(m(1, 0) == 3);
  CHECK(m(1, 1) == -4);

  const auto b1 = headlens::read_npy(fixture("b1_3.npy"));
  CHECK(b1.type == dtype::bool8);
  CHECK(headlens::as_tensor<bool>(b1).data == std::vector<bool>{true, false, true});
  CHECK(headlens::as_vector<float>(b1) == Eigen::Vector3f(1, 0, 1));

  const auto f2 = headlens::read_npy(fixture("f2_4.npy"));
  CHECK(f2.type == dtype::float16);
  CHECK(headlens::as_tensor<float>(f2).data == std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)});

  REQUIRE_THROWS_AS(headlens::as_tensor<int>(f2), headlens::argument_error);
  REQUIRE_THROWS_WITH(headlens::as_tensor<int>(f2), Contains("cannot read float16 data as the requested scalar type"));
  REQUIRE_THROWS_WITH(headlens::as_tensor<bool>(i8), Contains("cannot read int64 data"));
}

TEST_CASE("npy: 0-d, 4-d and format versions 2.0 and 3.0", "[npy]") {
  const auto s = headlens::read_npy(fixture("scalar_f8.npy"));
  CHECK(s.shape.empty());
  CHECK(s.size() == 1);
  CHECK(headlens::as_tensor<double>(s).data == std::vector<double>{3.25});
  REQUIRE_THROWS_AS(headlens::as_matrix<double>(s), headlens::shape_error);
  REQUIRE_THROWS_WITH(headlens::as_matrix<double>(s), Contains("has shape [], expected [rows, cols]"));

  const auto maps = headlens::read_npy(fixture("maps_2x3x4x4.npy"));
  REQUIRE(maps.shape == std::vector<headlens::Index>{2, 3, 4, 4});
  const auto t = headlens::as_tensor<float>(maps);
  std::size_t k = 0;
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 3; ++h)
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) CHECK(t.data[k++] == static_cast<float>(1000 * l + 100 * h + 10 * i + j));

  const auto v2 = headlens::read_npy(fixture("v2_f4_2x2.npy"));
  CHECK(headlens::as_matrix<float>(v2, 2, 2) == (Eigen::Matrix2f() << 1, 2, 3, 4).finished());
  const auto v3 = headlens::read_npy(fixture("v3_f8_3.npy"));
  CHECK(headlens::as_vector<double>(v3) == Eigen::Vector3d(-1, 0, 1));
}

TEST_CASE("npy: shape mismatch on conversion names expected and actual", "[npy]") {
  const auto a = headlens::read_npy(fixture("f4_2x3.npy"));
  REQUIRE_THROWS_AS(headlens::as_matrix<float>(a, 3, 2), headlens::shape_error);
  REQUIRE_THROWS_WITH(headlens::as_matrix<float>(a, 3, 2), Contains("f4_2x3.npy has shape [2, 3], expected [3, 2]"));
  REQUIRE_THROWS_WITH(headlens::as_matrix<float>(a, -1, 4), Contains("has shape [2, 3], expected [rows, 4]"));
  REQUIRE_THROWS_WITH(headlens::as_vector<float>(a), Contains("has shape [2, 3], expected [n]"));
  const auto v = headlens::read_npy(fixture("v3_f8_3.npy"));
  REQUIRE_THROWS_WITH(headlens::as_vector<float>(v, 4), Contains("has shape [3], expected [4]"));
  REQUIRE_THROWS_WITH(headlens::as_matrix<float>(v), Contains("has shape [3], expected [rows, cols]"));
}

TEST_CASE("npy: our writer produces numpy's bytes exactly", "[npy]") {
  const float f4[] = {0.5f, -1.25f, 3.0f, 0.001f, 65504.0f, -0.0f};
  CHECK(headlens::npy_bytes(f4, {2, 3}) == file_bytes(fixture("f4_2x3.npy")));
  const std::int64_t i8[] = {-1, 0, std::int64_t(1) << 40, 7};
  CHECK(headlens::npy_bytes(i8, {4}) == file_bytes(fixture("i8_4.npy")));
  const bool b1[] = {true, false, true};
  CHECK(headlens::npy_bytes(b1, {3}) == file_bytes(fixture("b1_3.npy")));
  const double scalar = 3.25;
  CHECK(headlens::npy_bytes(&scalar, {}) == file_bytes(fixture("scalar_f8.npy")));
  std::vector<float> maps;
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 3; ++h)
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) maps.push_back(static_cast<float>(1000 * l + 100 * h + 10 * i + j));
  CHECK(headlens::npy_bytes(maps.data(), {2, 3, 4, 4}) == file_bytes(fixture("maps_2x3x4x4.npy")));
}

TEMPLATE_TEST_CASE("npy: round trip through a file", "[npy]", float, double) {
  const headlens::Index rows = GENERATE(1, 3, 17);
  const headlens::Index cols = GENERATE(1, 5, 33);
  headlens::matrix<TestType> m(rows, cols);
  for (headlens::Index i = 0; i < rows; ++i)
    for (headlens::Index j = 0; j < cols; ++j) m(i, j) = static_cast<TestType>(i * 1000 + j) / TestType(7);
  const std::string path = temp_path("roundtrip.npy");
  headlens::write_npy(path, m);
  const auto a = headlens::read_npy(path);
  CHECK(a.type == headlens::dtype_of<TestType>::value);
  CHECK(headlens::as_matrix<TestType>(a, rows, cols) == m);

  // A column-major matrix is written in C order all the same.
  const Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic> col_major = m;
  headlens::write_npy(path, col_major);
  CHECK(headlens::read_npy_matrix<TestType>(path) == m);

  // Compile-time vectors become 1-d arrays.
  const headlens::vector<TestType> v = m.col(0);
  headlens::write_npy(path, v);
  const auto va = headlens::read_npy(path);
  CHECK(va.shape == std::vector<headlens::Index>{rows});
  CHECK(headlens::as_vector<TestType>(va) == v);

  // N-d from a tensor, including an empty extent.
  headlens::tensor<TestType> t;
  t.shape = {2, 0, 3};
  headlens::write_npy(path, t);
  const auto ta = headlens::read_npy(path);
  CHECK(ta.shape == std::vector<headlens::Index>{2, 0, 3});
  CHECK(ta.size() == 0);
  CHECK(headlens::as_tensor<TestType>(ta).data.empty());
  std::remove(path.c_str());
}

TEST_CASE("npy: headers past 64 KiB are written as version 2.0", "[npy]") {
  const std::vector<headlens::Index> shape(10000, 1);  // "1, " x 10000: a 30 KB dict
  const float one = 1.0f;
  const auto small = headlens::npy_bytes(&one, shape);
  CHECK(small[6] == 1);
  const std::vector<headlens::Index> long_shape(25000, 1);
  const auto big = headlens::npy_bytes(&one, long_shape);
  CHECK(big[6] == 2);
  CHECK((big.size() - 4) % 64 == 0);
  const auto a = headlens::read_npy_from_memory(big.data(), big.size());
  CHECK(a.shape == long_shape);
  CHECK(headlens::as_tensor<float>(a).data == std::vector<float>{1.0f});
}

TEST_CASE("npy: malformed preamble", "[npy]") {
  SECTION("empty") {
    const auto e = parse_error({});
    CHECK(e.byte_offset() == 0);
    CHECK_THAT(e.what(), Contains("bad.npy at byte 0: truncated file: 0 bytes"));
  }
  SECTION("bad magic") {
    auto bytes = npy_raw(1, dict("<f4", "False", "(1,)"), 4);
    bytes[5] = 'X';
    REQUIRE_THROWS_WITH(parse(bytes), Contains("bad.npy at byte 5: not a .npy file: bad magic string"));
  }
  SECTION("unsupported version") {
    const auto bytes = npy_raw(4, dict("<f4", "False", "(1,)"), 4);
    REQUIRE_THROWS_WITH(parse(bytes),
                        Contains("at byte 6: unsupported .npy format version 4.0 (supported: 1.0, 2.0, 3.0)"));
  }
  SECTION("truncated before the header length") {
    auto bytes = npy_raw(1, "");
    bytes.resize(9);
    REQUIRE_THROWS_WITH(parse(bytes), Contains("at byte 9: truncated file: the header length is missing"));
    bytes.resize(7);
    REQUIRE_THROWS_WITH(parse(bytes), Contains("at byte 7: truncated file: the format version is missing"));
  }
  SECTION("header length past the end") {
    const auto bytes = npy_raw(1, dict("<f4", "False", "(1,)"), 0, 500);
    const auto e = parse_error(bytes);
    CHECK(e.byte_offset() == 8);
    CHECK_THAT(e.what(), Contains("header length 500 runs past the end of the file (" +
                                  std::to_string(bytes.size()) + " bytes, header starts at byte 10)"));
    const auto v2 = npy_raw(2, dict("<f4", "False", "(1,)"), 0, 0x10000);
    REQUIRE_THROWS_WITH(parse(v2), Contains("header length 65536 runs past the end"));
  }
}

TEST_CASE("npy: malformed header dict", "[npy]") {
  struct bad_case {
    std::string header;
    std::string message;
    std::size_t offset;  // within the header text; the file offset is 10 more
  };
  const std::vector<bad_case> cases = {
      {"['descr']\n", "the header does not start with a dict '{'", 0},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}\n", "expected ',' or '}' in the header dict", 16},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "expected ',' or '}' in the header dict, found the end", 54},
      {"{'descr: '<f4', 'fortran_order': False, 'shape': (1,)}\n", "expected ':' after key 'descr: '", 10},
      {"{'descr': '<f4\n', 'fortran_order': False, 'shape': (1,)}\n", "unterminated string", 10},
      {"{descr: '<f4'}\n", "expected a quoted key", 1},
      {"{'descr': '<f4', 'fortran_order': Flase, 'shape': (1,)}\n", "expected a string, True, False, an integer or a tuple", 34},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}\n", "expected an integer, found a float", 51},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x\n", "unexpected text after the header dict", 56},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}\n", "expected ',' or ')'", 53},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}\n", "negative extent -3 in shape", 51},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': 6}\n", "shape must be a tuple of integers", 50},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': ('a',)}\n", "shape must be a tuple of integers", 51},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}\n", "fortran_order must be True or False", 34},
      {"{'descr': '<f4', 'fortran_order': False}\n", "missing key 'shape'", 0},
      {"{'descr': '<f4', 'shape': (1,)}\n", "missing key 'fortran_order'", 0},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}\n",
       "unexpected key 'extra' (expected descr, fortran_order, shape)", 65},
      {"{'descr': '<f4', 'descr': '<f4'}\n", "duplicate key 'descr'", 17},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}\n", "integer out of range", 51},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904)}\n",
       "shape [4611686018427387904, 4611686018427387904] has more elements than fit 64 bits", 50},
  };
  for (const auto& c : cases) {
    INFO(c.header);
    const auto e = parse_error(npy_raw(1, c.header, 4));
    CHECK_THAT(e.what(), Contains("bad.npy at byte ") && Contains("invalid .npy header: " + c.message));
    CHECK(e.byte_offset() == 10 + c.offset);
    CHECK(e.file() == "bad.npy");
  }
}

TEST_CASE("npy: unsupported dtypes and Fortran order", "[npy]") {
  REQUIRE_THROWS_AS(headlens::read_npy(fixture("fortran_2x3.npy")), format_error);
  REQUIRE_THROWS_WITH(headlens::read_npy(fixture("fortran_2x3.npy")),
                      Contains("fortran_2x3.npy at byte ") && Contains("fortran_order is True; only C-order arrays"));
  REQUIRE_THROWS_WITH(headlens::read_npy(fixture("c8_2.npy")),
                      Contains("c8_2.npy at byte 20: unsupported dtype '<c8' (supported: bool |b1"));
  REQUIRE_THROWS_WITH(headlens::read_npy(fixture("structured_2.npy")),
                      Contains("unsupported dtype: structured arrays are not supported"));
  for (const char* descr : {"<f3", "|f4", "<U5", "<f16", "O", "<M8"}) {
    INFO(descr);
    const auto e = parse_error(npy_raw(1, dict(descr, "False", "(1,)"), 4));
    CHECK_THAT(e.what(), Contains(std::string("unsupported dtype '") + descr + "'"));
    CHECK(e.byte_offset() == 10 + 10);
  }
  // One-byte types may be written with any byte-order mark.
  CHECK(parse(npy_raw(1, dict("<u1", "False", "(4,)"), 4)).type == dtype::uint8);
  // Python 2 wrote shapes as longs.
  CHECK(parse(npy_raw(1, dict("<f4", "False", "(2L, 3L)"), 24)).shape == std::vector<headlens::Index>{2, 3});
}

TEST_CASE("npy: data size must match the shape", "[npy]") {
  const std::string header = dict("<f4", "False", "(2, 3)");
  const std::size_t data_begin = 10 + header.size();
  SECTION("truncated") {
    const auto bytes = npy_raw(1, header, 20);
    const auto e = parse_error(bytes);
    CHECK(e.byte_offset() == bytes.size());
    CHECK_THAT(e.what(), Contains("truncated data: shape [2, 3] needs 6 elements of float32 (4 bytes each), "
                                  "the file has 20 bytes after the header"));
  }
  SECTION("trailing bytes") {
    const auto e = parse_error(npy_raw(1, header, 28));
    CHECK(e.byte_offset() == data_begin + 24);
    CHECK_THAT(e.what(), Contains("4 bytes after the data of shape [2, 3] of float32 (24 bytes expected"));
  }
  SECTION("exact") { CHECK(parse(npy_raw(1, header, 24)).bytes.size() == 24); }
}

TEST_CASE("npy: file errors are io_error", "[npy]") {
  REQUIRE_THROWS_AS(headlens::read_npy(fixture("does_not_exist.npy")), headlens::io_error);
  REQUIRE_THROWS_WITH(headlens::read_npy(fixture("does_not_exist.npy")),
                      Contains("cannot open ") && Contains("does_not_exist.npy for reading"));
  const float x = 1.0f;
  REQUIRE_THROWS_AS(headlens::write_npy("/nonexistent-dir/x.npy", &x, {1}), headlens::io_error);
  headlens::tensor<float> t;
  t.shape = {2, 2};
  t.data = {1, 2, 3};
  REQUIRE_THROWS_WITH(headlens::write_npy(temp_path("bad.npy"), t),
                      Contains("tensor has 3 values, expected product of shape [2, 2]"));
  REQUIRE_THROWS_AS(headlens::npy_bytes(&x, {-1}), headlens::shape_error);
}

TEST_CASE("npy: corrupted files fail with format_error, never worse", "[npy][fuzz]") {
  // Deterministic mutations of a valid file; each must parse or throw format_error (and, under the sanitizers,
  // never read out of bounds).
  const float values[] = {1, 2, 3, 4, 5, 6};
  const std::vector<unsigned char> original = headlens::npy_bytes(values, {2, 3});
  std::uint32_t state = 54321;
  auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  int parsed = 0, rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<unsigned char> bytes = original;
    const int edits = 1 + static_cast<int>(next() % 2);
    for (int k = 0; k < edits; ++k) {
      const std::size_t at = next() % 80;  // mostly the preamble and the dict
      bytes[at] = static_cast<unsigned char>(next() & 0xFF);
    }
    if (next() % 4 == 0) bytes.resize(next() % bytes.size());
    try {
      const auto a = parse(bytes);
      if (headlens::detail::can_convert<double>(a.type)) (void)headlens::as_tensor<double>(a);
      ++parsed;
    } catch (const format_error&) {
      ++rejected;
    }
  }
  CHECK(parsed > 0);
  CHECK(rejected > 0);
}

TEST_CASE("npy: bool and integer tensors round trip", "[npy]") {
  const std::string path = temp_path("bool.npy");
  headlens::tensor<bool> flags{{2, 2}, {true, false, false, true}};
  headlens::write_npy(path, flags);
  const auto a = headlens::read_npy(path);
  CHECK(a.type == dtype::bool8);
  CHECK(headlens::as_tensor<bool>(a).data == flags.data);
  const headlens::matrix<std::int16_t> m = (headlens::matrix<std::int16_t>(2, 2) << -300, 2, 3, 32767).finished();
  headlens::write_npy(path, m);
  const auto b = headlens::read_npy(path);
  CHECK(b.type == dtype::int16);
  CHECK(headlens::as_matrix<std::int16_t>(b) == m);
  CHECK(headlens::as_matrix<std::int64_t>(b) == m.cast<std::int64_t>());
  REQUIRE_THROWS_WITH(headlens::as_matrix<std::uint16_t>(b), Contains("element 0 (-300) does not fit"));
  std::remove(path.c_str());
}

}  // namespace test_npy
