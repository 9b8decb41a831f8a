#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "spawn/result.hpp"

namespace spawn::common {

/// Returns the environment variable `name`, or nullopt when it is unset or empty (Spawn treats an
/// empty string as unset, PROTOCOL.md §7).
std::optional<std::string> env(std::string_view name);

/// Returns the variable, or `fallback` when it is unset or empty.
std::string env_or(std::string_view name, std::string_view fallback);

/// Returns true only for the exact string "true" (Spawn's rule), `fallback` when unset.
bool env_bool(std::string_view name, bool fallback);

/// Parses the variable as a decimal integer in [min, max]; `fallback` when unset. A malformed or
/// out-of-range value is a kConfig error naming the variable.
Result<std::int64_t> env_int(std::string_view name, std::int64_t fallback, std::int64_t min,
                             std::int64_t max);

}  // namespace spawn::common
