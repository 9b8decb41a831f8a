#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ctl/proxy_connection.hpp"

namespace spawn::ctl {

/// Exit codes of spawnctl.
enum ExitCode : int {
  kExitOk = 0,
  /// The proxy answered with an error (unknown actor, host failure, ...).
  kExitFailed = 1,
  /// The command line or a payload is wrong.
  kExitUsage = 2,
  /// The proxy cannot be reached.
  kExitUnreachable = 3,
};

/// Options every command shares.
struct CommonOptions {
  ProxyAddress proxy;
  /// .proto files whose message types payloads may use (--proto).
  std::vector<std::string> protos;
  std::vector<std::string> include_dirs;
};

/// A payload as given on the command line: JSON for a JSONType, or JSON of a named message type.
struct PayloadOptions {
  std::optional<std::string> json;
  std::optional<std::string> type;
  std::optional<std::string> data;
};

struct InvokeOptions {
  std::string system;
  std::string actor;
  std::string action;
  PayloadOptions payload;
  bool async = false;
  std::int64_t delay_ms = 0;
  std::int64_t at_ms = 0;
  std::string parent;  // register_ref
  bool pooled = false;
  std::map<std::string, std::string> metadata;
};

struct LoadOptions {
  std::string system;
  /// Actor name; with `actors` > 1, names are "<actor>-0" … "<actor>-<n-1>" (spawned from
  /// `parent` when it is set).
  std::string actor;
  std::string action;
  std::string parent;
  int actors = 1;
  int requests = 10000;
  int concurrency = 16;
  PayloadOptions payload;
};

/// Each command prints its result to `out` and problems to `err`, and returns an ExitCode.
int invoke(const CommonOptions& common, const InvokeOptions& options, std::ostream& out,
           std::ostream& err);
int state(const CommonOptions& common, const std::string& system, const std::string& actor,
          std::ostream& out, std::ostream& err);
int spawn_actor(const CommonOptions& common, const std::string& system, const std::string& name,
                const std::string& parent, std::optional<std::int64_t> revision, std::ostream& out,
                std::ostream& err);
/// Registers the actor system described by the JSON file `path` (an ActorSystem in protobuf's
/// JSON mapping, e.g. {"name":"shop","registry":{"actors":{"cart":{...}}}}).
int register_system(const CommonOptions& common, const std::string& path, std::ostream& out,
                    std::ostream& err);
int list_actors(const CommonOptions& common, const std::string& system, std::ostream& out,
                std::ostream& err);
/// Prints the nodes of the proxy's cluster: name, address, active and registered actors.
int show_cluster(const CommonOptions& common, std::ostream& out, std::ostream& err);
/// Prints the node that owns `actor` of `system`.
int where(const CommonOptions& common, const std::string& system, const std::string& actor,
          std::ostream& out, std::ostream& err);
/// Runs a load and shows its progress on `err` (a bar when `err` is a terminal).
int load(const CommonOptions& common, const LoadOptions& options, std::ostream& out,
         std::ostream& err, bool progress_bar);

}  // namespace spawn::ctl
