// PROTOCOL.md §3, §5.4 and §8 item 4; DESIGN.md decision 8: untrusted requests get a clear,
// parseable error and the proxy keeps serving.

#include <string>

#include "integration/proxy_fixture.hpp"

namespace spawn::integration {
namespace {

using testing::pack_json;

const std::string kInvokePath = "/api/v1/system/it-system/actors/counter/invoke";

/// The first bytes of `body` with non-printable bytes as '.', for failure messages.
std::string printable(const std::string& body) {
  std::string out = body.substr(0, 200);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) {
      c = '.';
    }
  }
  return out;
}

class ProxyBadInputTest : public ProxyTest {
protected:
  void SetUp() override {
    host_.on("inc", increment_handler());
    start_proxy();
    ASSERT_TRUE(register_actors({{.name = "counter", .actions = {"inc"}, .stateful = false}}));
  }

  /// POSTs `body` to `path` and returns the raw answer (fails the test on transport errors).
  testing::HttpClient::Response post(
      const std::string& path, const std::string& body,
      std::optional<std::string> content_type = "application/octet-stream") {
    auto response = client_->http().request("POST", path, body, std::move(content_type));
    if (!response) {
      ADD_FAILURE() << "POST " << path << " failed in transport: " << response.error().message
                    << log();
      return {};
    }
    return std::move(*response);
  }

  /// Succeeds when `body` decodes as `Message` with status ERROR and a message.
  template <class Message>
  ::testing::AssertionResult is_error_body(const std::string& body) const {
    Message message;
    if (!message.ParseFromString(body)) {
      return ::testing::AssertionFailure()
             << "the body is not a " << message.GetTypeName() << " (" << body.size() << " bytes): '"
             << printable(body) << "'" << log();
    }
    if (message.status().status() != pb::ERROR || message.status().message().empty()) {
      return ::testing::AssertionFailure()
             << "expected ERROR with a message, got " << pb::Status_Name(message.status().status())
             << " '" << message.status().message() << "'" << log();
    }
    return ::testing::AssertionSuccess();
  }
};

TEST_F(ProxyBadInputTest, GarbageInvokeBodyAnswers400WithAnErrorResponse) {
  const std::string garbage = "\xff\xff\xff\xff\xff this is not protobuf";
  ASSERT_FALSE(pb::InvocationRequest().ParseFromString(garbage)) << "precondition";

  const auto response = post(kInvokePath, garbage);

  EXPECT_EQ(response.status, 400u) << log();
  EXPECT_TRUE(is_error_body<pb::InvocationResponse>(response.body));
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, TruncatedProtobufAnswers400WithAnErrorResponse) {
  const std::string full =
      make_request("counter", "inc", pack_json(std::string(200, 'x'))).SerializeAsString();
  const std::string truncated = full.substr(0, full.size() - 50);
  ASSERT_FALSE(pb::InvocationRequest().ParseFromString(truncated)) << "precondition";

  const auto response = post(kInvokePath, truncated);

  EXPECT_EQ(response.status, 400u) << log();
  EXPECT_TRUE(is_error_body<pb::InvocationResponse>(response.body));
  EXPECT_EQ(host_.count("inc"), 0);
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, GarbageRegistrationBodyAnswersAnErrorRegistrationResponse) {
  const auto response = post("/api/v1/system", "\xff\xff\xff\xff garbage");

  EXPECT_EQ(response.status, 400u) << log();
  EXPECT_TRUE(is_error_body<pb::RegistrationResponse>(response.body));
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, GarbageSpawnBodyAnswersAnErrorSpawnResponse) {
  const auto response = post("/api/v1/system/it-system/actors/spawn", "\xff\xff\xff\xff garbage");

  EXPECT_EQ(response.status, 400u) << log();
  EXPECT_TRUE(is_error_body<pb::SpawnResponse>(response.body));
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, OversizedBodyAnswers413WithAnErrorResponse) {
  stop_proxy(SIGKILL);
  start_proxy({{"SPAWN_PROXY_MAX_BODY_BYTES", "65536"}});
  ASSERT_TRUE(register_actors({{.name = "counter", .actions = {"inc"}, .stateful = false}}));
  const std::string body =
      make_request("counter", "inc", pack_json(std::string(100 * 1024, 'x'))).SerializeAsString();

  const auto response = post(kInvokePath, body);

  EXPECT_EQ(response.status, 413u) << log();
  EXPECT_TRUE(is_error_body<pb::InvocationResponse>(response.body));
  EXPECT_EQ(host_.count("inc"), 0);
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, BodyJustUnderTheLimitIsServed) {
  stop_proxy(SIGKILL);
  start_proxy({{"SPAWN_PROXY_MAX_BODY_BYTES", "65536"}});
  ASSERT_TRUE(register_actors({{.name = "counter", .actions = {"inc"}, .stateful = false}}));
  const auto request = make_request("counter", "inc", pack_json(std::string(60 * 1024, 'x')));
  ASSERT_LT(request.ByteSizeLong(), 65536u);

  EXPECT_TRUE(is_ok(invoke(request)));
}

