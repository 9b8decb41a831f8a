// PROTOCOL.md §5.6 (timers): every FixedTimerAction runs its action with a noop payload and the
// actor itself as caller, first `seconds` MILLISECONDS after activation, then every `seconds` ms,
// on across passivation.

#include <chrono>
#include <string>
#include <thread>

#include "integration/workflow_support.hpp"

namespace spawn::integration {
namespace {

using namespace std::chrono_literals;

class ProxyTimerTest : public WorkflowTest {
protected:
  void SetUp() override {
    host_.on("init", [this](const pb::ActorInvocation& invocation) {
      events_.record("init");
      return testing::echo_response(invocation);
    });
    host_.on("tick",
             [this, increment = increment_handler()](const pb::ActorInvocation& invocation) {
               events_.record("tick");
               return increment(invocation);
             });
    start_proxy();
  }

  /// Describes the intervals between ticks, for failure messages.
  std::string tick_gaps() const {
    const auto ticks = events_.times_of("tick");
    std::string out = "gaps between ticks (ms):";
    for (std::size_t i = 1; i < ticks.size(); ++i) {
      out += " "
             + std::to_string(
                 std::chrono::duration_cast<std::chrono::milliseconds>(ticks[i] - ticks[i - 1])
                     .count());
    }
    return out;
  }
};

TEST_F(ProxyTimerTest, TimerActionFiresRepeatedlyWithNoopAndTheActorAsCaller) {
  ASSERT_TRUE(register_actors({{.name = "ticker",
                                .actions = {"hello"},
                                .stateful = false,
                                .timers = {{.period_ms = 150, .action = "tick"}}}}));
  ASSERT_TRUE(is_ok(invoke("ticker", "hello")));  // activates it

  ASSERT_TRUE(wait_for_count("tick", 3)) << "the timer did not keep firing" << log();
  for (const auto& tick : received("tick")) {
    EXPECT_EQ(tick.actor().name(), "ticker");
    EXPECT_TRUE(tick.has_noop()) << "a timer action gets a noop payload";
    EXPECT_EQ(tick.caller().name(), "ticker") << "the caller is the actor itself";
    EXPECT_EQ(tick.caller().system(), kSystem);
    EXPECT_EQ(tick.current_context().caller().name(), "ticker");
  }
}

TEST_F(ProxyTimerTest, FirstFiringComesOnePeriodAfterActivation) {
  // `seconds` = 700 is read as 700 ms: the tick comes neither at once nor after 700 s.
  constexpr auto kPeriod = 700ms;
  ASSERT_TRUE(register_actors({{.name = "ticker",
                                .actions = {"init"},
                                .stateful = false,
                                .timers = {{.period_ms = 700, .action = "tick"}}}}));
  ASSERT_TRUE(is_ok(invoke("ticker", "get")));  // activates it (init runs)

  ASSERT_TRUE(wait_for_count("tick", 1, 5s)) << "the first tick never came" << log();
  const auto activated = events_.time_of("init");
  const auto first_tick = events_.time_of("tick");
  ASSERT_TRUE(activated && first_tick) << events_.describe();
  EXPECT_GE(*first_tick - *activated, kPeriod - 50ms)
      << "the first tick came "
      << std::chrono::duration_cast<std::chrono::milliseconds>(*first_tick - *activated).count()
      << " ms after activation" << log();
}

TEST_F(ProxyTimerTest, TimerKeepsFiringAcrossPassivationAndEachFiringReactivatesTheActor) {
  // Idle 150 ms → passivated; a tick every 500 ms → each tick finds it passivated.
  constexpr auto kPeriod = 500ms;
  ASSERT_TRUE(register_actors({{.name = "sleeper",
                                .actions = {"init"},
                                .stateful = true,
                                .deactivation_ms = 150,
                                .timers = {{.period_ms = 500, .action = "tick"}}}}));
  ASSERT_TRUE(is_ok(invoke("sleeper", "get")));  // activated by now, by warm-up or by this call

  ASSERT_TRUE(testing::TestHost::wait_for(
      [&] { return host_.count("tick") >= 3 && host_.count("init") >= 3; }, 8s))
      << host_.count("tick") << " ticks, " << host_.count("init") << " inits; "
      << events_.describe() << log();
  EXPECT_NE(proxy_log().find("actor=" + std::string(kSystem) + "/sleeper deactivated"),
            std::string::npos)
      << "the actor was never passivated" << log();
  // Reactivation loads the saved state: the ticks count on from where they were.
  const auto ticks = received("tick");
  for (std::size_t i = 0; i < ticks.size(); ++i) {
    EXPECT_EQ(state_of(ticks[i].current_context()), i == 0 ? "<unset>" : std::to_string(i))
        << "tick " << i << " saw the wrong state" << log();
  }
  // A reactivation must not start a second timer beside the running one.
  const auto times = events_.times_of("tick");
  for (std::size_t i = 1; i < times.size(); ++i) {
    EXPECT_GE(times[i] - times[i - 1], kPeriod / 2) << tick_gaps() << log();
  }
}

TEST_F(ProxyTimerTest, ReRegisteringTheActorWithoutTheTimerStopsIt) {
  const ActorSpec with_timer{.name = "ticker",
                             .actions = {"hello"},
                             .stateful = false,
                             .timers = {{.period_ms = 100, .action = "tick"}}};
  ActorSpec without_timer = with_timer;
  without_timer.timers.clear();
  ASSERT_TRUE(register_actors({with_timer}));
  ASSERT_TRUE(is_ok(invoke("ticker", "hello")));
  ASSERT_TRUE(wait_for_count("tick", 2)) << log();

  ASSERT_TRUE(register_actors({without_timer}));
  const int at_registration = host_.count("tick");
  std::this_thread::sleep_for(600ms);  // six periods: proving an absence takes waiting
  const int settled = host_.count("tick");
  std::this_thread::sleep_for(500ms);

  EXPECT_LE(settled, at_registration + 1) << "at most a firing already under way" << log();
  EXPECT_EQ(host_.count("tick"), settled) << "the timer still fires" << tick_gaps() << log();
  EXPECT_TRUE(is_ok(invoke("ticker", "hello"))) << "the actor itself still serves";
}

}  // namespace
}  // namespace spawn::integration
