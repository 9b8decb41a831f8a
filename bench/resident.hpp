#pragma once

// Shared by the in-process benchmarks (ours and the CAF reference): the process's resident memory.

#include <cstdio>

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

}  // namespace spawn::bench
