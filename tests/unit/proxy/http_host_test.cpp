#include "proxy/http_host.hpp"

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <google/protobuf/arena.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "support/proxy_process.hpp"
#include "support/test_host.hpp"

namespace spawn::proxy {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace pb = protocol::pb;
using google::protobuf::util::MessageDifferencer;
using testing::HostReply;
using testing::TestHost;
using tcp = asio::ip::tcp;

pb::ActorInvocation make_invocation(std::string action) {
  pb::ActorInvocation invocation;
  invocation.mutable_actor()->set_name("counter");
  invocation.mutable_actor()->set_system("spawn-system");
  invocation.set_action_name(std::move(action));
  pb::Context& context = *invocation.mutable_current_context();
  *context.mutable_state() = testing::pack_json(R"({"value":41})");
  (*context.mutable_tags())["colour"] = "blue";
  (*context.mutable_metadata())["trace"] = "abc";
  *context.mutable_self() = invocation.actor();
  *invocation.mutable_value() = testing::pack_json(R"({"by":1})");
  return invocation;
}

HostReply host_reply(unsigned http_status, std::string body) {
  HostReply reply;
  reply.http_status = http_status;
  reply.body = std::move(body);
  return reply;
}

HostReply delayed_echo(const pb::ActorInvocation& invocation, std::chrono::milliseconds delay) {
  HostReply reply = host_reply(200, testing::echo_response(invocation).SerializeAsString());
  reply.delay = delay;
  return reply;
}

HostReply drop() {
  HostReply reply;
  reply.drop = true;
  return reply;
}

// Answers one request on `acceptor` with `body` and keeps what it received in `seen`.
Task<void> answer_once(tcp::acceptor* acceptor, http::request<http::string_body>* seen,
                       std::string body) {
  auto [accept_error, socket] = co_await acceptor->async_accept(kUseTask);
  if (accept_error) {
    co_return;
  }
  beast::flat_buffer buffer;
  auto [read_error, read] = co_await http::async_read(socket, buffer, *seen, kUseTask);
  if (read_error) {
    co_return;
  }
  http::response<http::string_body> response{http::status::ok, 11};
  response.body() = std::move(body);
  response.prepare_payload();
  co_await http::async_write(socket, response, kUseTask);
}

class HttpHostTest : public ::testing::Test {
protected:
  HttpHostOptions options() const {
    HttpHostOptions options;
    options.port = host_.port();
    options.timeout = std::chrono::seconds(5);
    return options;
  }

  // Runs one invoke() to completion on io_, then checks that nothing of it is left running.
  Result<pb::ActorInvocationResponse> call(HttpHost& client, pb::ActorInvocation invocation) {
    std::vector<Result<pb::ActorInvocationResponse>> results =
        call_all(client, {std::move(invocation)});
    return std::move(results.front());
  }

  // Runs all invocations concurrently on io_ and returns their results in order.
  std::vector<Result<pb::ActorInvocationResponse>> call_all(
      HttpHost& client, std::vector<pb::ActorInvocation> invocations) {
    std::vector<std::optional<Result<pb::ActorInvocationResponse>>> slots(invocations.size());
    // Each response on an arena of its own, as the shard makes them.
    google::protobuf::Arena arena;
    std::vector<pb::ActorInvocationResponse*> responses;
    for (std::size_t i = 0; i < invocations.size(); ++i) {
      responses.push_back(
          google::protobuf::Arena::CreateMessage<pb::ActorInvocationResponse>(&arena));
      // The invocation and the response live until io_ has run.
      asio::co_spawn(io_, client.invoke(invocations[i], *responses[i]),
                     [&slots, &responses, i](std::exception_ptr error, Result<void> r) {
                       if (error) {
                         std::rethrow_exception(error);
                       }
                       if (!r) {
                         slots[i].emplace(std::move(r).error());
                       } else {
                         // A copy on the heap: the arena goes with this function.
                         slots[i].emplace(pb::ActorInvocationResponse(*responses[i]));
                       }
                     });
    }
    io_.restart();
    io_.run_for(std::chrono::seconds(10));
    EXPECT_TRUE(io_.stopped()) << "work was left running on the io_context";
    std::vector<Result<pb::ActorInvocationResponse>> results;
    for (auto& slot : slots) {
      if (!slot) {
        ADD_FAILURE() << "invoke() did not complete";
        results.emplace_back(fail(ErrorCode::kInternal, "did not complete"));
      } else {
        results.push_back(std::move(*slot));
      }
    }
    return results;
  }

