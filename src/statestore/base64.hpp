#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace spawn::statestore {

/// Encodes `bytes` as standard base64 (RFC 4648 §4) with `=` padding.
std::string base64_encode(std::string_view bytes);

/// Decodes standard base64 (RFC 4648 §4). Surrounding whitespace is ignored and the `=` padding
/// may be left out. Returns nullopt on any other character, or on a length no encoder produces.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace spawn::statestore
