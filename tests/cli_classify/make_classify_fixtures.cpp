// Writes the inputs of the `headlens classify-maps` CTest tests into a directory, from the CC-BY GUM fixture:
//   plain.conllu            the fixture with every MISC column emptied (no Entity=, no Discourse=): a CoNLL-U file
//                           with dependencies only
//   maps_0.npy, maps_1.npy  planted maps [2, 4, W, W] over the fixture's two documents (float32, float64), heads:
//                           layer 0: dep->head, offset -1, coreference, sink
//                           layer 1: discourse unit, offset +1, uniform, dep<->head
//   bad_rank.npy            [4, W, W]
//   bad_words.npy           [2, 4, W-1, W-1] for document 0
//   bad_dtype.npy           int32 [2, 4, W, W]
//   bad_rows.npy            document 0's maps with row 5 of layer 1, head 2 doubled (sums to 2)
//   bad_heads.npy           [1, 4, W, W] for document 1
//   expected_labels.txt     the label each planted head must get from the annotated policy, layer-major
//   dev_doc.conllu, dev_maps.npy   only with a GUM dev path that exists: its first document alone, and planted maps
//                           over it (float32, the same eight heads)
//
//   make_classify_fixtures <fixture.conllu> <out dir> [<GUM dev .conllu>]   (the directory is created when missing)
// The headlens headers come first: <filesystem> brings std::quoted, which unqualified calls to
// headlens::detail::quoted in the CoNLL-U headers would otherwise find by argument-dependent lookup.
#include "headlens/analysis/conllu.hpp"
#include "headlens/io/npy.hpp"
#include "support/planted_heads.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using headlens_test::head_kind;

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::cerr << "usage: make_classify_fixtures <fixture.conllu> <out dir> [<GUM dev .conllu>]\n";
    return 2;
  }
  const std::string fixture = argv[1];
  const std::string dir = argv[2];
  try {
    std::filesystem::create_directories(dir);
    // plain.conllu: MISC emptied on every word line.
    {
      std::ifstream in(fixture);
      std::ofstream out(dir + "/plain.conllu");
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty() && line[0] != '#') {
          std::vector<std::string> fields;
          std::stringstream cols(line);
          for (std::string f; std::getline(cols, f, '\t');) fields.push_back(f);
          if (fields.size() == 10) {
            fields[9] = "_";
            line.clear();
            for (std::size_t i = 0; i < fields.size(); ++i) line += (i ? "\t" : "") + fields[i];
          }
        }
        out << line << '\n';
      }
      if (!out) throw std::runtime_error("cannot write plain.conllu");
    }

    const head_kind kinds[2][4] = {
        {head_kind::dep_to_head, head_kind::previous_word, head_kind::coreference, head_kind::sink},
        {head_kind::discourse_unit, head_kind::next_word, head_kind::uniform, head_kind::dependency_both}};
    {
      std::ofstream labels(dir + "/expected_labels.txt");
      for (const auto& layer : kinds) {
        for (head_kind k : layer) labels << headlens::to_string(headlens_test::expected_label(k)) << '\n';
      }
    }

    std::mt19937_64 rng(5);
    auto planted_maps = [&](const headlens::document& doc) {
      const headlens_test::planted_document planted(doc);
      const auto w = static_cast<headlens::Index>(doc.words.size());
      std::vector<double> maps(static_cast<std::size_t>(2 * 4 * w * w));
      for (int l = 0; l < 2; ++l) {
        for (int h = 0; h < 4; ++h) {
          headlens_test::planted_head head;
          head.kind = kinds[l][h];
          head.noise = 0.2;
          const headlens_test::planted_map m = planted.make(head, 0, w, rng);
          std::copy(m.data(), m.data() + w * w, maps.begin() + (l * 4 + h) * w * w);
        }
      }
      return maps;
    };

    if (argc == 4 && std::ifstream(argv[3]).good()) {
      // The first document of the dev split, alone: its lines up to the second `# newdoc`.
      std::ifstream in(argv[3]);
      std::ofstream out(dir + "/dev_doc.conllu");
      int newdocs = 0;
      for (std::string line; std::getline(in, line);) {
        if (line.rfind("# newdoc", 0) == 0 && ++newdocs == 2) break;
        out << line << '\n';
      }
      out.close();
      const std::vector<headlens::document> dev = headlens::read_conllu(dir + "/dev_doc.conllu");
      const std::vector<double> maps = planted_maps(dev.at(0));
      const std::vector<float> f(maps.begin(), maps.end());
      const auto w = static_cast<headlens::Index>(dev[0].words.size());
      headlens::write_npy(dir + "/dev_maps.npy", f.data(), {2, 4, w, w});
    }

    const std::vector<headlens::document> docs = headlens::read_conllu(fixture);
    for (std::size_t d = 0; d < docs.size(); ++d) {
      const auto w = static_cast<headlens::Index>(docs[d].words.size());
      const std::vector<double> maps = planted_maps(docs[d]);
      const std::string name = dir + "/maps_" + std::to_string(d) + ".npy";
      if (d == 0) {
        std::vector<float> f(maps.begin(), maps.end());
        headlens::write_npy(name, f.data(), {2, 4, w, w});
        // Row 5 of layer 1, head 2 doubled.
        std::vector<float> bad = f;
        float* row = bad.data() + ((1 * 4 + 2) * w + 5) * w;
        for (headlens::Index j = 0; j < w; ++j) row[j] *= 2;
        headlens::write_npy(dir + "/bad_rows.npy", bad.data(), {2, 4, w, w});
        headlens::write_npy(dir + "/bad_rank.npy", f.data(), {8, w, w});
        std::vector<float> small(static_cast<std::size_t>(2 * 4 * (w - 1) * (w - 1)), 0.0f);
        headlens::write_npy(dir + "/bad_words.npy", small.data(), {2, 4, w - 1, w - 1});
        std::vector<std::int32_t> ints(maps.size(), 0);
        headlens::write_npy(dir + "/bad_dtype.npy", ints.data(), {2, 4, w, w});
      } else {
        headlens::write_npy(name, maps.data(), {2, 4, w, w});
        headlens::write_npy(dir + "/bad_heads.npy", maps.data(), {1, 4, w, w});
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "make_classify_fixtures: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
