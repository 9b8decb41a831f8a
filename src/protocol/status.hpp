#pragma once

#include <string>

#include "spawn/result.hpp"

#include "protocol/messages.hpp"

namespace spawn::protocol {

/// Returns the HTTP status an error is answered with. Protocol errors stay 500 as in the
/// original proxy (PROTOCOL.md §3), except where a more precise status cannot confuse a client:
/// 400 for an undecodable body, 413 for an oversized one, 503 while shutting down.
unsigned http_status(ErrorCode code);

/// Returns a `RequestStatus{ERROR, message}` for `error`. We never emit ACTOR_NOT_FOUND, which
/// the original proxy never does either (PROTOCOL.md §2.2).
pb::RequestStatus request_status(const Error& error);

/// Returns `RequestStatus{OK, message}`; OK is always set explicitly (the Java SDK reads 0 as an
/// error).
pb::RequestStatus ok_status(std::string message = {});

}  // namespace spawn::protocol