  asio::io_context io_;
  TestHost host_;
};

TEST_F(HttpHostTest, DeliversInvocationIntactAndDecodesResponse) {
  host_.on("add", [](const pb::ActorInvocation& invocation) {
    pb::ActorInvocationResponse response = testing::echo_response(invocation);
    *response.mutable_updated_context()->mutable_state() = testing::pack_json(R"({"value":42})");
    *response.mutable_value() = testing::pack_json("42");
    response.set_checkpoint(true);
    return response;
  });
  HttpHost client(io_.get_executor(), options());
  const pb::ActorInvocation invocation = make_invocation("add");

  Result<pb::ActorInvocationResponse> result = call(client, invocation);

  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(host_.received().size(), 1U);
  EXPECT_TRUE(MessageDifferencer::Equals(host_.received().front(), invocation));
  EXPECT_EQ(result->updated_context().state().value(),
            testing::pack_json(R"({"value":42})").value());
  EXPECT_EQ(result->updated_context().tags().at("colour"), "blue");
  EXPECT_EQ(result->value().value(), testing::pack_json("42").value());
  EXPECT_TRUE(result->checkpoint());
}

TEST_F(HttpHostTest, PostsOneContentLengthBodyWithKeepAlive) {
  tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
  http::request<http::string_body> seen;
  const pb::ActorInvocation invocation = make_invocation("add");
  asio::co_spawn(
      io_, answer_once(&acceptor, &seen, testing::echo_response(invocation).SerializeAsString()),
      asio::detached);
  HttpHostOptions options = this->options();
  options.port = acceptor.local_endpoint().port();
  HttpHost client(io_.get_executor(), options);

  Result<pb::ActorInvocationResponse> result = call(client, invocation);

  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(seen.method(), http::verb::post);
  EXPECT_EQ(seen.target(), "/api/v1/actors/actions");
  EXPECT_EQ(seen[http::field::content_type], "application/octet-stream");
  EXPECT_EQ(seen[http::field::connection], "keep-alive");
  EXPECT_EQ(seen[http::field::content_length], std::to_string(invocation.ByteSizeLong()));
  EXPECT_FALSE(seen.chunked());
  EXPECT_EQ(seen.body(), invocation.SerializeAsString());
}

TEST_F(HttpHostTest, ReusesOneKeepAliveConnectionForSequentialCalls) {
  HttpHost client(io_.get_executor(), options());

  for (int i = 0; i < 5; ++i) {
    Result<pb::ActorInvocationResponse> result = call(client, make_invocation("add"));
    ASSERT_TRUE(result) << result.error().message;
  }

  EXPECT_EQ(host_.count("add"), 5);
  EXPECT_EQ(host_.accepted_connections(), 1);
  EXPECT_EQ(client.idle_connections_for_test(), 1U);
}

TEST_F(HttpHostTest, OpensAConnectionPerConcurrentCallAndKeepsAtMostMaxIdle) {
  host_.on_raw("slow", [](const pb::ActorInvocation& invocation) {
    return delayed_echo(invocation, std::chrono::milliseconds(50));
  });
  HttpHostOptions options = this->options();
  options.max_idle_connections = 2;
  HttpHost client(io_.get_executor(), options);

  std::vector<Result<pb::ActorInvocationResponse>> results =
      call_all(client, {make_invocation("slow"), make_invocation("slow"), make_invocation("slow")});

  for (const auto& result : results) {
    EXPECT_TRUE(result) << result.error().message;
  }
  EXPECT_EQ(host_.accepted_connections(), 3);
  EXPECT_EQ(client.idle_connections_for_test(), 2U);
}

TEST_F(HttpHostTest, ReportsUnavailableWhenNothingListens) {
  HttpHostOptions options = this->options();
  options.port = testing::free_port();
  HttpHost client(io_.get_executor(), options);

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("add"));

  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable) << result.error().message;
  EXPECT_EQ(result.error().message, "host unreachable at 127.0.0.1:" + std::to_string(options.port)
                                        + ": connection refused");
}

