#include "proxy/http_server.hpp"

#include <array>
#include <charconv>
#include <deque>
#include <memory>
#include <optional>
#include <string_view>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <google/protobuf/arena.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "protocol/status.hpp"
#include "proxy/http_codec.hpp"
#include "statestore/base64.hpp"

namespace spawn::proxy {

namespace beast = boost::beast;
namespace http = beast::http;
namespace pb = protocol::pb;
namespace pba = protocol::pba;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using http_codec::RequestHead;

namespace {

// Spawn answers protobuf with Plug's charset suffix (PROTOCOL.md §3); no SDK reads it.
constexpr std::string_view kProtobufType = "application/octet-stream; charset=utf-8";
// A keep-alive connection with no request for this long is closed.
constexpr auto kIdleTimeout = std::chrono::seconds(120);
// Largest request head (request line and headers).
constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;
// Events kept for a slow event-stream reader before the oldest are dropped.
constexpr std::size_t kMaxQueuedEvents = 10000;
// An idle event stream gets a comment line this often.
constexpr auto kEventKeepAlive = std::chrono::seconds(15);

/// One broadcast as a server-sent event: JSON with the topic, the sender, and the payload (its
/// type URL and base64 bytes; for a JSONType payload also its JSON text).
std::string format_event(const runtime::BroadcastMessage& message) {
  const auto& broadcast = message.broadcast;
  nlohmann::json event = {
      {"topic", broadcast.channel_group()},
      {"caller", {{"name", message.caller.name()}, {"system", message.caller.system()}}},
  };
  if (broadcast.has_value()) {
    event["type_url"] = broadcast.value().type_url();
    event["value"] = statestore::base64_encode(broadcast.value().value());
    pb::JSONType json;
    if (broadcast.value().type_url().ends_with("/eigr.functions.protocol.JSONType")
        && json.ParseFromString(broadcast.value().value())) {
      event["json"] = json.content();
    }
  } else if (broadcast.has_noop()) {
    event["noop"] = true;
  }
  return "event: broadcast\ndata: "
         + event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

/// The API routes, recognised from the path alone.
enum class Route : std::uint8_t {
  kRegister,
  kSpawn,
  kInvoke,
  kSaga,
  kActors,
  kCluster,
  kOwner,
  kEvents,
  kHealth,
  kReadiness,
  kMetrics,
  kNone
};

struct Target {
  Route route = Route::kNone;
  std::string system;  // from the path; used only when the body names none
  std::string topic;   // kEvents
  std::string actor;   // kOwner
  std::string query;
};

/// The non-empty segments of a path. Only the first kMax are kept (no route has more); size()
/// counts them all.
class PathParts {
public:
  static constexpr std::size_t kMax = 8;

  explicit PathParts(std::string_view path) {
    while (!path.empty()) {
      auto slash = path.find('/');
      auto part = path.substr(0, slash);
      if (!part.empty()) {
        if (count_ < kMax) {
          parts_[count_] = part;
        }
        ++count_;
      }
      if (slash == std::string_view::npos) {
        break;
      }
      path.remove_prefix(slash + 1);
    }
  }

  std::size_t size() const { return count_; }

  std::string_view operator[](std::size_t i) const { return parts_[i]; }

private:
  std::array<std::string_view, kMax> parts_{};
  std::size_t count_ = 0;
};

Target parse_target(std::string_view target) {
  Target result;
  auto question = target.find('?');
  if (question != std::string_view::npos) {
    result.query = std::string(target.substr(question + 1));
    target = target.substr(0, question);
  }
  const PathParts parts(target);
  if (parts.size() == 1 && parts[0] == "health") {
    result.route = Route::kHealth;
  } else if (parts.size() == 2 && parts[0] == "health" && parts[1] == "liveness") {
    result.route = Route::kHealth;
  } else if (parts.size() == 2 && parts[0] == "health" && parts[1] == "readiness") {
    result.route = Route::kReadiness;
  } else if (parts.size() == 1 && parts[0] == "metrics") {
    result.route = Route::kMetrics;
  } else if (parts.size() == 5 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "channels"
             && parts[4] == "events") {
    result.route = Route::kEvents;
    result.topic = std::string(parts[3]);
  } else if (parts.size() == 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "cluster") {
    result.route = Route::kCluster;
  } else if (parts.size() == 6 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "cluster"
             && parts[3] == "actors") {
    result.route = Route::kOwner;
    result.system = std::string(parts[4]);
    result.actor = std::string(parts[5]);
  } else if (parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "system") {
    if (parts.size() == 3) {
      result.route = Route::kRegister;
    } else if (parts.size() == 5 && parts[4] == "actors") {
      result.route = Route::kActors;
      result.system = std::string(parts[3]);
    } else if (parts.size() == 5 && parts[4] == "sagas") {
      result.route = Route::kSaga;
      result.system = std::string(parts[3]);
    } else if (parts.size() == 6 && parts[4] == "actors" && parts[5] == "spawn") {
      result.route = Route::kSpawn;
      result.system = std::string(parts[3]);
    } else if (parts.size() == 7 && parts[4] == "actors" && parts[6] == "invoke") {
      result.route = Route::kInvoke;
      result.system = std::string(parts[3]);
    }
  }
  return result;
}

Metrics::Endpoint endpoint_of(Route route) {
  switch (route) {
    case Route::kRegister:
      return Metrics::Endpoint::kRegister;
    case Route::kSpawn:
      return Metrics::Endpoint::kSpawn;
    case Route::kInvoke:
      return Metrics::Endpoint::kInvoke;
    case Route::kSaga:
      return Metrics::Endpoint::kSaga;
    case Route::kActors:
    case Route::kCluster:
    case Route::kOwner:
      return Metrics::Endpoint::kOther;
    case Route::kHealth:
    case Route::kReadiness:
      return Metrics::Endpoint::kHealth;
    case Route::kEvents:
      return Metrics::Endpoint::kEvents;
    case Route::kMetrics:
      return Metrics::Endpoint::kMetrics;
    case Route::kNone:
      break;
  }
  return Metrics::Endpoint::kOther;
}

/// One answer of the server, before its head is written.
struct Reply {
  unsigned status = 200;
  std::string_view content_type;
  std::string body;
  /// The value of an Allow header (405 answers); empty: none.
  std::string_view allow;
};

Reply make_reply(unsigned status, std::string_view content_type, std::string body) {
  return Reply{status, content_type, std::move(body), {}};
}

/// What a connection keeps from one invocation to the next (HttpServer's session()): the protobuf
/// arena the request is made on, reset for every invocation (its first block stays, so a common
/// request allocates nothing for it).
struct InvocationScratch {
  static constexpr std::size_t kFirstBlockBytes = 2048;

  InvocationScratch() : arena(first_block_options(first_block)) {}

  static google::protobuf::ArenaOptions first_block_options(std::array<char, kFirstBlockBytes>& b) {
    google::protobuf::ArenaOptions options;
    options.initial_block = b.data();
    options.initial_block_size = b.size();
    return options;
  }

  alignas(std::max_align_t) std::array<char, kFirstBlockBytes> first_block;
  google::protobuf::Arena arena;
};

/// Writes `reply` as an HTTP response to `out` (cleared first).
void serialize(const Reply& reply, unsigned version, bool keep_alive, std::string& out) {
  out.clear();
  std::string allow;
  if (!reply.allow.empty()) {
    allow = "Allow: " + std::string(reply.allow) + "\r\n";
  }
  out.reserve(160 + reply.body.size());
  http_codec::append_response_head(out, reply.status, version, keep_alive, reply.content_type,
                                   allow, reply.body.size());
  out += reply.body;
}

/// The nodes of the cluster as JSON, for GET /api/v1/cluster.
std::string cluster_json(runtime::Cluster* cluster) {
  nlohmann::json nodes = nlohmann::json::array();
  if (cluster == nullptr) {
    return nlohmann::json{{"enabled", false}, {"nodes", std::move(nodes)}}.dump();
  }
  for (const auto& node : cluster->nodes()) {
    nodes.push_back({
        {"node", node.node},
        {"address", node.address},
        {"registered_actors", node.registered},
        {"active_actors", node.active},
        {"leaving", node.leaving},
        {"self", node.self},
        {"last_seen_ms", node.last_seen_ms},
    });
  }
  return nlohmann::json{{"enabled", true}, {"node", cluster->self()}, {"nodes", std::move(nodes)}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// The actors of a system as JSON, for GET /api/v1/system/{system}/actors.
std::string actors_json(const std::string& system, const std::vector<runtime::ActorInfo>& actors) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& actor : actors) {
    nlohmann::json entry = {
        {"name", actor.name},
        {"kind", pba::Kind_Name(actor.kind)},
        {"stateful", actor.stateful},
        {"actions", actor.actions},
    };
    if (!actor.parent.empty()) {
      entry["parent"] = actor.parent;
    }
    list.push_back(std::move(entry));
  }
  return nlohmann::json{{"system", system}, {"actors", std::move(list)}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// The error answer of `route`: its own response message type with status ERROR.
std::string error_body(Route route, const Error& error) {
  switch (route) {
    case Route::kRegister: {
      pb::RegistrationResponse response;
      *response.mutable_status() = protocol::request_status(error);
      return response.SerializeAsString();
    }
    case Route::kSpawn: {
      pb::SpawnResponse response;
      *response.mutable_status() = protocol::request_status(error);
      return response.SerializeAsString();
    }
    case Route::kSaga: {
      ::spawn::saga::SagaResponse response;
      *response.mutable_status() = protocol::request_status(error);
      return response.SerializeAsString();
    }
    default: {
      pb::InvocationResponse response;
      *response.mutable_status() = protocol::request_status(error);
      return response.SerializeAsString();
    }
  }
}

bool is_api(Route route) {
  return route == Route::kRegister || route == Route::kSpawn || route == Route::kInvoke
         || route == Route::kSaga;
}

std::optional<std::int64_t> query_int(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      auto text = pair.substr(eq + 1);
      std::int64_t value = 0;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc() && ptr == text.data() + text.size()) {
        return value;
      }
      return std::nullopt;
    }
    if (amp == std::string_view::npos) {
      break;
    }
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace

struct HttpServer::Listener {
  Listener(HttpServer& owner, asio::any_io_executor shard)
      : server(owner), executor(shard), acceptor(shard), deadlines(shard) {}

  Result<void> open(const tcp::endpoint& endpoint) {
    boost::system::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) {
      acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
      int one = 1;
      // Every shard listens on the same port; the kernel spreads connections among them.
      if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))
          != 0) {
        ec.assign(errno, boost::system::system_category());
      }
    }
    if (!ec) {
      acceptor.bind(endpoint, ec);
    }
    if (!ec) {
      acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return fail(ErrorCode::kUnavailable, "listen on " + endpoint.address().to_string() + ":"
                                               + std::to_string(endpoint.port()) + ": "
                                               + ec.message());
    }
    return ok();
  }

