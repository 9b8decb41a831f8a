#pragma once

#include <exception>
#include <string_view>

namespace spawn::common {

/// Logs `error` (when set) as "<what>: unexpected exception: <message>". For the completion
/// handlers of detached coroutines, where an exception has nowhere else to go.
void log_exception(std::exception_ptr error, std::string_view what);

}  // namespace spawn::common
