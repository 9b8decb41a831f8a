#include "ctl/payload.hpp"

#include <filesystem>

#include <google/protobuf/compiler/importer.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>

#include "protocol/messages.hpp"
#include "statestore/base64.hpp"

namespace spawn::ctl {

namespace gp = google::protobuf;

namespace {

constexpr std::string_view kTypePrefix = "type.googleapis.com/";
constexpr std::string_view kJsonType = "eigr.functions.protocol.JSONType";

class CollectErrors final : public gp::compiler::MultiFileErrorCollector {
public:
  void AddError(const std::string& file, int line, int column,
                const std::string& message) override {
    text += file + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": "
            + message + "\n";
  }

  std::string text;
};

}  // namespace

struct TypeRegistry::Impl {
  gp::compiler::DiskSourceTree tree;
  CollectErrors errors;
  std::unique_ptr<gp::compiler::Importer> importer;
  gp::DynamicMessageFactory factory;

  const gp::Descriptor* find(std::string_view name) const {
    if (!importer) {
      return nullptr;
    }
    return importer->pool()->FindMessageTypeByName(std::string(name));
  }
};

TypeRegistry::TypeRegistry() : impl_(std::make_unique<Impl>()) {}

TypeRegistry::~TypeRegistry() = default;

TypeRegistry::TypeRegistry(TypeRegistry&&) noexcept = default;

TypeRegistry& TypeRegistry::operator=(TypeRegistry&&) noexcept = default;

Result<TypeRegistry> TypeRegistry::load(const std::vector<std::string>& proto_files,
                                        std::vector<std::string> include_dirs) {
  TypeRegistry registry;
  auto& impl = *registry.impl_;
  std::vector<std::string> virtual_names;
  for (const auto& file : proto_files) {
    std::filesystem::path path(file);
    if (!std::filesystem::exists(path)) {
      return fail(ErrorCode::kInvalidArgument, "proto file '" + file + "' does not exist");
    }
    include_dirs.push_back(path.parent_path().empty() ? "." : path.parent_path().string());
  }
  include_dirs.emplace_back("/usr/include");  // google/protobuf/*.proto from libprotobuf-dev
  for (const auto& dir : include_dirs) {
    impl.tree.MapPath("", dir);
  }
  impl.importer = std::make_unique<gp::compiler::Importer>(&impl.tree, &impl.errors);
  for (const auto& file : proto_files) {
    std::string virtual_name;
    std::string shadowing;
    auto mapped = impl.tree.DiskFileToVirtualFile(file, &virtual_name, &shadowing);
    if (mapped != gp::compiler::DiskSourceTree::SUCCESS) {
      virtual_name = std::filesystem::path(file).filename().string();
    }
    if (impl.importer->Import(virtual_name) == nullptr) {
      return fail(ErrorCode::kInvalidArgument, "cannot load '" + file + "':\n" + impl.errors.text);
    }
  }
  return registry;
}

Result<gp::Any> TypeRegistry::pack(const std::string& type, const std::string& json) const {
  const auto* descriptor = impl_->find(type);
  if (descriptor == nullptr) {
    return fail(ErrorCode::kInvalidArgument,
                "message type '" + type + "' is not in the loaded .proto files (use --proto FILE "
                "and the full name, e.g. bank.Deposit)");
  }
  std::unique_ptr<gp::Message> message(impl_->factory.GetPrototype(descriptor)->New());
  auto status = gp::util::JsonStringToMessage(json, message.get());
  if (!status.ok()) {
    return fail(ErrorCode::kInvalidArgument,
                "JSON does not fit " + type + ": " + std::string(status.message()));
  }
  gp::Any any;
  any.set_type_url(std::string(kTypePrefix) + type);
  any.set_value(message->SerializeAsString());
  return any;
}

std::optional<std::string> TypeRegistry::render(const gp::Any& any) const {
  auto slash = any.type_url().rfind('/');
  auto name = slash == std::string::npos ? any.type_url() : any.type_url().substr(slash + 1);
  const auto* descriptor = impl_->find(name);
  if (descriptor == nullptr) {
    return std::nullopt;
  }
  std::unique_ptr<gp::Message> message(impl_->factory.GetPrototype(descriptor)->New());
  if (!message->ParseFromString(any.value())) {
    return std::nullopt;
  }
  std::string json;
  gp::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  if (!gp::util::MessageToJsonString(*message, &json, options).ok()) {
    return std::nullopt;
  }
  return json;
}

gp::Any pack_json(std::string json) {
  protocol::pb::JSONType content;
  content.set_content(std::move(json));
  gp::Any any;
  any.set_type_url(std::string(kTypePrefix) + std::string(kJsonType));
  any.set_value(content.SerializeAsString());
  return any;
}

std::string describe(const gp::Any& any, const TypeRegistry& types) {
  if (any.type_url().ends_with(std::string("/") + std::string(kJsonType))) {
    protocol::pb::JSONType content;
    if (content.ParseFromString(any.value())) {
      return content.content();
    }
  }
  if (auto json = types.render(any)) {
    return *json;
  }
  return any.type_url() + " (" + std::to_string(any.value().size())
         + " bytes, base64: " + statestore::base64_encode(any.value()) + ")";
}

}  // namespace spawn::ctl
