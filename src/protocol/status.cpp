#include "protocol/status.hpp"

namespace spawn::protocol {

unsigned http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kPayloadTooLarge:
      return 413;
    case ErrorCode::kShuttingDown:
      return 503;
    default:
      return 500;
  }
}

pb::RequestStatus request_status(const Error& error) {
  pb::RequestStatus status;
  status.set_status(pb::ERROR);
  status.set_message(error.message);
  return status;
}

pb::RequestStatus ok_status(std::string message) {
  pb::RequestStatus status;
  status.set_status(pb::OK);
  status.set_message(std::move(message));
  return status;
}

}  // namespace spawn::protocol