TEST_F(ProxyBadInputTest, BodyOverTheDefault8MiBLimitAnswers413) {
  const std::string body =
      make_request("counter", "inc", pack_json(std::string(9 * 1024 * 1024, 'x')))
          .SerializeAsString();

  const auto response = post(kInvokePath, body);

  EXPECT_EQ(response.status, 413u) << log();
  EXPECT_TRUE(is_error_body<pb::InvocationResponse>(response.body));
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, UnknownPathAnswers404NotFound) {
  auto response = client_->http().request("GET", "/no/such/path");

  ASSERT_TRUE(response) << response.error().message << log();
  EXPECT_EQ(response->status, 404u);
  EXPECT_EQ(response->body, "Not found!");
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, UnknownPathInsideApiAnswers404NotFound) {
  const auto response = post("/api/v1/system/it-system/actors/counter/explode", "");

  EXPECT_EQ(response.status, 404u) << log();
  EXPECT_EQ(response.body, "Not found!");
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, WrongMethodOnInvokeAnswers405) {
  auto response = client_->http().request("GET", kInvokePath);

  ASSERT_TRUE(response) << response.error().message << log();
  EXPECT_EQ(response->status, 405u) << log();
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, WrongMethodOnRegistrationAnswers405) {
  auto response = client_->http().request("PUT", "/api/v1/system");

  ASSERT_TRUE(response) << response.error().message << log();
  EXPECT_EQ(response->status, 405u) << log();
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, MissingContentTypeIsAcceptedAsProtobuf) {
  const auto response =
      post(kInvokePath, make_request("counter", "inc").SerializeAsString(), std::nullopt);

  ASSERT_EQ(response.status, 200u) << log();
  pb::InvocationResponse decoded;
  ASSERT_TRUE(decoded.ParseFromString(response.body));
  EXPECT_TRUE(is_ok(decoded));
  EXPECT_EQ(json_of(decoded.value()), "1");
}

TEST_F(ProxyBadInputTest, ApplicationProtobufContentTypeIsAccepted) {
  const auto response =
      post(kInvokePath, make_request("counter", "inc").SerializeAsString(), "application/protobuf");

  ASSERT_EQ(response.status, 200u) << log();
  pb::InvocationResponse decoded;
  ASSERT_TRUE(decoded.ParseFromString(response.body));
  EXPECT_TRUE(is_ok(decoded));
}

TEST_F(ProxyBadInputTest, UnknownSystemAnswersErrorNamingIt) {
  const auto response = invoke(make_request("counter", "inc", std::nullopt, "nowhere-system"));

  EXPECT_EQ(last_status(), 500u);
  ASSERT_TRUE(is_error(response));
  EXPECT_NE(response.status().message().find("nowhere-system"), std::string::npos)
      << response.status().message();
  EXPECT_NE(response.status().message().find("not registered"), std::string::npos)
      << response.status().message();
  EXPECT_EQ(host_.count("inc"), 0);
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, UnknownActorAnswersErrorActorNotFound) {
  const auto response = invoke("ghost", "inc");

  EXPECT_EQ(last_status(), 500u);
  ASSERT_TRUE(is_error(response));
  EXPECT_NE(response.status().message().find("Actor ghost not found on ActorSystem it-system"),
            std::string::npos)
      << response.status().message();
  EXPECT_FALSE(response.has_system()) << "system and actor are unset on errors (§3)";
  EXPECT_FALSE(response.has_actor());
  EXPECT_TRUE(host_.received().empty());
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, UnknownActionAnswersErrorWithoutCallingHost) {
  const auto response = invoke("counter", "fly");

  EXPECT_EQ(last_status(), 500u);
  ASSERT_TRUE(is_error(response));
  EXPECT_EQ(response.status().message(), "Action [fly] not found for Actor [counter]");
  EXPECT_TRUE(host_.received().empty()) << "the host must not be called";
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, UnknownActionLeavesTheStateUnchanged) {
  ASSERT_TRUE(is_ok(invoke("counter", "inc")));
  ASSERT_TRUE(is_error(invoke("counter", "fly")));

  const auto response = invoke("counter", "inc");

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), "2") << log();
}

TEST_F(ProxyBadInputTest, EmptyActorNameAnswersError) {
  // The proxy routes by the body (§3), so the path names a real actor; the body names none.
  const auto response = post(kInvokePath, make_request("", "inc").SerializeAsString());

  EXPECT_TRUE(response.status == 400u || response.status == 500u) << "HTTP " << response.status;
  EXPECT_TRUE(is_error_body<pb::InvocationResponse>(response.body));
  EXPECT_TRUE(host_.received().empty());
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, EmptyActionNameAnswersError) {
  const auto response = invoke("counter", "");

  EXPECT_TRUE(is_error(response));
  EXPECT_TRUE(host_.received().empty());
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, EmptyBodyAnswersError) {
  // An empty body decodes as an InvocationRequest with no actor and no action.
  const auto response = post(kInvokePath, "");

  EXPECT_TRUE(response.status == 400u || response.status == 500u) << "HTTP " << response.status;
  EXPECT_TRUE(is_error_body<pb::InvocationResponse>(response.body));
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBadInputTest, MalformedHttpIsRejectedAndTheProxyKeepsServing) {
  testing::HttpClient raw_client(proxy_->port());
  auto response = raw_client.raw("THIS IS NOT HTTP\r\n\r\n");

  if (response) {
    EXPECT_GE(response->status, 400u);
  }
  EXPECT_TRUE(still_serves());
}

}  // namespace
}  // namespace spawn::integration
