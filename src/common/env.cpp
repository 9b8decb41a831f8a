#include "common/env.hpp"

#include <charconv>
#include <cstdlib>

namespace spawn::common {

std::optional<std::string> env(std::string_view name) {
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr || *value == '\0') {
    return std::nullopt;
  }
  return std::string(value);
}

std::string env_or(std::string_view name, std::string_view fallback) {
  auto value = env(name);
  return value ? *value : std::string(fallback);
}

bool env_bool(std::string_view name, bool fallback) {
  auto value = env(name);
  return value ? *value == "true" : fallback;
}

Result<std::int64_t> env_int(std::string_view name, std::int64_t fallback, std::int64_t min,
                             std::int64_t max) {
  auto value = env(name);
  if (!value) {
    return fallback;
  }
  std::int64_t parsed = 0;
  const char* end = value->data() + value->size();
  auto [ptr, ec] = std::from_chars(value->data(), end, parsed);
  if (ec != std::errc() || ptr != end) {
    return fail(ErrorCode::kConfig, std::string(name) + "='" + *value + "' is not a whole number");
  }
  if (parsed < min || parsed > max) {
    return fail(ErrorCode::kConfig, std::string(name) + "=" + *value + " is out of range ["
                                        + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return parsed;
}

}  // namespace spawn::common
