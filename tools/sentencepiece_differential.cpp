// Differential check of headlens::sentencepiece_model against the SentencePiece C++ library itself
// (libsentencepiece-dev 0.1.97): random strings — any bytes (malformed UTF-8 included), whitespace, Latin,
// combining marks, CJK, fullwidth, emoji, ligatures and the models' own pieces (<s>, <0x41>, U+2581, ...) — encoded by
// both, ids and byte spans compared. Not part of the test suite (it links the library); run by hand:
//
//   g++ -std=c++17 -O2 -Iinclude tools/sentencepiece_differential.cpp -o /tmp/spm_diff -lsentencepiece
//   /tmp/spm_diff tests/data/sentencepiece 20000 unigram_nfkc bpe_nfkc_bytes ...   # model names without .model
//
// Last run: the nine fixture models, 20,000 strings each, 0 of 180,000 differ.
#include <sentencepiece_processor.h>
#include <headlens/detail/utf8.hpp>
#include <headlens/text/sentencepiece_model.hpp>
#include <iostream>
#include <random>
static void put(std::string& s, char32_t c) { headlens::detail::append_utf8(s, c); }
int main(int argc, char** argv) {
  std::string dir = argv[1];
  int n = std::atoi(argv[2]);
  std::mt19937 rng(12345);
  long total = 0, bad = 0;
  for (int a = 3; a < argc; ++a) {
    std::string name = argv[a];
    auto m = headlens::sentencepiece_model::from_file(dir + "/" + name + ".model");
    sentencepiece::SentencePieceProcessor sp;
    if (!sp.Load(dir + "/" + name + ".model").ok()) {
      std::cerr << "load fail\n";
      return 1;
    }
    long mb = 0;
    for (int i = 0; i < n; ++i) {
      std::string s;
      int len = rng() % 30;
      for (int k = 0; k < len; ++k) {
        switch (rng() % 10) {
          case 0:
            s += char(rng() % 256);
            break;  // any byte, often invalid UTF-8
          case 1:
            s += " \t\n\r"[rng() % 4];
            break;
          case 2:
            put(s, 0x20 + rng() % 0x60);
            break;
          case 3:
            put(s, 0xA0 + rng() % 0x500);
            break;  // Latin, combining, Greek, Cyrillic
          case 4:
            put(s, 0x3000 + rng() % 0x7000);
            break;  // CJK
          case 5:
            put(s, 0xFF00 + rng() % 0xF0);
            break;  // fullwidth
          case 6:
            put(s, 0x1F300 + rng() % 0x400);
            break;  // emoji
          case 7: {
            auto id = rng() % m.size();
            s += m.piece(id);
            break;
          }  // a piece, maybe <s>, <0x41>, ▁
          case 8:
            put(s, 0x2000 + rng() % 0x100);
            break;  // general punctuation, spaces
          default:
            put(s, 0xFB00 + rng() % 0x500);
            break;  // ligatures, presentation forms
        }
      }
      auto got = m.encode(s);
      auto ref = sp.EncodeAsImmutableProto(s);
      bool same = got.size() == (size_t)ref.pieces_size();
      for (size_t k = 0; same && k < got.size(); ++k)
        same = got[k].id == (int)ref.pieces(k).id() && got[k].begin == ref.pieces(k).begin() &&
               got[k].end == ref.pieces(k).end();
      ++total;
      if (!same) {
        ++bad;
        ++mb;
        if (mb <= 3) {
          std::cout << name << " mismatch on:";
          for (unsigned char c : s) std::cout << " " << std::hex << int(c) << std::dec;
          std::cout << "\n  lib:";
          for (size_t k = 0; k < (size_t)ref.pieces_size(); ++k)
            std::cout << " " << ref.pieces(k).id() << "[" << ref.pieces(k).begin() << "," << ref.pieces(k).end() << ")";
          std::cout << "\n  us: ";
          for (auto& t : got) std::cout << " " << t.id << "[" << t.begin << "," << t.end << ")";
          std::cout << "\n";
        }
      }
    }
    std::cout << name << ": " << mb << " of " << n << " differ\n";
  }
  std::cout << "total " << bad << " of " << total << "\n";
}
