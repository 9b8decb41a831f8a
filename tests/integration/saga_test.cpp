// Sagas through the real proxy: POST /api/v1/system/{system}/sagas (docs/workflows.md).

#include <gtest/gtest.h>

#include "spawn/saga.pb.h"

#include "proxy_fixture.hpp"

namespace spawn::integration {
namespace {

namespace sg = ::spawn::saga;

class ProxySagaTest : public ProxyTest {
protected:
  void SetUp() override {
    start_proxy();
    host_.on_raw("fail", [](const pb::ActorInvocation&) {
      return testing::HostReply{400, "", false, false, {}};  // the Node host's answer to a throw
    });
    ASSERT_TRUE(register_actors({{.name = "wallet", .actions = {"debit", "refund"}},
                                 {.name = "stock", .actions = {"reserve", "release"}},
                                 {.name = "courier", .actions = {"fail"}}}));
  }

  static void step(sg::SagaRequest& saga, const std::string& actor, const std::string& action,
                   const std::string& compensation) {
    auto* s = saga.add_steps();
    s->mutable_actor()->set_name(actor);
    s->set_action(action);
    s->set_compensation(compensation);
  }

  std::pair<unsigned, sg::SagaResponse> post(const sg::SagaRequest& saga, const char* target) {
    auto reply = client_->http().request("POST", target, encode(saga));
    EXPECT_TRUE(reply) << reply.error().message;
    sg::SagaResponse response;
    if (reply) {
      EXPECT_TRUE(response.ParseFromString(reply->body)) << "not a SagaResponse" << log();
      return {reply->status, response};
    }
    return {0, response};
  }

  std::vector<std::string> actions_received() const {
    std::vector<std::string> actions;
    for (const auto& invocation : host_.received()) {
      actions.push_back(invocation.actor().name() + "." + invocation.action_name());
    }
    return actions;
  }
};

TEST_F(ProxySagaTest, CompletedSagaAnswersOkWithEveryResult) {
  sg::SagaRequest saga;
  step(saga, "wallet", "debit", "refund");
  step(saga, "stock", "reserve", "release");
  auto [status, response] = post(saga, "/api/v1/system/it-system/sagas");
  EXPECT_EQ(status, 200U);
  EXPECT_EQ(response.status().status(), pb::OK) << response.status().message() << log();
  EXPECT_EQ(response.outcome(), sg::COMPLETED);
  EXPECT_EQ(response.results_size(), 2);
  EXPECT_FALSE(response.id().empty());
}

TEST_F(ProxySagaTest, ThirdStepFailingRunsTheTwoCompensationsInReverseOrder) {
  sg::SagaRequest saga;
  step(saga, "wallet", "debit", "refund");
  step(saga, "stock", "reserve", "release");
  step(saga, "courier", "fail", "");
  auto [status, response] = post(saga, "/api/v1/system/it-system/sagas");
  EXPECT_EQ(status, 500U);
  EXPECT_EQ(response.status().status(), pb::ERROR);
  EXPECT_EQ(response.outcome(), sg::COMPENSATED) << response.status().message();
  EXPECT_EQ(response.failed_step(), 2);
  EXPECT_EQ(actions_received(),
            (std::vector<std::string>{"wallet.debit", "stock.reserve", "courier.fail",
                                      "stock.release", "wallet.refund"}))
      << log();
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxySagaTest, MalformedSagaIsRefusedWithAParseableError) {
  auto garbage = client_->http().request("POST", "/api/v1/system/it-system/sagas", "\xff\xff");
  ASSERT_TRUE(garbage);
  EXPECT_EQ(garbage->status, 400U);
  sg::SagaResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(garbage->body));
  EXPECT_EQ(parsed.status().status(), pb::ERROR);

  auto [status, response] = post(sg::SagaRequest{}, "/api/v1/system/it-system/sagas");
  EXPECT_EQ(status, 400U);
  EXPECT_NE(response.status().message().find("no steps"), std::string::npos);
  EXPECT_TRUE(host_.received().empty()) << "nothing ran";
  EXPECT_TRUE(still_serves());
}

}  // namespace
}  // namespace spawn::integration
