#include "runtime/actor_definition.hpp"

#include <gtest/gtest.h>

namespace spawn::runtime {
namespace {

namespace pba = protocol::pba;

pba::Actor actor_with(std::initializer_list<const char*> actions) {
  pba::Actor actor;
  actor.mutable_id()->set_name("a");
  actor.mutable_id()->set_system("s");
  for (const char* name : actions) {
    actor.add_actions()->set_name(name);
  }
  return actor;
}

TEST(ActorDefinitionTest, AnswersDefaultGetActionsItselfWhenNoneIsRegistered) {
  ActorDefinition definition(actor_with({"inc"}));
  for (const char* name : {"get", "Get", "get_state", "getState", "GetState"}) {
    EXPECT_TRUE(definition.answers_get_itself(name)) << name;
    EXPECT_FALSE(definition.has_action(name)) << name;
  }
  EXPECT_TRUE(definition.has_action("inc"));
  EXPECT_FALSE(definition.has_action("dec"));
}

TEST(ActorDefinitionTest, ForwardsAllFiveGetActionsWhenOneIsRegistered) {
  ActorDefinition definition(actor_with({"getState"}));
  for (const char* name : {"get", "Get", "get_state", "getState", "GetState"}) {
    EXPECT_FALSE(definition.answers_get_itself(name)) << name;
    EXPECT_TRUE(definition.has_action(name)) << name;
  }
}

TEST(ActorDefinitionTest, PicksTheFirstInitActionInRegistrationOrder) {
  ActorDefinition definition(actor_with({"inc", "Setup", "init"}));
  ASSERT_TRUE(definition.init_action().has_value());
  EXPECT_EQ(*definition.init_action(), "Setup");
  EXPECT_FALSE(ActorDefinition(actor_with({"inc"})).init_action().has_value());
}

TEST(ActorDefinitionTest, TimerActionsAreInvocable) {
  auto actor = actor_with({});
  auto* timer = actor.add_timer_actions();
  timer->set_seconds(100);
  timer->mutable_action()->set_name("tick");
  EXPECT_TRUE(ActorDefinition(actor).has_action("tick"));
}

TEST(ActorDefinitionTest, AppliesDefaultTimeoutsForMissingOrNonPositiveStrategies) {
  auto actor = actor_with({});
  EXPECT_EQ(ActorDefinition(actor).deactivation_timeout(), ActorDefinition::kDefaultDeactivation);
  EXPECT_FALSE(ActorDefinition(actor).snapshot_interval().has_value());
  actor.mutable_settings()->mutable_snapshot_strategy()->mutable_timeout()->set_timeout(0);
  actor.mutable_settings()->mutable_deactivation_strategy()->mutable_timeout()->set_timeout(-5);
  ActorDefinition definition(actor);
  EXPECT_EQ(definition.snapshot_interval(), ActorDefinition::kDefaultSnapshot);
  EXPECT_EQ(definition.deactivation_timeout(), ActorDefinition::kDefaultDeactivation);
}

TEST(ActorDefinitionTest, PooledActorsGetTheLargerPoolSizeOrTheDefault) {
  auto actor = actor_with({"work"});
  actor.mutable_settings()->set_kind(pba::POOLED);
  actor.mutable_settings()->set_min_pool_size(1);
  EXPECT_EQ(ActorDefinition(actor).pool_size(), ActorDefinition::kDefaultPoolSize);
  actor.mutable_settings()->set_max_pool_size(3);
  EXPECT_EQ(ActorDefinition(actor).pool_size(), 3);
}

}  // namespace
}  // namespace spawn::runtime
