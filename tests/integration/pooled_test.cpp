// PROTOCOL.md §5.2: POOLED actors run `pooled=true` invocations on several concurrent instances.

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "integration/proxy_fixture.hpp"

namespace spawn::integration {
namespace {

using namespace std::chrono_literals;

constexpr auto kHold = 200ms;

/// Records when each `work` call arrived; the test host holds each one for kHold before it
/// answers (asynchronously, so the host itself serves calls concurrently).
class ConcurrencyRecorder {
public:
  testing::TestHost::RawHandler handler() {
    return [this](const pb::ActorInvocation& invocation) {
      {
        const std::lock_guard lock(mutex_);
        arrivals_.push_back(std::chrono::steady_clock::now());
      }
      return testing::HostReply{.body = encode(testing::echo_response(invocation)), .delay = kHold};
    };
  }

  /// The largest number of calls the host held at the same moment.
  int max_concurrency() const {
    const std::lock_guard lock(mutex_);
    int best = 0;
    for (const auto& start : arrivals_) {
      const auto held = std::count_if(arrivals_.begin(), arrivals_.end(), [&](const auto& other) {
        return other <= start && start < other + kHold;
      });
      best = std::max(best, static_cast<int>(held));
    }
    return best;
  }

private:
  mutable std::mutex mutex_;
  std::vector<std::chrono::steady_clock::time_point> arrivals_;
};

class ProxyPooledTest : public ProxyTest {
protected:
  void SetUp() override {
    host_.on_raw("work", recorder_.handler());
    start_proxy();
    ASSERT_TRUE(register_actors({{.name = "workers",
                                  .actions = {"work"},
                                  .kind = pba::POOLED,
                                  .stateful = false,
                                  .min_pool_size = 1,
                                  .max_pool_size = 4}}));
  }

  ConcurrencyRecorder recorder_;
};

TEST_F(ProxyPooledTest, ConcurrentPooledInvocationsRunOnSeveralInstances) {
  constexpr int kCalls = 4;
  std::vector<pb::InvocationResponse> responses(kCalls);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i) {
    callers.emplace_back([&, i] {
      testing::ProxyClient client(proxy_->port());
      auto request = make_request("workers", "work");
      request.set_pooled(true);
      responses[i] = invoke_on(client, request);
    });
  }
  for (auto& caller : callers) {
    caller.join();
  }

  for (const auto& response : responses) {
    EXPECT_TRUE(is_ok(response));
  }
  ASSERT_EQ(host_.count("work"), kCalls) << log();
  EXPECT_GE(recorder_.max_concurrency(), 2) << "pooled calls ran one at a time" << log();
}

TEST_F(ProxyPooledTest, HostSeesTheRegisteredNameForPooledInvocations) {
  auto request = make_request("workers", "work");
  request.set_pooled(true);

  ASSERT_TRUE(is_ok(invoke(request)));

  ASSERT_EQ(host_.count("work"), 1);
  EXPECT_EQ(host_.received().front().actor().name(), "workers") << log();
  EXPECT_EQ(host_.received().front().actor().system(), kSystem);
}

}  // namespace
}  // namespace spawn::integration