TEST_F(HttpHostTest, TimesOutWhenHostAnswersTooLate) {
  host_.on_raw("slow", [](const pb::ActorInvocation& invocation) {
    return delayed_echo(invocation, std::chrono::milliseconds(300));
  });
  HttpHostOptions options = this->options();
  options.timeout = std::chrono::milliseconds(50);
  HttpHost client(io_.get_executor(), options);

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("slow"));

  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kTimeout) << result.error().message;
  EXPECT_EQ(result.error().message, "host did not answer within 50 ms (http://127.0.0.1:"
                                        + std::to_string(host_.port()) + "/api/v1/actors/actions)");
  EXPECT_EQ(client.idle_connections_for_test(), 0U);
}

TEST_F(HttpHostTest, RejectsEmptyBody) {
  host_.on_raw("throws", [](const pb::ActorInvocation&) { return host_reply(400, ""); });
  HttpHost client(io_.get_executor(), options());

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("throws"));

  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kBadHostResponse) << result.error().message;
  EXPECT_EQ(result.error().message, "host returned an empty body (HTTP 400)");
}

TEST_F(HttpHostTest, PassesOnTheReasonOfAHostThatFailedInText) {
  host_.on_raw("refuses", [](const pb::ActorInvocation&) {
    return host_reply(400, "insufficient funds\nfor account 7");
  });
  HttpHost client(io_.get_executor(), options());

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("refuses"));

  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kBadHostResponse) << result.error().message;
  EXPECT_EQ(result.error().message, "host failed (HTTP 400): insufficient funds for account 7");
}

TEST_F(HttpHostTest, RejectsBodyThatIsNotAnActorInvocationResponse) {
  host_.on_raw("garbage",
               [](const pb::ActorInvocation&) { return host_reply(200, "not a protobuf"); });
  HttpHost client(io_.get_executor(), options());

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("garbage"));

  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kBadHostResponse) << result.error().message;
  EXPECT_EQ(result.error().message,
            "host returned a body that is not an ActorInvocationResponse (14 bytes, HTTP 200)");
}

TEST_F(HttpHostTest, RejectsResponseWithoutUpdatedContext) {
  host_.on("bare", [](const pb::ActorInvocation&) {
    pb::ActorInvocationResponse response;
    response.set_actor_name("counter");
    return response;
  });
  HttpHost client(io_.get_executor(), options());

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("bare"));

  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kBadHostResponse) << result.error().message;
  EXPECT_EQ(result.error().message, "host response has no updated_context");
}

TEST_F(HttpHostTest, RejectsBodyLargerThanTheLimit) {
  host_.on("big", [](const pb::ActorInvocation& invocation) {
    pb::ActorInvocationResponse response = testing::echo_response(invocation);
    *response.mutable_value() = testing::pack_json(std::string(4096, 'x'));
    return response;
  });
  HttpHostOptions options = this->options();
  options.max_body_bytes = 1024;
  HttpHost client(io_.get_executor(), options);

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("big"));

  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kBadHostResponse) << result.error().message;
  EXPECT_EQ(client.idle_connections_for_test(), 0U);
}

TEST_F(HttpHostTest, IgnoresTheHttpStatusOfAValidBody) {
  host_.on_raw("odd", [](const pb::ActorInvocation& invocation) {
    return host_reply(500, testing::echo_response(invocation).SerializeAsString());
  });
  HttpHost client(io_.get_executor(), options());

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("odd"));

  EXPECT_TRUE(result) << result.error().message;
}

