#include "sdk/spare_pool.hpp"

#include <string>

#include <gtest/gtest.h>

#include "spawn/detail/value_data.hpp"

namespace spawn::sdk {
namespace {

/// Counts the instances alive, so a test sees which ones the pool deleted.
struct Counted {
  static inline int alive = 0;

  Counted() { ++alive; }

  ~Counted() { --alive; }

  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
};

TEST(SparePoolTest, GivesBackWhatItKeptLastFirstAndDeletesWhatDoesNotFit) {
  {
    SparePool<Counted, 2> pool;
    EXPECT_EQ(pool.take(), nullptr);
    auto* first = new Counted;
    auto* second = new Counted;
    auto* third = new Counted;
    pool.give(first);
    pool.give(second);
    pool.give(third);  // full: deleted
    pool.give(nullptr);
    EXPECT_EQ(Counted::alive, 2);
    EXPECT_EQ(pool.take(), second);
    pool.give(second);
    EXPECT_EQ(pool.take(), second);
    EXPECT_EQ(pool.take(), first);
    EXPECT_EQ(pool.take(), nullptr);
    pool.give(first);
    delete second;
  }
  EXPECT_EQ(Counted::alive, 0);  // the pool deleted what it still held
}

TEST(SparePoolTest, ASpareAnyComesBackClearedAndOneWithALargeValueIsNotKept) {
  google::protobuf::Any* small = detail::take_any();
  small->set_type_url("type.googleapis.com/spawn.Counter");
  small->set_value("12345678");
  detail::recycle_any(small);
  google::protobuf::Any* again = detail::take_any();
  EXPECT_EQ(again, small);
  EXPECT_TRUE(again->type_url().empty());
  EXPECT_TRUE(again->value().empty());

  again->set_value(std::string(kMaxSpareBytes + 1, 'x'));
  detail::recycle_any(again);  // deleted, not kept
  google::protobuf::Any* next = detail::take_any();
  EXPECT_LE(next->value().capacity(), kMaxSpareBytes);
  detail::recycle_any(next);
}

}  // namespace
}  // namespace spawn::sdk
