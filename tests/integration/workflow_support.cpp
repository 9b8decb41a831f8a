#include "integration/workflow_support.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace spawn::integration {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) {
    return {};
  }
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

}  // namespace

std::int64_t epoch_ms(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

std::int64_t epoch_ms_now() {
  return epoch_ms(std::chrono::system_clock::now());
}

// --- EventLog ------------------------------------------------------------------------------------

void EventLog::record(std::string name) {
  const auto now = std::chrono::system_clock::now();
  const std::lock_guard lock(mutex_);
  events_.push_back(Event{std::move(name), now});
}

std::vector<EventLog::Event> EventLog::events() const {
  const std::lock_guard lock(mutex_);
  return events_;
}

std::optional<std::size_t> EventLog::index_of(const std::string& name) const {
  const std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < events_.size(); ++i) {
    if (events_[i].name == name) {
      return i;
    }
  }
  return std::nullopt;
}

std::optional<std::chrono::system_clock::time_point> EventLog::time_of(
    const std::string& name) const {
  const auto times = times_of(name);
  if (times.empty()) {
    return std::nullopt;
  }
  return times.front();
}

std::vector<std::chrono::system_clock::time_point> EventLog::times_of(
    const std::string& name) const {
  const std::lock_guard lock(mutex_);
  std::vector<std::chrono::system_clock::time_point> times;
  for (const auto& event : events_) {
    if (event.name == name) {
      times.push_back(event.at);
    }
  }
  return times;
}

int EventLog::count(const std::string& name) const {
  return static_cast<int>(times_of(name).size());
}

std::string EventLog::describe() const {
  const std::lock_guard lock(mutex_);
  std::string out = "events in order: [";
  for (std::size_t i = 0; i < events_.size(); ++i) {
    out += (i == 0 ? "" : ", ") + events_[i].name;
  }
  return out + "]";
}

// --- EventStream ---------------------------------------------------------------------------------

EventStream::EventStream(std::uint16_t port, const std::string& topic) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    error_ = std::string("connect: ") + std::strerror(errno);
    return;
  }
  const std::string request = "GET /api/v1/channels/" + topic
                              + "/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                "Accept: text/event-stream\r\n\r\n";
  std::size_t sent = 0;
  while (sent < request.size()) {
    const auto n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      error_ = std::string("send: ") + std::strerror(errno);
      return;
    }
    sent += static_cast<std::size_t>(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::size_t end = std::string::npos;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) {
      error_ = "no complete response head within 5 s; got '" + buffer_ + "'";
      return;
    }
  }
  const std::string head = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  std::size_t line_start = 0;
  bool first = true;
  while (line_start <= head.size()) {
    auto line_end = head.find("\r\n", line_start);
    if (line_end == std::string::npos) {
      line_end = head.size();
    }
    const std::string line = head.substr(line_start, line_end - line_start);
    line_start = line_end + 2;
    if (first) {
      first = false;
      // "HTTP/1.1 200 OK"
      const auto space = line.find(' ');
      if (line.rfind("HTTP/", 0) != 0 || space == std::string::npos) {
        error_ = "not an HTTP status line: '" + line + "'";
        return;
      }
      status_ = static_cast<unsigned>(std::atoi(line.c_str() + space + 1));
      continue;
    }
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      headers_.emplace_back(lower(line.substr(0, colon)), trim(line.substr(colon + 1)));
    }
  }
}

EventStream::~EventStream() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::string EventStream::header(const std::string& name) const {
  for (const auto& [key, value] : headers_) {
    if (key == name) {
      return value;
    }
  }
  return {};
}

bool EventStream::fill(std::chrono::steady_clock::time_point deadline) {
  if (fd_ < 0) {
    return false;
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) {
    return false;
  }
  pollfd descriptor{fd_, POLLIN, 0};
  const int ready = ::poll(&descriptor, 1, static_cast<int>(left.count()));
  if (ready <= 0) {
    return false;
  }
  char chunk[4096];
  const auto n = ::recv(fd_, chunk, sizeof(chunk), 0);
  if (n <= 0) {
    return false;
  }
  buffer_.append(chunk, static_cast<std::size_t>(n));
  return true;
}

std::optional<std::string> EventStream::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t end = std::string::npos;
  while ((end = buffer_.find('\n')) == std::string::npos) {
    if (!fill(deadline)) {
      return std::nullopt;
    }
  }
  std::string line = buffer_.substr(0, end);
  buffer_.erase(0, end + 1);
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  return line;
}

std::optional<EventStream::Event> EventStream::next_event(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Event event;
  bool started = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto line = read_line(std::max(left, std::chrono::milliseconds(0)));
    if (!line) {
      return std::nullopt;
    }
    if (line->empty()) {
      if (started) {
        return event;
      }
      continue;
    }
    if (line->front() == ':') {
      comments_.push_back(*line);
      continue;
    }
    started = true;
    const auto colon = line->find(':');
    const std::string field = line->substr(0, colon);
    std::string value = colon == std::string::npos ? "" : line->substr(colon + 1);
    if (!value.empty() && value.front() == ' ') {
      value.erase(0, 1);
    }
    if (field == "event") {
      event.event = value;
    } else if (field == "data") {
      event.data += (event.data.empty() ? "" : "\n") + value;
    }
  }
}

// --- WorkflowTest --------------------------------------------------------------------------------

std::string WorkflowTest::proxy_log() const {
  return proxy_ ? proxy_->log() : std::string();
}

bool WorkflowTest::wait_for_log(const std::string& text, std::chrono::milliseconds timeout) const {
  return testing::TestHost::wait_for([&] { return proxy_log().find(text) != std::string::npos; },
                                     timeout);
}

std::optional<std::string> WorkflowTest::log_line_with(const std::string& a,
                                                       const std::string& b) const {
  const std::string text = proxy_log();
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) {
      end = text.size();
    }
    const std::string line = text.substr(start, end - start);
    if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) {
      return line;
    }
    start = end + 1;
  }
  return std::nullopt;
}

bool WorkflowTest::wait_for_log_line(const std::string& a, const std::string& b,
                                     std::chrono::milliseconds timeout) const {
  return testing::TestHost::wait_for([&] { return log_line_with(a, b).has_value(); }, timeout);
}

bool WorkflowTest::wait_for_count(const std::string& action, int n,
                                  std::chrono::milliseconds timeout) const {
  return testing::TestHost::wait_for([&] { return host_.count(action) >= n; }, timeout);
}

std::vector<pb::ActorInvocation> WorkflowTest::received(const std::string& action) const {
  std::vector<pb::ActorInvocation> matching;
  for (auto& invocation : host_.received()) {
    if (invocation.action_name() == action) {
      matching.push_back(std::move(invocation));
    }
  }
  return matching;
}

}  // namespace spawn::integration
