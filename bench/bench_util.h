// Helpers shared by the benchmark programs in bench/: elapsed time and CPU
// time in milliseconds, and medians of the runs. Header-only.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace sentinel::bench {

// A steady_clock interval in milliseconds.
inline double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// The median: for an even count the mean of the two middle values; 0 when
// empty.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The upper median: for an even count the greater of the two middle values
// (no averaging); 0 when empty. What delivery_bench has always reported.
inline double UpperMedian(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// CPU time (user + system) this process has used so far, in milliseconds.
inline double CpuMs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

}  // namespace sentinel::bench
