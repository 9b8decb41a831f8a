#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace spawn {

/// What kind of failure an `Error` is. Each code maps to one `RequestStatus` and one HTTP status
/// (see src/protocol/status.hpp); the message says what failed, on what, and why.
enum class ErrorCode : std::uint8_t {
  /// The request or an argument is malformed (undecodable protobuf, missing actor name, ...).
  kInvalidArgument,
  /// An actor, actor system or action does not exist.
  kNotFound,
  /// A request body exceeds the configured size limit.
  kPayloadTooLarge,
  /// A dependency (the user function, the database) cannot be reached right now.
  kUnavailable,
  /// A dependency did not answer within its deadline.
  kTimeout,
  /// The user function answered something that is not a valid `ActorInvocationResponse`.
  kBadHostResponse,
  /// A write was made at a revision that is no longer current (compare-and-set failed).
  kConflict,
  /// Stored data cannot be read back: corrupt, or encrypted under another key.
  kDataLoss,
  /// The process is shutting down and takes no new work.
  kShuttingDown,
  /// Start-up configuration is missing or invalid.
  kConfig,
  /// Anything else that failed outside the program (I/O, database errors).
  kInternal,
};

/// Returns the code's stable lower-case name, e.g. "not_found".
constexpr std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kPayloadTooLarge:
      return "payload_too_large";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kBadHostResponse:
      return "bad_host_response";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kDataLoss:
      return "data_loss";
    case ErrorCode::kShuttingDown:
      return "shutting_down";
    case ErrorCode::kConfig:
      return "config";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

/// An expected failure: a code and a human-readable message.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  /// Returns a copy whose message is prefixed with `context + ": "`.
  [[nodiscard]] Error with_context(std::string_view context) const {
    return Error{code, std::string(context) + ": " + message};
  }
};

/// Either a value of type `T` or an `Error`; shaped like `std::expected<T, Error>`.
///
/// A `Result` converts implicitly from a `T` (success) and from an `Error` (failure). Accessing
/// `value()` of a failed result, or `error()` of a successful one, is a programming error.
template <class T>
class [[nodiscard]] Result {
public:
  using value_type = T;

  Result() requires std::is_default_constructible_v<T> : data_(std::in_place_index<0>) {}

  Result(const T& value) : data_(std::in_place_index<0>, value) {}  // NOLINT: implicit

  Result(T&& value) : data_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit

  Result(Error error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  [[nodiscard]] bool has_value() const { return data_.index() == 0; }

  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(data_); }

  const T& value() const& { return std::get<0>(data_); }

  T&& value() && { return std::get<0>(std::move(data_)); }

  T& operator*() & { return value(); }

  const T& operator*() const& { return value(); }

  T&& operator*() && { return std::move(*this).value(); }

  T* operator->() { return &value(); }

  const T* operator->() const { return &value(); }

  [[nodiscard]] const Error& error() const& { return std::get<1>(data_); }

  [[nodiscard]] Error&& error() && { return std::get<1>(std::move(data_)); }

private:
  std::variant<T, Error> data_;
};

/// A result that carries no value on success.
template <>
class [[nodiscard]] Result<void> {
public:
  using value_type = void;

  Result() = default;

  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit

  [[nodiscard]] bool has_value() const { return !error_.has_value(); }

  explicit operator bool() const { return has_value(); }

  [[nodiscard]] const Error& error() const& { return *error_; }

  [[nodiscard]] Error&& error() && { return std::move(*error_); }

private:
  std::optional<Error> error_;
};

/// Returns a successful `Result<void>`.
inline Result<void> ok() {
  return {};
}

/// Builds an `Error`; reads well at a return: `return fail(ErrorCode::kNotFound, "...")`.
inline Error fail(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

}  // namespace spawn
