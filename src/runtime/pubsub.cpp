#include "runtime/pubsub.hpp"

#include <boost/asio/post.hpp>

namespace spawn::runtime {

std::uint64_t TopicHub::subscribe(const std::string& topic, asio::any_io_executor executor,
                                  Callback callback) {
  std::unique_lock lock(mutex_);
  auto token = next_token_++;
  subscribers_.emplace(token, Subscriber{topic, std::move(executor), std::move(callback)});
  return token;
}

void TopicHub::unsubscribe(std::uint64_t token) {
  std::unique_lock lock(mutex_);
  subscribers_.erase(token);
}

std::size_t TopicHub::deliver(const BroadcastMessage& message) {
  std::shared_lock lock(mutex_);
  std::size_t delivered = 0;
  for (const auto& [token, subscriber] : subscribers_) {
    if (subscriber.topic != message.broadcast.channel_group()) {
      continue;
    }
    asio::post(subscriber.executor,
               [callback = subscriber.callback, message] { callback(message); });
    ++delivered;
  }
  return delivered;
}

std::size_t TopicHub::count(const std::string& topic) const {
  std::shared_lock lock(mutex_);
  std::size_t n = 0;
  for (const auto& [token, subscriber] : subscribers_) {
    n += subscriber.topic == topic ? 1 : 0;
  }
  return n;
}

}  // namespace spawn::runtime
