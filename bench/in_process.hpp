#pragma once

// Shared by the in-process benchmarks (ours and the CAF reference): the process's resident
// memory and latency percentiles.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <unistd.h>

namespace spawn::bench {

/// Returns the resident set size of this process in bytes (0 when /proc is unreadable).
inline long resident_bytes() {
  long pages = 0;
  long resident = 0;
  if (FILE* statm = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(statm, "%ld %ld", &pages, &resident) != 2) {
      resident = 0;
    }
    std::fclose(statm);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

/// Returns the q-quantile of `values` (ns) in µs, 0 when there are none; reorders `values`.
inline double percentile_us(std::vector<std::int64_t>& values, double q) {
  if (values.empty()) {
    return 0;
  }
  auto at =
      values.begin() + static_cast<std::ptrdiff_t>(q * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), at, values.end());
  return static_cast<double>(*at) / 1000.0;
}

}  // namespace spawn::bench
