// spawn-proxy: wiring only. Configuration, store, runtime and HTTP server come from src/.

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cluster/nats_cluster.hpp"
#include "cluster/nats_pubsub.hpp"
#include "common/asio.hpp"
#include "proxy/config.hpp"
#include "proxy/http_host.hpp"
#include "proxy/http_server.hpp"
#include "runtime/runtime.hpp"
#include "statestore/make_store.hpp"

namespace {

using namespace spawn;  // NOLINT: application wiring

int fail_start(const Error& error) {
  std::fprintf(stderr, "spawn-proxy: %s\n", error.message.c_str());
  return 1;
}

Task<void> shutdown(proxy::HttpServer& server, runtime::Runtime& runtime,
                    cluster::NatsCluster* cluster, const proxy::Config& config, int signal_number) {
  spdlog::info("signal={} shutting down: readiness is down, new work is refused", signal_number);
  if (cluster != nullptr) {
    cluster->leave();
  }
  server.set_ready(false);
  runtime.begin_shutdown();
  asio::steady_timer timer(co_await asio::this_coro::executor, config.drain);
  co_await timer.async_wait(kUseTask);
  server.close_listeners();
  co_await runtime.drain(config.host_timeout);
  if (cluster != nullptr) {
    // Every actor is saved: the other nodes may take them over now.
    cluster->stop();
  }
  spdlog::info("shutdown complete: every actor saved");
}

void await_second_signal(asio::signal_set& signals, std::chrono::steady_clock::time_point first) {
  signals.async_wait([&signals, first](const boost::system::error_code& ec, int signal_number) {
    if (ec) {
      return;
    }
    if (std::chrono::steady_clock::now() - first < std::chrono::seconds(1)) {
      spdlog::info("signal={} ignored: already shutting down", signal_number);
      await_second_signal(signals, first);
      return;
    }
    spdlog::error("second signal: exiting without finishing the shutdown");
    std::_Exit(1);
  });
}

int run(const proxy::Config& config) {
  statestore::StoreConfig store_config;
  store_config.type = config.database_type;
  store_config.name = config.database_name;
  store_config.host = config.database_host;
  store_config.port = config.database_port;
  store_config.username = config.database_username;
  store_config.password = config.database_secret;
  store_config.pool_size = config.database_pool_size;
  store_config.ssl = config.database_ssl;
  store_config.ssl_verify = config.database_ssl_verify;
  store_config.key_b64 = config.statestore_key;
  store_config.node = config.node;
  store_config.group_commit = config.group_commit;
  auto store = statestore::make_store(store_config);
  if (!store) {
    return fail_start(store.error());
  }

  proxy::HttpHostOptions host_options;
  host_options.host = config.user_function_host;
  host_options.port = config.user_function_port;
  host_options.timeout = config.host_timeout;
  host_options.max_idle_connections = config.host_pool_size;

  runtime::RuntimeOptions runtime_options;
  runtime_options.shards = config.shards;
  runtime_options.shard.node = config.node;
  runtime_options.shard.default_request_timeout = config.request_timeout;
  std::unique_ptr<cluster::NatsCluster> nats_cluster;
  if (config.cluster) {
    auto created = cluster::NatsCluster::create(*config.cluster);
    if (!created) {
      return fail_start(created.error());
    }
    nats_cluster = std::move(*created);
    runtime_options.shard.node = config.cluster->node;
    if (config.database_type == "memory") {
      spdlog::warn(
          "cluster with PROXY_DATABASE_TYPE=memory: an actor that moves to another node "
          "starts there without its state (every node needs one shared statestore)");
    }
  }
  std::unique_ptr<runtime::PubSub> pubsub;
  if (config.pubsub_nats) {
    auto prefix = config.cluster ? config.cluster->prefix : std::string("spawn");
    auto created = cluster::NatsPubSub::create(*config.pubsub_nats, prefix);
    if (!created) {
      return fail_start(created.error());
    }
    pubsub = std::move(*created);
  }
  runtime::Runtime runtime(runtime_options, proxy::make_http_host_factory(host_options),
                           store->get(), std::move(pubsub), nats_cluster.get());
  workflows::SagaEngine sagas(runtime);
  runtime.start();
  if (nats_cluster) {
    if (auto joined = nats_cluster->start(); !joined) {
      runtime.stop();
      return fail_start(joined.error());
    }
  }

  proxy::HttpServer server(
      runtime, sagas,
      proxy::HttpServerOptions{config.bind_address, config.http_port, config.max_body_bytes});
  if (auto started = server.start(); !started) {
    runtime.stop();
    return fail_start(started.error());
  }
  spdlog::info("spawn-proxy {} listening on {}:{} shards={} statestore={} user_function={}:{}",
               SPAWN_VERSION, config.bind_address, config.http_port, runtime.shard_count(),
               config.database_type, config.user_function_host, config.user_function_port);

  asio::io_context main_io;
  asio::signal_set signals(main_io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) {
      return;
    }
    asio::co_spawn(main_io, shutdown(server, runtime, nats_cluster.get(), config, signal_number),
                   [&](std::exception_ptr e) {
                     if (e) {
                       spdlog::error("shutdown failed");
                     }
                     main_io.stop();
                   });
    // A second signal while shutting down ends the process at once, but only a deliberate
    // one: a terminal's Ctrl-C and a supervisor's SIGTERM often arrive together.
    await_second_signal(signals, std::chrono::steady_clock::now());
  });
  main_io.run();
  if (nats_cluster) {
    nats_cluster->stop();
  }
  runtime.stop();
  // Closed while the shards' io_contexts still exist: the store finishes what is queued and posts
  // the completions to them, not to io_contexts destroyed with the runtime.
  store->reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::cout << spawn::proxy::usage();
      return 0;
    }
    if (std::strcmp(argv[i], "--version") == 0) {
      std::cout << "spawn-proxy " << SPAWN_VERSION << "\n";
      return 0;
    }
    std::fprintf(stderr, "spawn-proxy: unknown argument '%s' (try --help)\n", argv[i]);
    return 2;
  }
  auto config = spawn::proxy::Config::from_env();
  if (!config) {
    return fail_start(config.error());
  }
  auto logger = spdlog::stderr_color_mt("spawn-proxy");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  try {
    return run(*config);
  } catch (const std::exception& e) {
    spdlog::critical("spawn-proxy stopped: {}", e.what());
    return 1;
  }
}
