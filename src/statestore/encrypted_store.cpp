#include "statestore/encrypted_store.hpp"

#include <utility>

namespace spawn::statestore {

EncryptedStore::EncryptedStore(std::unique_ptr<Store> inner, Cipher cipher)
    : inner_(std::move(inner)), cipher_(std::move(cipher)) {}

Task<Result<std::optional<Snapshot>>> EncryptedStore::load(ActorKey key) {
  Result<std::optional<Snapshot>> loaded = co_await inner_->load(key);
  // The context is built only for an error, not for every load (a key's names are short enough
  // not to allocate; the message would).
  const auto context = [&key] {
    return "load state of actor '" + key.system + "/" + key.name + "'";
  };
  co_return decrypt(std::move(loaded), context);
}

Task<Result<std::optional<Snapshot>>> EncryptedStore::load_revision(ActorKey key,
                                                                    std::int64_t revision) {
  Result<std::optional<Snapshot>> loaded = co_await inner_->load_revision(key, revision);
  const auto context = [&key, revision] {
    return "load state of actor '" + key.system + "/" + key.name + "' at revision "
           + std::to_string(revision);
  };
  co_return decrypt(std::move(loaded), context);
}

Task<Result<std::int64_t>> EncryptedStore::save(ActorKey key, Snapshot snapshot,
                                                std::int64_t expected_revision) {
  // Not a coroutine: the caller awaits the inner store's save directly (no frame in between).
  if (snapshot.has_state) {
    snapshot.data = cipher_.encrypt(snapshot.data);
  }
  return inner_->save(std::move(key), std::move(snapshot), expected_revision);
}

Task<Result<void>> EncryptedStore::put_scheduled(ScheduledInvocation invocation) {
  invocation.request = cipher_.encrypt(invocation.request);
  co_return co_await inner_->put_scheduled(std::move(invocation));
}

Task<Result<std::vector<ScheduledInvocation>>> EncryptedStore::due_scheduled(std::int64_t until_ms,
                                                                             std::size_t limit) {
  Result<std::vector<ScheduledInvocation>> due = co_await inner_->due_scheduled(until_ms, limit);
  if (!due) {
    co_return std::move(due);
  }
  for (ScheduledInvocation& invocation : *due) {
    Result<std::string> plaintext = cipher_.decrypt(invocation.request);
    if (!plaintext) {
      co_return plaintext.error().with_context("load scheduled invocation '" + invocation.id + "'");
    }
    invocation.request = std::move(*plaintext);
  }
  co_return std::move(due);
}

Task<Result<void>> EncryptedStore::remove_scheduled(std::vector<std::string> ids) {
  return inner_->remove_scheduled(std::move(ids));
}

Task<Result<std::int64_t>> EncryptedStore::count_scheduled() {
  return inner_->count_scheduled();
}

Result<std::optional<Snapshot>> EncryptedStore::decrypt(
    Result<std::optional<Snapshot>> loaded, const std::function<std::string()>& context) const {
  if (!loaded || !loaded->has_value() || !(*loaded)->has_state) {
    return loaded;
  }
  Snapshot& snapshot = **loaded;
  Result<std::string> plaintext = cipher_.decrypt(snapshot.data);
  if (!plaintext) {
    return plaintext.error().with_context(context());
  }
  snapshot.data = std::move(*plaintext);
  return loaded;
}

}  // namespace spawn::statestore
