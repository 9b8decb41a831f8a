#include "cluster/nats.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

namespace spawn::cluster {

namespace {

Error nats_error(natsStatus status, const std::string& what) {
  std::string message = what + ": " + natsStatus_GetText(status);
  if (const char* last = nats_GetLastError(nullptr); last != nullptr && *last != '\0') {
    message += " (";
    message += last;
    message += ")";
  }
  auto code = status == NATS_TIMEOUT ? ErrorCode::kTimeout : ErrorCode::kUnavailable;
  return Error{code, std::move(message)};
}

/// nats.c needs its library state set up once per process.
void open_library() {
  static const natsStatus opened = nats_Open(-1);
  (void)opened;
}

struct EntryDeleter {
  void operator()(kvEntry* entry) const { kvEntry_Destroy(entry); }
};

}  // namespace

Result<std::unique_ptr<NatsConnection>> NatsConnection::connect(const NatsSettings& settings) {
  open_library();
  std::unique_ptr<NatsConnection> self(new NatsConnection());
  natsStatus s = natsOptions_Create(&self->options_);
  auto check = [&](natsStatus status, const char* what) -> Result<void> {
    if (status != NATS_OK) {
      return nats_error(status, std::string("NATS option ") + what);
    }
    return ok();
  };
  if (auto c = check(s, "create"); !c) {
    return std::move(c).error();
  }
  std::vector<const char*> servers;
  for (const auto& server : settings.servers) {
    servers.push_back(server.c_str());
  }
  auto* o = self->options_;
  const std::pair<natsStatus, const char*> steps[] = {
      {natsOptions_SetServers(o, servers.data(), static_cast<int>(servers.size())), "servers"},
      {natsOptions_SetName(o, settings.name.c_str()), "name"},
      {natsOptions_SetAllowReconnect(o, true), "reconnect"},
      {natsOptions_SetMaxReconnect(o, -1), "max reconnect"},
      {natsOptions_SetReconnectWait(o, 250), "reconnect wait"},
      {natsOptions_SetRetryOnFailedConnect(o, true, nullptr, nullptr), "retry on connect"},
      {natsOptions_SetPingInterval(o, 2000), "ping interval"},
      {natsOptions_SetMaxPingsOut(o, 2), "max pings out"},
      {natsOptions_SetDisconnectedCB(o, &NatsConnection::on_disconnected, self.get()),
       "disconnected callback"},
      {natsOptions_SetReconnectedCB(o, &NatsConnection::on_reconnected, self.get()),
       "reconnected callback"},
      {natsOptions_SetClosedCB(o, &NatsConnection::on_closed, self.get()), "closed callback"},
  };
  for (const auto& [status, what] : steps) {
    if (auto c = check(status, what); !c) {
      return std::move(c).error();
    }
  }
  if (settings.auth_type == "simple" || (!settings.user.empty() && settings.auth_type.empty())) {
    if (auto c = check(natsOptions_SetUserInfo(o, settings.user.c_str(), settings.password.c_str()),
                       "user");
        !c) {
      return std::move(c).error();
    }
  } else if (settings.auth_type == "token") {
    if (auto c = check(natsOptions_SetToken(o, settings.token.c_str()), "token"); !c) {
      return std::move(c).error();
    }
  } else if (settings.auth_type == "jwt") {
    if (auto c = check(
            natsOptions_SetUserCredentialsFromFiles(o, settings.credentials_file.c_str(), nullptr),
            "credentials file");
        !c) {
      return std::move(c).error();
    }
  }
  if (settings.tls) {
    if (auto c = check(natsOptions_SetSecure(o, true), "tls"); !c) {
      return std::move(c).error();
    }
    if (!settings.ca_file.empty()) {
      if (auto c = check(natsOptions_LoadCATrustedCertificates(o, settings.ca_file.c_str()),
                         "CA certificates");
          !c) {
        return std::move(c).error();
      }
    }
  }
  s = natsConnection_Connect(&self->connection_, o);
  // With retry-on-failed-connect, NATS_NOT_YET_CONNECTED means "connecting in the background".
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    return nats_error(s, "connect to NATS");
  }
  s = natsConnection_JetStream(&self->jetstream_, self->connection_, nullptr);
  if (s != NATS_OK) {
    return nats_error(s, "JetStream context");
  }
  return self;
}

NatsConnection::~NatsConnection() {
  if (connection_ != nullptr) {
    natsConnection_Close(connection_);
    // nats.c runs a connection's callbacks in order on a thread of its own, the closed one last:
    // until that one ran, a disconnected callback queued before it may still reach this object.
    // (Bounded, in case the library never calls it: a connection closed before it was made.)
    std::unique_lock lock(mutex_);
    closed_changed_.wait_for(lock, std::chrono::seconds(5), [this] { return closed_; });
  }
  for (auto& [subscription, handler] : subscriptions_) {
    natsSubscription_Destroy(subscription);
  }
  for (auto& [name, bucket] : buckets_) {
    kvStore_Destroy(bucket);
  }
  jsCtx_Destroy(jetstream_);
  natsConnection_Destroy(connection_);
  natsOptions_Destroy(options_);
}

bool NatsConnection::connected() {
  return natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED;
}

void NatsConnection::close() {
  natsConnection_FlushTimeout(connection_, 1000);
  natsConnection_Close(connection_);
}

void NatsConnection::on_state(std::function<void(bool)> handler) {
  std::lock_guard lock(mutex_);
  state_handler_ = std::move(handler);
}

void NatsConnection::on_disconnected(natsConnection*, void* self) {
  spdlog::warn("cluster: lost the connection to NATS; reconnecting");
  static_cast<NatsConnection*>(self)->notify(false);
}

