#include "spawn/payload.hpp"

#include <gtest/gtest.h>

#include "sdk_test_messages.pb.h"

namespace spawn {
namespace {

using sdk_test::Deposit;
using sdk_test::Note;

TEST(PayloadTest, MessagesPackWithTheirFullNameAsTypeUrl) {
  Deposit deposit;
  deposit.set_amount(5);
  auto any = pack(deposit);
  EXPECT_EQ(any.type_url(), "type.googleapis.com/spawn.sdk_test.Deposit");
  auto back = unpack<Deposit>(any);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->amount(), 5);
}

TEST(PayloadTest, UnpackingAnotherTypeIsAClearError) {
  auto any = pack(Note());
  auto wrong = unpack<Deposit>(any);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(wrong.error().message,
            "expected a payload of type 'spawn.sdk_test.Deposit', got "
            "'type.googleapis.com/spawn.sdk_test.Note'");
}

TEST(PayloadTest, AnyTypeUrlPrefixIsAccepted) {
  Deposit deposit;
  deposit.set_amount(3);
  auto any = pack(deposit);
  any.set_type_url("example.com/types/spawn.sdk_test.Deposit");
  auto back = unpack<Deposit>(any);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->amount(), 3);
}

TEST(PayloadTest, BytesThatDoNotParseAreAClearError) {
  auto any = pack(Deposit());
  any.set_value("\xff\xff\xff");
  auto broken = unpack<Deposit>(any);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, ErrorCode::kInvalidArgument);
}

TEST(PayloadTest, JsonTravelsAsJsonType) {
  auto any = pack(Json{R"({"a":1})"});
  EXPECT_EQ(any.type_url(), "type.googleapis.com/eigr.functions.protocol.JSONType");
  auto back = unpack<Json>(any);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->text, R"({"a":1})");
  EXPECT_FALSE(unpack<Json>(pack(Note())));
}

TEST(PayloadTest, AnyPassesThroughUnchanged) {
  auto inner = pack(Note());
  auto any = pack(inner);
  EXPECT_EQ(any.type_url(), inner.type_url());
  EXPECT_TRUE(unpack<google::protobuf::Any>(any));
}

}  // namespace
}  // namespace spawn
