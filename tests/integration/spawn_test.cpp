// PROTOCOL.md §5.2, §5.7 and §8 item 7: spawning children of UNNAMED actors.

#include "integration/proxy_fixture.hpp"

namespace spawn::integration {
namespace {

class ProxySpawnTest : public ProxyTest {
protected:
  void SetUp() override {
    host_.on("inc", increment_handler());
    start_proxy();
    ASSERT_TRUE(register_actors({{.name = "template",
                                  .actions = {"hello", "inc"},
                                  .kind = pba::UNNAMED,
                                  .stateful = false,
                                  .initial_state = "10",
                                  .tags = {{"origin", "template"}}}}));
  }

  static pb::SpawnRequest spawn_request(const std::string& child, const std::string& parent) {
    pb::SpawnRequest request;
    auto* id = request.add_actors();
    id->set_name(child);
    id->set_system(kSystem);
    id->set_parent(parent);
    return request;
  }

  ::testing::AssertionResult spawn_ok(const std::string& child,
                                      const std::string& parent = "template") {
    auto response = client_->spawn(kSystem, spawn_request(child, parent));
    if (!response) {
      return ::testing::AssertionFailure()
             << "spawn transport failure: " << response.error().message << log();
    }
    if (response->status().status() != pb::OK || response->status().message() != "Accepted") {
      return ::testing::AssertionFailure()
             << "spawn answered " << pb::Status_Name(response->status().status()) << " '"
             << response->status().message() << "' (HTTP " << client_->last_status() << ")"
             << log();
    }
    return ::testing::AssertionSuccess();
  }
};

TEST_F(ProxySpawnTest, SpawnedChildReachesTheHostWithParentSet) {
  ASSERT_TRUE(spawn_ok("child-1"));

  ASSERT_TRUE(is_ok(invoke("child-1", "hello")));

  ASSERT_EQ(host_.count("hello"), 1);
  const auto invocation = host_.received().back();
  EXPECT_EQ(invocation.actor().name(), "child-1");
  EXPECT_EQ(invocation.actor().system(), kSystem);
  EXPECT_EQ(invocation.actor().parent(), "template") << log();
  EXPECT_EQ(invocation.current_context().self().name(), "child-1");
  EXPECT_EQ(invocation.current_context().self().parent(), "template");
}

TEST_F(ProxySpawnTest, SpawnDoesNotActivateTheChild) {
  ASSERT_TRUE(spawn_ok("lazy-child"));

  EXPECT_TRUE(host_.received().empty()) << log();
}

TEST_F(ProxySpawnTest, ChildStartsFromTheTemplatesInitialStateAndTags) {
  ASSERT_TRUE(spawn_ok("child-state"));

  const auto response = invoke("child-state", "inc");

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), "11") << log();
  EXPECT_EQ(host_.received().back().current_context().tags().count("origin"), 1u);
}

TEST_F(ProxySpawnTest, ChildrenKeepSeparateState) {
  ASSERT_TRUE(spawn_ok("child-a"));
  ASSERT_TRUE(spawn_ok("child-b"));

  ASSERT_TRUE(is_ok(invoke("child-a", "inc")));
  ASSERT_TRUE(is_ok(invoke("child-a", "inc")));
  const auto b = invoke("child-b", "inc");

  ASSERT_TRUE(is_ok(b));
  EXPECT_EQ(json_of(b.value()), "11") << log();
}

TEST_F(ProxySpawnTest, RespawningAnExistingChildSucceeds) {
  ASSERT_TRUE(spawn_ok("again"));
  ASSERT_TRUE(is_ok(invoke("again", "hello")));

  EXPECT_TRUE(spawn_ok("again"));
  EXPECT_TRUE(is_ok(invoke("again", "hello")));
}

TEST_F(ProxySpawnTest, SpawnWithSeveralIdsCreatesEach) {
  auto request = spawn_request("multi-1", "template");
  *request.add_actors() = spawn_request("multi-2", "template").actors(0);

  auto response = client_->spawn(kSystem, request);

  ASSERT_TRUE(response) << response.error().message;
  ASSERT_EQ(response->status().status(), pb::OK) << response->status().message() << log();
  EXPECT_TRUE(is_ok(invoke("multi-1", "hello")));
  EXPECT_TRUE(is_ok(invoke("multi-2", "hello")));
}

TEST_F(ProxySpawnTest, SpawnFromUnknownParentAnswersError) {
  auto response = client_->spawn(kSystem, spawn_request("orphan", "no-such-template"));

  ASSERT_TRUE(response) << response.error().message << log();
  EXPECT_EQ(client_->last_status(), 500u);
  EXPECT_EQ(response->status().status(), pb::ERROR) << log();
  // Elixir answers exactly this; details may follow it (no SDK reads the message).
  EXPECT_EQ(response->status().message().rfind("Error on create Actors", 0), 0u)
      << response->status().message();
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxySpawnTest, RegisterRefSpawnsTheChildBeforeInvoking) {
  auto request = make_request("ref-child", "hello");
  request.set_register_ref("template");

  ASSERT_TRUE(is_ok(invoke(request)));

  ASSERT_EQ(host_.count("hello"), 1);
  const auto invocation = host_.received().back();
  EXPECT_EQ(invocation.actor().name(), "ref-child");
  EXPECT_EQ(invocation.actor().parent(), "template") << log();
}

TEST_F(ProxySpawnTest, RepeatedRegisterRefIsHarmlessAndKeepsState) {
  for (int i = 1; i <= 3; ++i) {
    auto request = make_request("ref-counter", "inc");
    request.set_register_ref("template");
    const auto response = invoke(request);
    ASSERT_TRUE(is_ok(response)) << "call " << i;
    EXPECT_EQ(json_of(response.value()), std::to_string(10 + i)) << log();
  }
}

TEST_F(ProxySpawnTest, RegisterRefWithUnknownParentAnswersError) {
  auto request = make_request("ref-orphan", "hello");
  request.set_register_ref("no-such-template");

  EXPECT_TRUE(is_error(invoke(request)));
  EXPECT_EQ(host_.count("hello"), 0);
  EXPECT_TRUE(still_serves());
}

}  // namespace
}  // namespace spawn::integration