  Task<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kUseTask);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
        co_return;
      }
      if (ec) {
        spdlog::warn("accept failed: {}", ec.message());
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(executor, session(std::move(socket)), [](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& error) {
            spdlog::error("http session: unexpected exception: {}", error.what());
          }
        }
      });
    }
  }

  /// Serves one connection: requests one after the other (keep-alive), each read, answered and
  /// written with buffers the connection keeps. A connection idle (or not taking the answer)
  /// for kIdleTimeout is closed by `deadlines`. The request is read and an invocation, the hot
  /// route, is answered in this frame, which lives as long as the connection: no frame of their
  /// own per request (Asio's per-thread recycling cache misses more the more frames a call
  /// interleaves); every other request goes through handle_other().
  Task<void> session(tcp::socket socket) {
    http_codec::Timed connection(std::move(socket));
    beast::flat_buffer buffer;
    RequestHead head;
    std::string body;
    std::string out;
    std::unique_ptr<InvocationScratch> scratch;  // made by the connection's first invocation
    for (;;) {
      http_codec::RequestParser parser(head, body);
      parser.body_limit(server.options_.max_body_bytes);
      parser.header_limit(kMaxHeaderBytes);
      deadlines.set(connection, Clock::now() + kIdleTimeout);
      beast::error_code ec;
      std::size_t size = 0;
      while (!http_codec::parse_buffered(parser, buffer, ec, size)) {
        auto [read_ec, n] = co_await http_codec::async_read_some_drained(
            connection.socket, buffer.prepare(size), kUseTask);
        if (http_codec::take_read(parser, buffer, read_ec, n, ec)) {
          break;
        }
      }
      if (connection.timed_out || ec == http::error::end_of_stream || ec == asio::error::eof
          || ec == asio::error::connection_reset) {
        break;
      }
      if (ec) {
        co_await answer_unreadable(connection, head, ec);
        break;
      }
      // No deadline while the request is served (an invocation may take long); the answer's
      // write gets its own.
      deadlines.clear(connection);
      const bool keep_alive = parser.keep_alive();
      Target target = parse_target(head.target);
      if (target.route == Route::kEvents && head.method == http::verb::get) {
        server.metrics_.count(Metrics::Endpoint::kEvents, 200);
        co_await stream_events(connection.socket, std::move(target.topic));
        break;
      }
      Reply reply;
      bool written = false;  // the whole answer is in `out` already
      if (target.route == Route::kInvoke && head.method == http::verb::post) {
        if (!scratch) {
          scratch = std::make_unique<InvocationScratch>();
        }
        pb::InvocationRequest* request = start_invocation(target, body, *scratch, reply);
        if (request != nullptr) {
          auto invoking = server.runtime_.invoke_lent(*request);
          auto response = co_await std::move(invoking);
          written =
              finish_invocation(target, response, *request, head.version, keep_alive, out, reply);
        }
      } else {
        auto handling = handle_other(target, head, body);
        reply = co_await std::move(handling);
      }
      if (!written) {
        serialize(reply, head.version, keep_alive, out);
      }
      beast::error_code write_ec;
      const std::size_t sent = http_codec::write_now(connection.socket, out, write_ec);
      if (!write_ec && sent < out.size()) {
        // A client not taking its answer gets kIdleTimeout to do so.
        deadlines.set(connection, Clock::now() + kIdleTimeout);
        write_ec =
            co_await http_codec::write_rest(connection.socket, std::string_view(out).substr(sent));
        deadlines.clear(connection);
      }
      if (write_ec || connection.timed_out || !keep_alive) {
        break;
      }
    }
    deadlines.clear(connection);
    boost::system::error_code ignored;
    connection.socket.shutdown(tcp::socket::shutdown_send, ignored);
  }

  /// Streams every broadcast to `topic` as server-sent events until the client goes away.
  Task<void> stream_events(tcp::socket& stream, std::string topic) {
    struct Feed {
      explicit Feed(asio::any_io_executor executor) : wake(executor) {}

      std::deque<std::string> queue;
      asio::steady_timer wake;
      std::uint64_t dropped = 0;
    };

    auto feed = std::make_shared<Feed>(executor);
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Connection: close\r\n\r\n: subscribed to "
        + topic + "\n\n";
    // Subscribe before the head goes out: a client may take the first line as "subscribed".
    auto& hub = server.runtime_.external_subscribers();
    auto token = hub.subscribe(
        topic, executor, [weak = std::weak_ptr<Feed>(feed)](const runtime::BroadcastMessage& m) {
          auto f = weak.lock();
          if (!f) {
            return;
          }
          if (f->queue.size() >= kMaxQueuedEvents) {
            f->queue.pop_front();  // a slow reader loses the oldest
            ++f->dropped;
          }
          f->queue.push_back(format_event(m));
          f->wake.cancel();
        });
    auto [head_ec, head_n] = co_await asio::async_write(stream, asio::buffer(head), kUseTask);
    if (head_ec) {
      hub.unsubscribe(token);
      co_return;
    }
    spdlog::debug("topic={} external subscriber joined", topic);
    for (;;) {
      if (feed->queue.empty()) {
        feed->wake.expires_after(kEventKeepAlive);
        auto [ec] = co_await feed->wake.async_wait(kUseTask);
        if (!ec) {
          // Idle: a comment line keeps proxies from closing the stream and finds dead clients.
          static constexpr std::string_view kPing = ": keep-alive\n\n";
          auto [ping_ec, n] = co_await asio::async_write(stream, asio::buffer(kPing), kUseTask);
          if (ping_ec) {
            break;
          }
        }
        continue;
      }
      std::string batch;
      if (feed->dropped > 0) {
        batch += "event: dropped\ndata: " + std::to_string(feed->dropped) + "\n\n";
        feed->dropped = 0;
      }
      while (!feed->queue.empty()) {
        batch += feed->queue.front();
        feed->queue.pop_front();
      }
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(batch), kUseTask);
      if (ec) {
        break;
      }
    }
    hub.unsubscribe(token);
    spdlog::debug("topic={} external subscriber left", topic);
  }

  /// Answers a request that could not be read (oversized, malformed), then closes politely.
  Task<void> answer_unreadable(http_codec::Timed& connection, const RequestHead& head,
                               boost::system::error_code ec) {
    Route route = Route::kNone;
    unsigned version = 11;
    // Beast rejects a too-large Content-Length while it is still in the header, so the start
    // line may be known even though the header is not complete.
    if (!head.target.empty()) {
      route = parse_target(head.target).route;
      version = head.version == 0 ? 11 : head.version;
    }
    Reply reply;
    if (ec == http::error::body_limit) {
      Error error =
          fail(ErrorCode::kPayloadTooLarge, "request body exceeds the limit of "
                                                + std::to_string(server.options_.max_body_bytes)
                                                + " bytes (SPAWN_PROXY_MAX_BODY_BYTES)");
      reply = is_api(route) ? make_reply(413, kProtobufType, error_body(route, error))
                            : make_reply(413, "text/plain", error.message);
      server.metrics_.count(endpoint_of(route), 413);
    } else {
      reply = make_reply(400, "text/plain", "Bad Request: " + ec.message());
      server.metrics_.count(endpoint_of(route), 400);
    }
    std::string out;
    serialize(reply, version, false, out);
    deadlines.set(connection, Clock::now() + std::chrono::seconds(5));
    beast::error_code write_ec;
    const std::size_t sent = http_codec::write_now(connection.socket, out, write_ec);
    if (!write_ec && sent < out.size()) {
      co_await http_codec::write_rest(connection.socket, std::string_view(out).substr(sent));
    }
    // Read and drop what the client is still sending, so that closing does not reset the
    // connection before it has read the answer.
    boost::system::error_code ignored;
    connection.socket.shutdown(tcp::socket::shutdown_send, ignored);
    std::array<char, 16384> sink{};
    std::size_t drained = 0;
    while (drained < 64 * 1024 * 1024 && !connection.timed_out) {
      auto [read_ec, n] = co_await connection.socket.async_read_some(asio::buffer(sink), kUseTask);
      if (read_ec) {
        break;
      }
      drained += n;
    }
  }

  Task<Reply> handle_other(const Target& target, const RequestHead& head, const std::string& body) {
    const bool is_get = head.method == http::verb::get;
    const bool is_post = head.method == http::verb::post;
    Reply reply;
    switch (target.route) {
      case Route::kEvents:  // a GET was diverted to stream_events() before this
      case Route::kHealth:
      case Route::kReadiness:
      case Route::kMetrics: {
        if (!is_get) {
          reply = make_reply(405, "text/plain", "Method Not Allowed: use GET");
          reply.allow = "GET";
          break;
        }
        if (target.route == Route::kMetrics) {
          reply = make_reply(200, "text/plain; version=0.0.4",
                             server.metrics_.render(server.runtime_.in_flight()));
        } else if (target.route == Route::kReadiness && !server.ready_) {
          reply = make_reply(503, "application/json", R"({"status":"down"})");
        } else {
          reply = make_reply(200, "application/json", R"({"status":"up"})");
        }
        break;
      }
      case Route::kRegister:
      case Route::kSpawn:
      case Route::kSaga:
      case Route::kInvoke: {  // a POST to kInvoke was answered by session() before this
        if (!is_post) {
          Error error = fail(ErrorCode::kInvalidArgument,
                             head.method_name + " " + head.target + ": use POST");
          reply = make_reply(405, kProtobufType, error_body(target.route, error));
          reply.allow = "POST";
          break;
        }
        auto [status, answer] = co_await admin_api(target, body);
        reply = make_reply(status, kProtobufType, std::move(answer));
        break;
      }
      case Route::kActors:
      case Route::kCluster:
      case Route::kOwner: {
        if (!is_get) {
          reply = make_reply(405, "text/plain", "Method Not Allowed: use GET");
          reply.allow = "GET";
          break;
        }
        auto [status, answer] = co_await json_route(target);
        reply = make_reply(status, "application/json", std::move(answer));
        break;
      }
      case Route::kNone:
        reply = make_reply(404, "text/plain", "Not found!");
        break;
    }
    server.metrics_.count(endpoint_of(target.route), reply.status);
    co_return reply;
  }

  /// Runs one API call; returns the HTTP status and the protobuf body.
  /// Answers the JSON GET routes: a system's actors, the cluster, an actor's node.
  Task<std::pair<unsigned, std::string>> json_route(Target target) {
    auto error = [](const std::string& message) {
      return nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                     nlohmann::json::error_handler_t::replace);
    };
    if (target.route == Route::kActors) {
      auto listed = co_await server.runtime_.actors(target.system);
      if (!listed) {
        co_return std::pair{404U, error(listed.error().message)};
      }
      co_return std::pair{200U, actors_json(target.system, *listed)};
    }
    auto* cluster = server.runtime_.cluster();
    if (target.route == Route::kCluster) {
      co_return std::pair{200U, cluster_json(cluster)};
    }
    if (cluster == nullptr) {
      co_return std::pair{
          404U, error("this proxy is not part of a cluster (SPAWN_USE_INTERNAL_NATS is not true)")};
    }
    // A named key: GCC 12 destroys a braced temporary inside co_await twice.
    statestore::ActorKey key{target.system, target.actor};
    auto owner = co_await cluster->owner_of(std::move(key));
    if (!owner) {
      co_return std::pair{503U, error(owner.error().message)};
    }
    nlohmann::json answer = {{"system", target.system}, {"actor", target.actor}};
    answer["node"] = *owner ? nlohmann::json(**owner) : nlohmann::json(nullptr);
    co_return std::pair{200U,
                        answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  }

  /// Registration, spawning and sagas; the invocation runs in session()'s frame. This frame stays
  /// under the 1,020 bytes Asio recycles (GCC 12 keeps every local of a coroutine in its frame,
  /// taken branch or not).
  Task<std::pair<unsigned, std::string>> admin_api(const Target& target, std::string_view body) {
    switch (target.route) {
      case Route::kRegister: {
        pb::RegistrationRequest request;
        if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
          co_return failure(target.route,
                            fail(ErrorCode::kInvalidArgument,
                                 "Error on create Actors: the body is not a RegistrationRequest ("
                                     + std::to_string(body.size()) + " bytes)"));
        }
        auto registered =
            co_await server.runtime_.register_system(std::move(*request.mutable_actor_system()));
        if (!registered) {
          co_return failure(target.route,
                            registered.error().with_context("Error on create Actors"));
        }
        pb::RegistrationResponse response;
        *response.mutable_status() = protocol::ok_status("Accepted");
        auto* info = response.mutable_proxy_info();
        info->set_protocol_major_version(1);
        info->set_protocol_minor_version(2);
        info->set_proxy_name("spawn-cpp");
        info->set_proxy_version(SPAWN_VERSION);
        co_return std::pair{200U, response.SerializeAsString()};
      }
      case Route::kSpawn: {
        pb::SpawnRequest request;
        if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
          co_return failure(target.route,
                            fail(ErrorCode::kInvalidArgument,
                                 "Error on create Actors: the body is not a SpawnRequest ("
                                     + std::to_string(body.size()) + " bytes)"));
        }
        std::optional<std::int64_t> revision;
        if (target.query.find("revision=") != std::string::npos) {
          revision = query_int(target.query, "revision");
          if (!revision) {
            co_return failure(target.route,
                              fail(ErrorCode::kInvalidArgument,
                                   "Error on create Actors: query 'revision' is not a number"));
          }
        }
        std::vector<pba::ActorId> ids(request.actors().begin(), request.actors().end());
        for (auto& id : ids) {
          if (id.system().empty()) {
            id.set_system(target.system);
          }
        }
        auto spawned = co_await server.runtime_.spawn(std::move(ids), revision);
        if (!spawned) {
          co_return failure(target.route, spawned.error().with_context("Error on create Actors"));
        }
        pb::SpawnResponse response;
        *response.mutable_status() = protocol::ok_status("Accepted");
        co_return std::pair{200U, response.SerializeAsString()};
      }
      default: {  // Route::kSaga
        ::spawn::saga::SagaRequest request;
        if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
          co_return failure(target.route, fail(ErrorCode::kInvalidArgument,
                                               "saga: the body is not a SagaRequest ("
                                                   + std::to_string(body.size()) + " bytes)"));
        }
        if (request.system().empty()) {
          request.set_system(target.system);
        }
        auto response = co_await server.sagas_.run(std::move(request));
        if (!response) {
          co_return failure(target.route, response.error());
        }
        unsigned status = response->outcome() == ::spawn::saga::COMPLETED ? 200U : 500U;
        co_return std::pair{status, response->SerializeAsString()};
      }
    }
  }

  /// Begins answering an invocation (a POST to kInvoke): returns its request, made on the
  /// connection's arena (whose previous invocation is over), to run; or null with the error
  /// `reply` when the body is no request.
  pb::InvocationRequest* start_invocation(const Target& target, std::string_view body,
                                          InvocationScratch& scratch, Reply& reply) {
    scratch.arena.Reset();
    auto* request = google::protobuf::Arena::CreateMessage<pb::InvocationRequest>(&scratch.arena);
    if (!request->ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      reply = api_reply(target.route,
                        failure(target.route, fail(ErrorCode::kInvalidArgument,
                                                   "invoke: the body is not an InvocationRequest ("
                                                       + std::to_string(body.size()) + " bytes)")));
      return nullptr;
    }
    if (request->actor().id().system().empty() && request->system().name().empty()) {
      request->mutable_system()->set_name(target.system);
    }
    return request;
  }

  /// Answers the invocation `request` (start_invocation()'s), which the runtime answered with
  /// `response`, counted in the metrics: a success is written to `out` as a whole HTTP response
  /// (returns true), its body serialized in place; a failure is set as `reply` (returns false).
  bool finish_invocation(const Target& target, Result<pb::InvocationResponse>& response,
                         pb::InvocationRequest& request, unsigned version, bool keep_alive,
                         std::string& out, Reply& reply) {
    if (!response) {
      reply = api_reply(target.route, failure(target.route, response.error()));
      return false;
    }
    server.metrics_.count(endpoint_of(target.route), 200);
    // The answer echoes the request's system and actor (PROTOCOL.md §3), which the runtime
    // leaves as they were (Runtime::invoke_lent()): lent to the response for its serialization
    // alone, they are the arena's.
    response->unsafe_arena_set_allocated_system(request.mutable_system());
    response->unsafe_arena_set_allocated_actor(request.mutable_actor());
    const std::size_t size = response->ByteSizeLong();
    out.clear();
    http_codec::append_response_head(out, 200, version, keep_alive, kProtobufType, {}, size);
    // The sizes ByteSizeLong() cached: SerializeToString() would compute them all again.
    const std::size_t at = out.size();
    out.resize(at + size);
    response->SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(out.data() + at));
    response->unsafe_arena_release_system();
    response->unsafe_arena_release_actor();
    return true;
  }

  /// The reply of an API call that answered `answer` (status, protobuf body), counted.
  Reply api_reply(Route route, std::pair<unsigned, std::string> answer) {
    server.metrics_.count(endpoint_of(route), answer.first);
    return make_reply(answer.first, kProtobufType, std::move(answer.second));
  }

  static std::pair<unsigned, std::string> failure(Route route, const Error& error) {
    spdlog::debug("request failed: {}: {}", to_string(error.code), error.message);
    return {protocol::http_status(error.code), error_body(route, error)};
  }

  HttpServer& server;
  asio::any_io_executor executor;
  tcp::acceptor acceptor;
  /// The idle and write deadlines of this shard's connections.
  http_codec::Deadlines deadlines;
};

