#pragma once

// One place that decides how we use Boost.Asio: the namespace alias and the coroutine type.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace spawn {

namespace asio = boost::asio;

/// The coroutine type of every asynchronous function: `Task<Result<T>>` for ones that can fail.
template <class T>
using Task = asio::awaitable<T>;

/// Completion token for Asio calls inside coroutines: errors arrive as a tuple, never as throws.
inline constexpr auto kUseTask = asio::as_tuple(asio::use_awaitable);

}  // namespace spawn
