#include "statestore/snapshot_codec.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

namespace spawn::statestore {

std::string_view status_text(ActorStatus status) {
  switch (status) {
    case ActorStatus::kActivated:
      return "ACTIVATED";
    case ActorStatus::kDeactivated:
      return "DEACTIVATED";
    case ActorStatus::kUnknown:
      break;
  }
  return "UNKNOWN";
}

ActorStatus status_from_text(std::string_view text) {
  if (text == "ACTIVATED") {
    return ActorStatus::kActivated;
  }
  if (text == "DEACTIVATED") {
    return ActorStatus::kDeactivated;
  }
  return ActorStatus::kUnknown;
}

Result<std::string> tags_to_json(const std::map<std::string, std::string>& tags) {
  if (tags.empty()) {
    return std::string("{}");  // what the serializer writes, without building a JSON value
  }
  try {
    return nlohmann::json(tags).dump();
  } catch (const nlohmann::json::exception& e) {
    return fail(ErrorCode::kInvalidArgument, std::string("tags are not valid UTF-8: ") + e.what());
  }
}

Result<std::map<std::string, std::string>> tags_from_json(std::string_view text) {
  if (text == "{}") {
    return std::map<std::string, std::string>();
  }
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return fail(ErrorCode::kDataLoss, "tags column is not a JSON object");
  }
  std::map<std::string, std::string> tags;
  for (const auto& [name, value] : json.items()) {
    if (!value.is_string()) {
      return fail(ErrorCode::kDataLoss, "tag '" + name + "' is not a string");
    }
    tags.emplace(name, value.get<std::string>());
  }
  return tags;
}

std::string now_utc() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  const std::size_t length = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + length, sizeof(text) - length, ".%03dZ", static_cast<int>(millis));
  return text;
}

std::string one_line(std::string_view text) {
  std::string line;
  line.reserve(text.size());
  bool space = false;
  for (const char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !line.empty();
      continue;
    }
    if (space) {
      line += ' ';
      space = false;
    }
    line += c;
  }
  return line;
}

}  // namespace spawn::statestore
