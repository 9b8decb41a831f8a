// The response heads the proxy writes (http_codec::append_response_head()).

#include "proxy/http_codec.hpp"

#include <string>

#include <gtest/gtest.h>

namespace spawn::proxy::http_codec {
namespace {

std::string head(unsigned status, unsigned version, bool keep_alive, std::string_view extra = {}) {
  std::string out = "kept";
  append_response_head(out, status, version, keep_alive, "application/octet-stream", extra, 42);
  return out;
}

TEST(ResponseHeadTest, OkOnAKeepAliveHttp11Connection) {
  EXPECT_EQ(head(200, 11, true),
            "keptHTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: 42\r\n\r\n");
}

TEST(ResponseHeadTest, OkOnAConnectionThatCloses) {
  EXPECT_EQ(head(200, 11, false),
            "keptHTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            "Connection: close\r\nContent-Length: 42\r\n\r\n");
}

TEST(ResponseHeadTest, OkOnAKeepAliveHttp10Connection) {
  EXPECT_EQ(head(200, 10, true),
            "keptHTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
            "Connection: keep-alive\r\nContent-Length: 42\r\n\r\n");
}

TEST(ResponseHeadTest, OtherStatusWithAnExtraHeader) {
  EXPECT_EQ(head(405, 11, true, "Allow: POST\r\n"),
            "keptHTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/octet-stream\r\n"
            "Allow: POST\r\nContent-Length: 42\r\n\r\n");
  EXPECT_EQ(head(200, 11, true, "Allow: GET\r\n"),
            "keptHTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            "Allow: GET\r\nContent-Length: 42\r\n\r\n");
}

}  // namespace
}  // namespace spawn::proxy::http_codec
