#pragma once
// A benchmark main that also prints ratios to baselines measured in the same run: these machines are shared and
// noisy, so only ratios taken side by side mean anything. A benchmark names its baseline with a label
// "vs:<baseline benchmark name>"; after the run, each such pair is printed as time / baseline time.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace headlens_bench {

class ratio_reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration && run.aggregate_name != "median") continue;
      // Benchmarks timed with UseRealTime() get a "/real_time" suffix; labels name their baselines without it.
      std::string name = run.run_name.str();
      const std::size_t suffix = name.find("/real_time");
      if (suffix != std::string::npos) name.erase(suffix, 10);
      // Likewise a MinTime() adds "/min_time:<seconds>".
      const std::size_t min_time = name.find("/min_time:");
      if (min_time != std::string::npos) name.erase(min_time, name.find('/', min_time + 1) - min_time);
      times_[name] = run.GetAdjustedRealTime();
      if (run.report_label.rfind("vs:", 0) == 0) baselines_[name] = run.report_label.substr(3);
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void print_ratios() const {
    if (baselines_.empty()) return;
    std::printf("\nratios measured in this run (time / baseline time; < 1 is faster):\n");
    for (const auto& [name, baseline] : baselines_) {
      const auto a = times_.find(name), b = times_.find(baseline);
      if (a == times_.end() || b == times_.end() || b->second <= 0) continue;
      std::printf("  %-60s %7.3f  vs %s\n", name.c_str(), a->second / b->second, baseline.c_str());
    }
  }

 private:
  std::map<std::string, double> times_;
  std::map<std::string, std::string> baselines_;
};

inline int run_main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ratio_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_ratios();
  benchmark::Shutdown();
  return 0;
}

}  // namespace headlens_bench

#define HEADLENS_BENCHMARK_MAIN() \
  int main(int argc, char** argv) { return headlens_bench::run_main(argc, argv); }
