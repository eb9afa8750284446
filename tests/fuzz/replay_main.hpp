#pragma once
// The main of a fuzz harness built without libFuzzer (CMake defines HEADLENS_FUZZ_REPLAY then): replays files, or
// every regular file below directories, through LLVMFuzzerTestOneInput in sorted order, so a corpus runs as an
// ordinary test under any compiler and the sanitizers. Exit status 0 when all pass; no argument does nothing.
// Included at the end of each tests/fuzz/fuzz_<name>.cpp, after its LLVMFuzzerTestOneInput.

#ifdef HEADLENS_FUZZ_REPLAY
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const std::string harness = argc > 0 ? fs::path(argv[0]).filename().string() : "fuzz";
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    if (fs::is_directory(arg)) {
      for (const auto& entry : fs::recursive_directory_iterator(arg)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else {
      files.push_back(arg);
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::cerr << harness << ": cannot open " << file << "\n";
      return 1;
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  std::cout << harness << ": replayed " << files.size() << " inputs\n";
  return 0;
}
#endif
