#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace spawn::proxy {

/// The proxy's counters, exported at GET /metrics in Prometheus text format. Lock-free; updated
/// from every shard.
class Metrics {
public:
  enum class Endpoint : std::uint8_t {
    kRegister,
    kSpawn,
    kInvoke,
    kSaga,
    kEvents,
    kHealth,
    kMetrics,
    kOther
  };
  static constexpr std::size_t kEndpoints = 8;

  /// Counts one answered request.
  void count(Endpoint endpoint, unsigned status);

  /// Returns the exposition text; `in_flight` is the runtime's current in-flight gauge.
  std::string render(std::int64_t in_flight) const;

private:
  struct Counters {
    std::atomic<std::uint64_t> ok{0};
    std::atomic<std::uint64_t> client_error{0};
    std::atomic<std::uint64_t> server_error{0};
  };

  std::array<Counters, kEndpoints> counters_;
};

}  // namespace spawn::proxy
