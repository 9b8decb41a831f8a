// Tests of the test support itself: TestHost, HttpClient, free_port() and TempDir.

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "support/http_client.hpp"
#include "support/proxy_process.hpp"
#include "support/test_host.hpp"

namespace spawn::testing {
namespace {

pb::ActorInvocation make_invocation(std::string action) {
  pb::ActorInvocation invocation;
  invocation.mutable_actor()->set_name("counter");
  invocation.mutable_actor()->set_system("spawn-system");
  invocation.set_action_name(std::move(action));
  *invocation.mutable_current_context()->mutable_state() = pack_json(R"({"n":1})");
  (*invocation.mutable_current_context()->mutable_tags())["k"] = "v";
  return invocation;
}

Result<pb::ActorInvocationResponse> post(HttpClient& client,
                                         const pb::ActorInvocation& invocation) {
  Result<HttpClient::Response> reply =
      client.request("POST", "/api/v1/actors/actions", invocation.SerializeAsString());
  if (!reply) {
    return reply.error();
  }
  pb::ActorInvocationResponse response;
  if (reply->status != 200 || !response.ParseFromString(reply->body)) {
    return fail(ErrorCode::kBadHostResponse, "HTTP " + std::to_string(reply->status));
  }
  return response;
}

TEST(TestHostTest, EchoesTheContextForAnActionWithoutHandler) {
  TestHost host;
  HttpClient client(host.port());

  Result<pb::ActorInvocationResponse> response = post(client, make_invocation("anything"));

  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->updated_context().state().value(), pack_json(R"({"n":1})").value());
  EXPECT_EQ(response->updated_context().tags().at("k"), "v");
  EXPECT_FALSE(response->has_value());
  EXPECT_TRUE(response->has_workflow());
  EXPECT_EQ(host.count("anything"), 1);
}

TEST(TestHostTest, AnswersWithTheHandlerOfTheAction) {
  TestHost host;
  host.on("inc", [](const pb::ActorInvocation& invocation) {
    pb::ActorInvocationResponse response = echo_response(invocation);
    *response.mutable_value() = pack_json("2");
    return response;
  });
  HttpClient client(host.port());

  Result<pb::ActorInvocationResponse> response = post(client, make_invocation("inc"));

  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->value().value(), pack_json("2").value());
}

TEST(TestHostTest, AnswersAThrowingHandlerWith400AndAnEmptyBody) {
  TestHost host;
  host.on("boom", [](const pb::ActorInvocation&) -> pb::ActorInvocationResponse {
    throw std::runtime_error("user code failed");
  });
  HttpClient client(host.port());

  Result<HttpClient::Response> reply =
      client.request("POST", "/api/v1/actors/actions", make_invocation("boom").SerializeAsString());

  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(reply->status, 400U);
  EXPECT_TRUE(reply->body.empty());
}

TEST(TestHostTest, AnswersOtherPathsWith404) {
  TestHost host;
  HttpClient client(host.port());

  Result<HttpClient::Response> reply = client.request("GET", "/api/v1/actors/actions?x=1");

  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(reply->status, 404U);
  EXPECT_EQ(reply->headers.at("content-type"), "application/octet-stream");
  EXPECT_EQ(host.received().size(), 0U);
}

TEST(TestHostTest, RefusesConnectionsWhileStoppedAndServesTheSamePortAfterStart) {
  TestHost host;
  const std::uint16_t port = host.port();
  HttpClient client(port);
  ASSERT_TRUE(post(client, make_invocation("a")));

  host.stop();
  Result<pb::ActorInvocationResponse> while_down = post(client, make_invocation("a"));
  host.start();
  Result<pb::ActorInvocationResponse> after = post(client, make_invocation("a"));

  ASSERT_FALSE(while_down);
  EXPECT_EQ(while_down.error().code, ErrorCode::kUnavailable);
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(host.port(), port);
  EXPECT_EQ(host.count("a"), 2);
}

TEST(HttpClientTest, ReconnectsAfterTheServerClosedTheConnection) {
  TestHost host;
  host.on_raw("close", [](const pb::ActorInvocation& invocation) {
    HostReply reply;
    reply.body = echo_response(invocation).SerializeAsString();
    reply.close = true;
    return reply;
  });
  HttpClient client(host.port());

  ASSERT_TRUE(post(client, make_invocation("close")));
  ASSERT_TRUE(post(client, make_invocation("next")));

  EXPECT_EQ(host.accepted_connections(), 2);
}

TEST(HttpClientTest, SendsRawBytes) {
  TestHost host;
  HttpClient client(host.port());

  Result<HttpClient::Response> reply = client.raw("GET /nothing HTTP/1.1\r\nhost: x\r\n\r\n");

  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(reply->status, 404U);
}

TEST(FreePortTest, ReturnsANonZeroPort) {
  EXPECT_NE(free_port(), 0);
}

TEST(TempDirTest, RemovesItsContentsOnDestruction) {
  std::filesystem::path path;
  {
    TempDir dir;
    path = dir.path();
    ASSERT_TRUE(std::filesystem::is_directory(path));
    std::ofstream(path / "file") << "data";
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace spawn::testing
