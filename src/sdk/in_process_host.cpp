#include "sdk/in_process_host.hpp"

#include <utility>

namespace spawn::sdk {

Task<Result<void>> InProcessHost::invoke(protocol::pb::ActorInvocation& invocation,
                                         protocol::pb::ActorInvocationResponse& response) {
  co_return dispatcher_->dispatch(invocation, response);
}

runtime::HostFactory make_in_process_host_factory(std::shared_ptr<const Dispatcher> dispatcher) {
  return [dispatcher = std::move(dispatcher)](asio::any_io_executor) {
    return std::unique_ptr<runtime::Host>(std::make_unique<InProcessHost>(dispatcher));
  };
}

}  // namespace spawn::sdk