TEST_F(HttpHostTest, RetriesOnANewConnectionAfterTheHostRestarted) {
  HttpHost client(io_.get_executor(), options());
  ASSERT_TRUE(call(client, make_invocation("add")));
  ASSERT_EQ(client.idle_connections_for_test(), 1U);

  host_.stop();
  host_.start();
  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("add"));

  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(host_.count("add"), 2);
  EXPECT_EQ(host_.accepted_connections(), 2);
  EXPECT_EQ(client.idle_connections_for_test(), 1U);
}

TEST_F(HttpHostTest, RetriesADroppedReusedConnectionExactlyOnce) {
  host_.on_raw("drop", [](const pb::ActorInvocation&) { return drop(); });
  HttpHost client(io_.get_executor(), options());
  ASSERT_TRUE(call(client, make_invocation("add")));

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("drop"));

  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable) << result.error().message;
  EXPECT_EQ(result.error().message,
            "host closed the connection without answering (http://127.0.0.1:"
                + std::to_string(host_.port()) + "/api/v1/actors/actions)");
  EXPECT_EQ(host_.count("drop"), 2);
}

TEST_F(HttpHostTest, DoesNotRetryADroppedNewConnection) {
  host_.on_raw("drop", [](const pb::ActorInvocation&) { return drop(); });
  HttpHost client(io_.get_executor(), options());

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("drop"));

  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable) << result.error().message;
  EXPECT_EQ(host_.count("drop"), 1);
}

TEST_F(HttpHostTest, DoesNotPoolAConnectionTheHostCloses) {
  host_.on_raw("close", [](const pb::ActorInvocation& invocation) {
    HostReply reply = host_reply(200, testing::echo_response(invocation).SerializeAsString());
    reply.close = true;
    return reply;
  });
  HttpHost client(io_.get_executor(), options());

  Result<pb::ActorInvocationResponse> closing = call(client, make_invocation("close"));
  ASSERT_TRUE(closing) << closing.error().message;
  EXPECT_EQ(client.idle_connections_for_test(), 0U);
  Result<pb::ActorInvocationResponse> next = call(client, make_invocation("add"));

  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(host_.accepted_connections(), 2);
  EXPECT_EQ(host_.count("add"), 1);
}

TEST_F(HttpHostTest, DoesNotReuseAConnectionIdleLongerThanMaxIdleTime) {
  HttpHostOptions options = this->options();
  options.max_idle_time = std::chrono::milliseconds(0);
  HttpHost client(io_.get_executor(), options);
  ASSERT_TRUE(call(client, make_invocation("add")));

  // steady_clock advances between the two calls, so the idle connection is already too old.
  ASSERT_TRUE(call(client, make_invocation("add")));

  EXPECT_EQ(host_.accepted_connections(), 2);
}

TEST_F(HttpHostTest, ConnectsToLoopbackWhenHostIsTheWildcardAddress) {
  HttpHostOptions options = this->options();
  options.host = "0.0.0.0";
  HttpHost client(io_.get_executor(), options);

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("add"));

  EXPECT_TRUE(result) << result.error().message;
}

TEST_F(HttpHostTest, ResolvesAHostName) {
  HttpHostOptions options = this->options();
  options.host = "localhost";
  HttpHost client(io_.get_executor(), options);

  Result<pb::ActorInvocationResponse> result = call(client, make_invocation("add"));

  EXPECT_TRUE(result) << result.error().message;
}

TEST_F(HttpHostTest, FactoryMakesAWorkingHost) {
  runtime::HostFactory factory = make_http_host_factory(options());

  std::unique_ptr<runtime::Host> made = factory(io_.get_executor());
  auto* client = dynamic_cast<HttpHost*>(made.get());
  ASSERT_NE(client, nullptr);
  Result<pb::ActorInvocationResponse> result = call(*client, make_invocation("add"));

  EXPECT_TRUE(result) << result.error().message;
}

}  // namespace
}  // namespace spawn::proxy
