// spawn-bench-requests: writes the binary protobuf bodies the wrk load tests post to spawn-proxy.
//
//   spawn-bench-requests registration --system S --prefix P --actors N [--deactivation-ms MS]
//                                     --out FILE
//       FILE is one RegistrationRequest: N stateful NAMED counter actors P00000... (actions
//       inc and tick; see bench_messages.hpp). Post it with
//       curl --data-binary @FILE -H 'content-type: application/octet-stream'
//            http://127.0.0.1:PORT/api/v1/system
//
//   spawn-bench-requests invocations --system S --prefix P --actors N --action A
//                                    [--metadata KEY=VALUE]... --out FILE
//       FILE holds N records, one InvocationRequest per actor (action A, noop payload, the
//       metadata), in actor order. A record is a 4-byte big-endian length and the request path,
//       then a 4-byte big-endian length and the body; bench/wrk_invoke.lua reads them.
//
//   spawn-bench-requests host-invocations --system S --prefix P --actors N --action A
//                                         [--metadata KEY=VALUE]... --out FILE
//       The same records, but each body is the ActorInvocation the proxy would send to the host
//       for that invocation (path /api/v1/actors/actions, the actor's 8-byte counter state and
//       self, a noop payload): the reference run posts them through nginx to spawn-bench-host,
//       which then answers exactly what it answers the proxy.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench_messages.hpp"

namespace {

struct Options {
  std::string command;
  std::string system = "bench";
  std::string prefix = "a";
  std::size_t actors = 1000;
  std::int64_t deactivation_ms = 600000;
  std::string action = "inc";
  std::vector<std::pair<std::string, std::string>> metadata;
  std::string out;
};

int usage() {
  std::fprintf(stderr,
               "usage: spawn-bench-requests registration --system S --prefix P --actors N "
               "[--deactivation-ms MS] --out FILE\n"
               "       spawn-bench-requests invocations --system S --prefix P --actors N "
               "--action A [--metadata KEY=VALUE]... --out FILE\n"
               "       spawn-bench-requests host-invocations (the options of invocations)\n");
  return 2;
}

bool parse(int argc, char** argv, Options& options) {
  if (argc < 2) {
    return false;
  }
  options.command = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--system") {
      options.system = value;
    } else if (flag == "--prefix") {
      options.prefix = value;
    } else if (flag == "--actors") {
      options.actors = std::strtoull(value.c_str(), nullptr, 10);
    } else if (flag == "--deactivation-ms") {
      options.deactivation_ms = std::strtoll(value.c_str(), nullptr, 10);
    } else if (flag == "--action") {
      options.action = value;
    } else if (flag == "--metadata") {
      const auto eq = value.find('=');
      if (eq == std::string::npos) {
        return false;
      }
      options.metadata.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else if (flag == "--out") {
      options.out = value;
    } else {
      return false;
    }
  }
  return (argc % 2) == 0 && !options.out.empty() && options.actors > 0;
}

void append_u32(std::string& out, std::size_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xFF));
  }
}

bool write_file(const std::string& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  file.close();
  if (!file) {
    std::fprintf(stderr, "spawn-bench-requests: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse(argc, argv, options)) {
    return usage();
  }
  std::string bytes;
  if (options.command == "registration") {
    bytes = spawn::bench::counters_registration(options.system, options.prefix, options.actors,
                                                options.deactivation_ms)
                .SerializeAsString();
  } else if (options.command == "invocations") {
    for (std::size_t i = 0; i < options.actors; ++i) {
      const std::string actor = spawn::bench::actor_name(options.prefix, i);
      const std::string path = spawn::bench::invoke_path(options.system, actor);
      const std::string body =
          spawn::bench::invocation(options.system, actor, options.action, options.metadata)
              .SerializeAsString();
      append_u32(bytes, path.size());
      bytes += path;
      append_u32(bytes, body.size());
      bytes += body;
    }
  } else if (options.command == "host-invocations") {
    const std::string path = "/api/v1/actors/actions";
    for (std::size_t i = 0; i < options.actors; ++i) {
      const std::string actor = spawn::bench::actor_name(options.prefix, i);
      const std::string body =
          spawn::bench::host_invocation(options.system, actor, options.action, options.metadata)
              .SerializeAsString();
      append_u32(bytes, path.size());
      bytes += path;
      append_u32(bytes, body.size());
      bytes += body;
    }
  } else {
    return usage();
  }
  return write_file(options.out, bytes) ? 0 : 1;
}
