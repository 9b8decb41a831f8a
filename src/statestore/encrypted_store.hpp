#pragma once

#include <functional>
#include <memory>
#include <string>

#include "statestore/cipher.hpp"
#include "statestore/store.hpp"

namespace spawn::statestore {

/// A `Store` decorator that keeps `Snapshot::data` and `ScheduledInvocation::request` encrypted
/// in the store it wraps.
///
/// `save()` replaces the data of a snapshot that has a state with `Cipher::encrypt(data)`;
/// `load()` and `load_revision()` decrypt it again. Tags, type_url, status and node stay in
/// clear (PROTOCOL.md §6). `put_scheduled()` encrypts the request bytes the same way and
/// `due_scheduled()` decrypts them; the id, due time, system and actor stay in clear. Encryption
/// and decryption run on the awaiting thread (AES-NI makes them cheap next to the I/O); the wrapped
/// store does the I/O. Thread safety and completion are the wrapped store's.
class EncryptedStore final : public Store {
public:
  /// Wraps `inner`, which must not be null.
  EncryptedStore(std::unique_ptr<Store> inner, Cipher cipher);

  /// As `Store::load`; a snapshot that does not decrypt is kDataLoss, e.g.
  /// "load state of actor 'sys/name': decrypt: authentication failed (...)".
  Task<Result<std::optional<Snapshot>>> load(ActorKey key) override;

  /// As `Store::load_revision`; a snapshot that does not decrypt is kDataLoss naming the actor
  /// and revision.
  Task<Result<std::optional<Snapshot>>> load_revision(ActorKey key, std::int64_t revision) override;

  /// As `Store::save`, with `snapshot.data` encrypted when `snapshot.has_state`.
  Task<Result<std::int64_t>> save(ActorKey key, Snapshot snapshot,
                                  std::int64_t expected_revision) override;

  /// As `Store::put_scheduled`, with `invocation.request` encrypted.
  Task<Result<void>> put_scheduled(ScheduledInvocation invocation) override;

  /// As `Store::due_scheduled`, with each request decrypted. One that does not decrypt fails the
  /// call with kDataLoss naming it, e.g. "load scheduled invocation '<id>': decrypt: ...".
  Task<Result<std::vector<ScheduledInvocation>>> due_scheduled(std::int64_t until_ms,
                                                               std::size_t limit) override;

  /// As `Store::remove_scheduled`.
  Task<Result<void>> remove_scheduled(std::vector<std::string> ids) override;

  /// As `Store::count_scheduled`.
  Task<Result<std::int64_t>> count_scheduled() override;

private:
  // Decrypts a loaded snapshot's data; `context` names the load in an error.
  Result<std::optional<Snapshot>> decrypt(Result<std::optional<Snapshot>> loaded,
                                          const std::function<std::string()>& context) const;

  std::unique_ptr<Store> inner_;
  Cipher cipher_;
};

}  // namespace spawn::statestore