HttpServer::HttpServer(runtime::Runtime& runtime, workflows::SagaEngine& sagas,
                       HttpServerOptions options)
    : runtime_(runtime), sagas_(sagas), options_(std::move(options)) {}

HttpServer::~HttpServer() = default;

Result<void> HttpServer::start() {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options_.bind_address, ec);
  if (ec) {
    return fail(ErrorCode::kConfig,
                "SPAWN_PROXY_BIND_ADDRESS='" + options_.bind_address + "' is not an IP address");
  }
  tcp::endpoint endpoint(address, options_.port);
  {
    // Our listeners share the port with SO_REUSEPORT, which would also let a second proxy share
    // it silently and take half the connections. A plain bind first finds such a listener.
    asio::io_context probe_io;
    tcp::acceptor probe(probe_io);
    probe.open(endpoint.protocol(), ec);
    if (!ec) {
      probe.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
      probe.bind(endpoint, ec);
    }
    if (ec) {
      return fail(ErrorCode::kUnavailable,
                  "listen on " + options_.bind_address + ":" + std::to_string(options_.port) + ": "
                      + ec.message() + " (is another spawn-proxy running? see PROXY_HTTP_PORT)");
    }
  }
  for (std::size_t i = 0; i < runtime_.shard_count(); ++i) {
    auto listener = std::make_unique<Listener>(*this, runtime_.executor(i));
    auto opened = listener->open(endpoint);
    if (!opened) {
      return opened;
    }
    listeners_.push_back(std::move(listener));
  }
  for (auto& listener : listeners_) {
    asio::co_spawn(listener->executor, listener->accept_loop(), asio::detached);
  }
  return ok();
}

void HttpServer::close_listeners() {
  for (auto& listener : listeners_) {
    asio::post(listener->executor, [l = listener.get()] {
      boost::system::error_code ignored;
      l->acceptor.close(ignored);
    });
  }
}

}  // namespace spawn::proxy
