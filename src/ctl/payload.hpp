#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/any.pb.h>

#include "spawn/result.hpp"

namespace spawn::ctl {

/// Protobuf message types read from .proto files at run time, so that payloads can be written and
/// shown as JSON without compiling anything.
class TypeRegistry {
public:
  TypeRegistry();
  ~TypeRegistry();
  TypeRegistry(TypeRegistry&&) noexcept;
  TypeRegistry& operator=(TypeRegistry&&) noexcept;

  /// Parses `proto_files`, resolving imports in `include_dirs` (the folder of each file and the
  /// system's protobuf includes are searched too). kInvalidArgument with the parser's messages.
  static Result<TypeRegistry> load(const std::vector<std::string>& proto_files,
                                   std::vector<std::string> include_dirs);

  /// Packs `json` as a message of `type` (full name, e.g. "bank.Deposit") into an Any with type
  /// URL type.googleapis.com/<type>. kInvalidArgument for an unknown type or JSON that does not
  /// fit.
  Result<google::protobuf::Any> pack(const std::string& type, const std::string& json) const;

  /// Renders `any` as JSON when its type is known here.
  std::optional<std::string> render(const google::protobuf::Any& any) const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Packs a JSON text as Spawn's `JSONType{content}` (what JSON actors carry).
google::protobuf::Any pack_json(std::string json);

/// Shows `any` for a person: JSONType content as it is, a known type as JSON, anything else as its
/// type URL and base64 bytes.
std::string describe(const google::protobuf::Any& any, const TypeRegistry& types);

}  // namespace spawn::ctl
