#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nats/nats.h>

#include "spawn/result.hpp"

namespace spawn::cluster {

/// How to reach NATS (Spawn's SPAWN_INTERNAL_NATS_* / SPAWN_PUBSUB_NATS_* variables).
struct NatsSettings {
  /// Server URLs, e.g. nats://127.0.0.1:4222.
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  /// Authentication: "" (none), "simple" (user and password), "token" or "jwt" (a .creds file).
  std::string auth_type;
  std::string user;
  std::string password;
  std::string token;
  std::string credentials_file;
  bool tls = false;
  /// Trusted CA certificates (PEM file) for TLS; empty: the system's.
  std::string ca_file;
  /// Connection name shown by the server's monitoring.
  std::string name = "spawn-proxy";
};

/// One connection to NATS that reconnects forever, and the JetStream KV buckets on it.
///
/// nats.c calls its callbacks on its own threads; so do the handlers given here.
class NatsConnection {
public:
  /// Connects (retrying in the background while no server answers). kUnavailable when the
  /// settings cannot be used at all.
  static Result<std::unique_ptr<NatsConnection>> connect(const NatsSettings& settings);

  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  natsConnection* get() { return connection_; }

  /// True while connected to a server.
  bool connected();

  /// Sends what is buffered, then closes: no handler runs after this returns.
  void close();

  /// Sets what runs when the connection is lost (false) or back (true).
  void on_state(std::function<void(bool)> handler);

  /// Returns the KV bucket `name`, creating it (history 1, file storage) when missing.
  Result<kvStore*> bucket(const std::string& name);

  /// Publishes `data` on `subject` (with `reply`, unless empty). Thread-safe.
  Result<void> publish(const std::string& subject, std::string_view data,
                       const std::string& reply = {});

  /// Subscribes `handler` to `subject`; the subscription lasts as long as this connection.
  Result<void> subscribe(const std::string& subject, std::function<void(natsMsg*)> handler);

private:
  NatsConnection() = default;

  static void on_disconnected(natsConnection* connection, void* self);
  static void on_reconnected(natsConnection* connection, void* self);
  static void on_closed(natsConnection* connection, void* self);
  void notify(bool connected);
  static void on_message(natsConnection* connection, natsSubscription* subscription,
                         natsMsg* message, void* handler);

  natsOptions* options_ = nullptr;
  natsConnection* connection_ = nullptr;
  jsCtx* jetstream_ = nullptr;
  std::mutex mutex_;  // guards buckets_, subscriptions_, state_handler_, closed_
  /// Set by on_closed(), the connection's last callback; the destructor waits for it.
  bool closed_ = false;
  std::condition_variable closed_changed_;
  std::vector<std::pair<std::string, kvStore*>> buckets_;
  std::vector<std::pair<natsSubscription*, std::unique_ptr<std::function<void(natsMsg*)>>>>
      subscriptions_;
  std::function<void(bool)> state_handler_;
};

/// A KV value and the revision it was written at.
struct KvEntry {
  std::string value;
  std::uint64_t revision = 0;
};

/// Reads `key`; nullopt when it was never written (or was deleted).
Result<std::optional<KvEntry>> kv_get(kvStore* bucket, const std::string& key);

/// Writes `key` only if it does not exist; returns its revision, or nullopt when another writer
/// created it first.
Result<std::optional<std::uint64_t>> kv_create(kvStore* bucket, const std::string& key,
                                               std::string_view value);

/// Writes `key` only if its revision is still `last`; nullopt when it changed since.
Result<std::optional<std::uint64_t>> kv_update(kvStore* bucket, const std::string& key,
                                               std::string_view value, std::uint64_t last);

/// Writes `key` whatever it holds.
Result<void> kv_put(kvStore* bucket, const std::string& key, std::string_view value);

/// Returns `text` as a KV key or subject token: [A-Za-z0-9_-] as they are, any other byte as
/// "=XX" (hex).
std::string escape_token(std::string_view text);

}  // namespace spawn::cluster