void NatsConnection::on_reconnected(natsConnection*, void* self) {
  spdlog::info("cluster: connected to NATS again");
  static_cast<NatsConnection*>(self)->notify(true);
}

void NatsConnection::on_closed(natsConnection*, void* self) {
  auto* connection = static_cast<NatsConnection*>(self);
  std::lock_guard lock(connection->mutex_);
  connection->closed_ = true;
  connection->closed_changed_.notify_all();
}

void NatsConnection::notify(bool connected) {
  std::function<void(bool)> handler;
  {
    std::lock_guard lock(mutex_);
    handler = state_handler_;
  }
  if (handler) {
    handler(connected);
  }
}

Result<kvStore*> NatsConnection::bucket(const std::string& name) {
  std::lock_guard lock(mutex_);
  for (auto& [known, bucket] : buckets_) {
    if (known == name) {
      return bucket;
    }
  }
  kvStore* bucket = nullptr;
  natsStatus s = js_KeyValue(&bucket, jetstream_, name.c_str());
  if (s != NATS_OK) {
    kvConfig config;
    kvConfig_Init(&config);
    config.Bucket = name.c_str();
    config.History = 1;
    config.StorageType = js_FileStorage;
    s = js_CreateKeyValue(&bucket, jetstream_, &config);
    if (s != NATS_OK) {
      return nats_error(s, "open the JetStream KV bucket '" + name
                               + "' (is JetStream enabled on the NATS server?)");
    }
  }
  buckets_.emplace_back(name, bucket);
  return bucket;
}

Result<void> NatsConnection::publish(const std::string& subject, std::string_view data,
                                     const std::string& reply) {
  natsStatus s = reply.empty()
                     ? natsConnection_Publish(connection_, subject.c_str(), data.data(),
                                              static_cast<int>(data.size()))
                     : natsConnection_PublishRequest(connection_, subject.c_str(), reply.c_str(),
                                                     data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) {
    return nats_error(s, "publish on '" + subject + "'");
  }
  return ok();
}

Result<void> NatsConnection::subscribe(const std::string& subject,
                                       std::function<void(natsMsg*)> handler) {
  auto owned = std::make_unique<std::function<void(natsMsg*)>>(std::move(handler));
  natsSubscription* subscription = nullptr;
  natsStatus s = natsConnection_Subscribe(&subscription, connection_, subject.c_str(),
                                          &NatsConnection::on_message, owned.get());
  if (s != NATS_OK) {
    return nats_error(s, "subscribe to '" + subject + "'");
  }
  // A busy node must not drop requests: no limit on what waits in the subscription.
  natsSubscription_SetPendingLimits(subscription, -1, -1);
  std::lock_guard lock(mutex_);
  subscriptions_.emplace_back(subscription, std::move(owned));
  return ok();
}

void NatsConnection::on_message(natsConnection*, natsSubscription*, natsMsg* message,
                                void* handler) {
  (*static_cast<std::function<void(natsMsg*)>*>(handler))(message);
  natsMsg_Destroy(message);
}

Result<std::optional<KvEntry>> kv_get(kvStore* bucket, const std::string& key) {
  kvEntry* raw = nullptr;
  natsStatus s = kvStore_Get(&raw, bucket, key.c_str());
  if (s == NATS_NOT_FOUND) {
    return std::optional<KvEntry>();
  }
  if (s != NATS_OK) {
    return nats_error(s, "read '" + key + "' from the directory");
  }
  std::unique_ptr<kvEntry, EntryDeleter> entry(raw);
  const auto* data = static_cast<const char*>(kvEntry_Value(raw));
  KvEntry result{std::string(data == nullptr ? "" : data,
                             data == nullptr ? 0 : static_cast<std::size_t>(kvEntry_ValueLen(raw))),
                 kvEntry_Revision(raw)};
  return std::optional<KvEntry>(std::move(result));
}

Result<std::optional<std::uint64_t>> kv_create(kvStore* bucket, const std::string& key,
                                               std::string_view value) {
  std::uint64_t revision = 0;
  natsStatus s =
      kvStore_Create(&revision, bucket, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s == NATS_OK) {
    return std::optional<std::uint64_t>(revision);
  }
  // A lost race and a broken connection fail alike; a read tells which.
  auto current = kv_get(bucket, key);
  if (!current) {
    return std::move(current).error();
  }
  if (*current) {
    return std::optional<std::uint64_t>();
  }
  return nats_error(s, "create '" + key + "' in the directory");
}

Result<std::optional<std::uint64_t>> kv_update(kvStore* bucket, const std::string& key,
                                               std::string_view value, std::uint64_t last) {
  std::uint64_t revision = 0;
  natsStatus s = kvStore_Update(&revision, bucket, key.c_str(), value.data(),
                                static_cast<int>(value.size()), last);
  if (s == NATS_OK) {
    return std::optional<std::uint64_t>(revision);
  }
  auto current = kv_get(bucket, key);
  if (!current) {
    return std::move(current).error();
  }
  if (!*current || (*current)->revision != last) {
    return std::optional<std::uint64_t>();
  }
  return nats_error(s, "update '" + key + "' in the directory");
}

Result<void> kv_put(kvStore* bucket, const std::string& key, std::string_view value) {
  natsStatus s =
      kvStore_Put(nullptr, bucket, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) {
    return nats_error(s, "write '" + key + "' to the directory");
  }
  return ok();
}

std::string escape_token(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
        || c == '-') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('=');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  if (out.empty()) {
    out.push_back('=');  // a token may not be empty
  }
  return out;
}

}  // namespace spawn::cluster
