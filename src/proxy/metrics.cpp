#include "proxy/metrics.hpp"

#include <string_view>

namespace spawn::proxy {

namespace {

constexpr std::array<std::string_view, Metrics::kEndpoints> kNames = {
    "register", "spawn", "invoke", "saga", "events", "health", "metrics", "other"};

}  // namespace

void Metrics::count(Endpoint endpoint, unsigned status) {
  auto& counters = counters_[static_cast<std::size_t>(endpoint)];
  if (status < 400) {
    counters.ok.fetch_add(1, std::memory_order_relaxed);
  } else if (status < 500) {
    counters.client_error.fetch_add(1, std::memory_order_relaxed);
  } else {
    counters.server_error.fetch_add(1, std::memory_order_relaxed);
  }
}

std::string Metrics::render(std::int64_t in_flight) const {
  std::string text =
      "# HELP spawn_proxy_http_requests_total HTTP requests answered, by endpoint and class.\n"
      "# TYPE spawn_proxy_http_requests_total counter\n";
  for (std::size_t i = 0; i < kEndpoints; ++i) {
    const auto& c = counters_[i];
    auto line = [&](std::string_view klass, std::uint64_t value) {
      text += "spawn_proxy_http_requests_total{endpoint=\"" + std::string(kNames[i]) + "\",class=\""
              + std::string(klass) + "\"} " + std::to_string(value) + "\n";
    };
    line("2xx", c.ok.load(std::memory_order_relaxed));
    line("4xx", c.client_error.load(std::memory_order_relaxed));
    line("5xx", c.server_error.load(std::memory_order_relaxed));
  }
  text +=
      "# HELP spawn_proxy_invocations_in_flight Invocations accepted and not yet answered.\n"
      "# TYPE spawn_proxy_invocations_in_flight gauge\n"
      "spawn_proxy_invocations_in_flight "
      + std::to_string(in_flight) + "\n";
  return text;
}

}  // namespace spawn::proxy
