#pragma once

// How the SQL backends write a snapshot's fields as column values: status as text, tags as a
// JSON object, timestamps as UTC ISO 8601. Only backends include it.

#include <map>
#include <string>
#include <string_view>

#include "spawn/result.hpp"

#include "statestore/store.hpp"

namespace spawn::statestore {

/// Returns "ACTIVATED", "DEACTIVATED" or "UNKNOWN" (PROTOCOL.md §6).
std::string_view status_text(ActorStatus status);

/// Reads status_text()'s output back; anything else is kUnknown.
ActorStatus status_from_text(std::string_view text);

/// Returns the tags as a JSON object. Tags that are not valid UTF-8 are kInvalidArgument.
Result<std::string> tags_to_json(const std::map<std::string, std::string>& tags);

/// Reads tags_to_json()'s output back. Anything but an object of strings is kDataLoss.
Result<std::map<std::string, std::string>> tags_from_json(std::string_view text);

/// Returns the current UTC time as ISO 8601 text with milliseconds, e.g.
/// "2024-05-01T12:00:00.123Z": it sorts as text and reads in any SQL console.
std::string now_utc();

/// Returns `text` on one line: line breaks and tabs become single spaces, ends are trimmed.
/// Database client libraries return multi-line messages; ours are one line.
std::string one_line(std::string_view text);

}  // namespace spawn::statestore
