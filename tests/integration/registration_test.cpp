// PROTOCOL.md §5.1 and §8 item 1: registration through POST /api/v1/system.

#include "integration/proxy_fixture.hpp"

namespace spawn::integration {
namespace {

class ProxyRegistrationTest : public ProxyTest {
protected:
  void SetUp() override { start_proxy(); }
};

TEST_F(ProxyRegistrationTest, AnswersAcceptedWithProxyInfo) {
  auto response = client_->register_system(
      make_registration({{.name = "counter", .actions = {"inc"}, .stateful = false}}));

  ASSERT_TRUE(response) << response.error().message << log();
  EXPECT_EQ(client_->last_status(), 200u) << log();
  EXPECT_EQ(response->status().status(), pb::OK) << log();
  EXPECT_EQ(response->status().message(), "Accepted") << log();
  EXPECT_TRUE(response->has_proxy_info()) << log();
}

TEST_F(ProxyRegistrationTest, ReRegistrationWithOtherActorsAddsThemAndKeepsTheFirst) {
  ASSERT_TRUE(register_actors({{.name = "first", .actions = {"hello"}, .stateful = false}}));
  ASSERT_TRUE(register_actors({{.name = "second", .actions = {"hello"}, .stateful = false}}));

  EXPECT_TRUE(is_ok(invoke("first", "hello")));
  EXPECT_TRUE(is_ok(invoke("second", "hello")));
  EXPECT_EQ(host_.count("hello"), 2);
}

TEST_F(ProxyRegistrationTest, ReRegistrationReplacesTheDefinition) {
  ASSERT_TRUE(register_actors({{.name = "evolving", .actions = {"v1"}, .stateful = false}}));
  ASSERT_TRUE(register_actors({{.name = "evolving", .actions = {"v1", "v2"}, .stateful = false}}));

  EXPECT_TRUE(is_ok(invoke("evolving", "v2")));
  EXPECT_EQ(host_.count("v2"), 1);
}

TEST_F(ProxyRegistrationTest, PooledActorRegistrationIsAccepted) {
  EXPECT_TRUE(register_actors({{.name = "workers",
                                .actions = {"work"},
                                .kind = pba::POOLED,
                                .stateful = false,
                                .min_pool_size = 1,
                                .max_pool_size = 4}}));
}

TEST_F(ProxyRegistrationTest, RegistrationWithUnknownFieldsIsAccepted) {
  // Newer SDKs send HEAD-only fields (ActorSettings 7/8); decoders must ignore them (§1).
  auto request = make_registration({{.name = "modern", .actions = {"hello"}, .stateful = false}});
  auto* settings = (*request.mutable_actor_system()->mutable_registry()->mutable_actors())["modern"]
                       .mutable_settings();
  settings->GetReflection()->MutableUnknownFields(settings)->AddLengthDelimited(8, "json");

  auto response = client_->register_system(request);

  ASSERT_TRUE(response) << response.error().message << log();
  EXPECT_EQ(response->status().message(), "Accepted") << log();
  EXPECT_TRUE(is_ok(invoke("modern", "hello")));
}

}  // namespace
}  // namespace spawn::integration
