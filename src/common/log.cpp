#include "common/log.hpp"

#include <spdlog/spdlog.h>

namespace spawn::common {

void log_exception(std::exception_ptr error, std::string_view what) {
  if (!error) {
    return;
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    spdlog::error("{}: unexpected exception: {}", what, e.what());
  } catch (...) {
    spdlog::error("{}: unexpected exception of unknown type", what);
  }
}

}  // namespace spawn::common
