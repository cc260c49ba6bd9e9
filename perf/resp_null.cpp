// troupe-resp-null: a RESP server that keeps nothing and does nothing but
// frame commands and answer them. perf/kv.sh runs it beside Troupe and Redis:
// redis-benchmark's rate against a server that does no work shows how much
// the client itself can drive on this machine, and each server's rate is
// read against it.
//
//   troupe-resp-null --port P
//
// One thread, non-blocking sockets, epoll. After traffic it polls without
// sleeping for a moment (so a client's write seldom has to wake it, the
// cheapest case for the client), then blocks. Answers: PING → +PONG, GET →
// a 3-byte value (redis-benchmark's default size), CONFIG → an empty array,
// anything else → +OK. A frame that is not RESP closes that connection.
// Ends on SIGINT or SIGTERM.

#include <CLI/CLI.hpp>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int) { stop_requested = 1; }

enum class frame { complete, partial, malformed };

// A header line at `at`: `marker`, a decimal number of at least `least`,
// "\r\n". On complete, `value` holds the number and `at` is past the line.
frame header(std::string_view in, size_t& at, char marker, long least, long& value) {
  if (at >= in.size()) return frame::partial;
  if (in[at] != marker) return frame::malformed;
  const size_t end = in.find("\r\n", at);
  if (end == std::string_view::npos) return frame::partial;
  if (end == at + 1) return frame::malformed;
  value = 0;
  for (size_t i = at + 1; i < end; ++i) {
    if (in[i] < '0' || in[i] > '9') return frame::malformed;
    value = value * 10 + (in[i] - '0');
    if (value > (1L << 30)) return frame::malformed;
  }
  if (value < least) return frame::malformed;
  at = end + 2;
  return frame::complete;
}

// One command at `at`: its name (first argument) and the frame's end.
frame next_command(std::string_view in, size_t& at, std::string_view& name) {
  size_t p = at;
  long count = 0;
  if (const frame f = header(in, p, '*', 1, count); f != frame::complete) return f;
  for (long i = 0; i < count; ++i) {
    long length = 0;
    if (const frame f = header(in, p, '$', 0, length); f != frame::complete) return f;
    const auto n = static_cast<size_t>(length);
    if (in.size() < p + n + 2) return frame::partial;
    if (i == 0) name = in.substr(p, n);
    p += n + 2;
  }
  at = p;
  return frame::complete;
}

bool is(std::string_view name, std::string_view upper) {
  if (name.size() != upper.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i] >= 'a' && name[i] <= 'z' ? static_cast<char>(name[i] - 32) : name[i];
    if (c != upper[i]) return false;
  }
  return true;
}

struct connection {
  std::string in;
  std::string out;
};

// Answers every whole command in `c.in`; false when the input is not RESP.
bool answer(connection& c) {
  size_t at = 0;
  std::string_view in = c.in;
  while (true) {
    std::string_view name;
    const frame f = next_command(in, at, name);
    if (f == frame::malformed) return false;
    if (f == frame::partial) break;
    if (is(name, "GET")) {
      c.out += "$3\r\nxxx\r\n";
    } else if (is(name, "PING")) {
      c.out += "+PONG\r\n";
    } else if (is(name, "CONFIG")) {
      c.out += "*0\r\n";
    } else {
      c.out += "+OK\r\n";
    }
  }
  c.in.erase(0, at);
  return true;
}

// Writes what `c.out` holds; false when the peer is gone.
bool flush(int fd, connection& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) {
      // A slow reader: wait for it (the benchmark's replies are small).
      fd_set writable;
      FD_ZERO(&writable);
      FD_SET(fd, &writable);
      timeval limit{1, 0};
      if (::select(fd + 1, nullptr, &writable, nullptr, &limit) <= 0) return false;
      continue;
    }
    if (n <= 0) return false;
    c.out.erase(0, static_cast<size_t>(n));
  }
  return true;
}

int serve(int port) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in where{};
  where.sin_family = AF_INET;
  where.sin_port = htons(static_cast<uint16_t>(port));
  where.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&where), sizeof where) != 0 ||
      ::listen(listener, 1024) != 0) {
    std::fprintf(stderr, "troupe-resp-null: cannot listen on 127.0.0.1:%d: %s\n", port,
                 std::strerror(errno));
    return 1;
  }
  const int poller = ::epoll_create1(0);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener;
  ::epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
  std::printf("resp-null listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);

  std::unordered_map<int, connection> connections;
  std::array<epoll_event, 256> ready{};
  std::array<char, 64 * 1024> buffer{};
  constexpr int spins_before_sleep = 20000;
  int idle_polls = 0;
  while (!stop_requested) {
    const int timeout_ms = idle_polls < spins_before_sleep ? 0 : 200;
    const int n = ::epoll_wait(poller, ready.data(), static_cast<int>(ready.size()), timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    idle_polls = n > 0 ? 0 : idle_polls + 1;
    for (int i = 0; i < n; ++i) {
      const int fd = ready[static_cast<size_t>(i)].data.fd;
      if (fd == listener) {
        for (int accepted = 0; accepted < 64; ++accepted) {
          const int client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
          if (client < 0) break;
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.fd = client;
          ::epoll_ctl(poller, EPOLL_CTL_ADD, client, &ev);
          connections.emplace(client, connection{});
        }
        continue;
      }
      connection& c = connections[fd];
      bool alive = true;
      const ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (got > 0) {
        c.in.append(buffer.data(), static_cast<size_t>(got));
        alive = answer(c) && flush(fd, c);
      } else if (got == 0 || errno != EAGAIN) {
        alive = false;
      }
      if (!alive) {
        ::epoll_ctl(poller, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        connections.erase(fd);
      }
    }
  }
  for (auto& [fd, c] : connections) ::close(fd);
  ::close(poller);
  ::close(listener);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A RESP server that does no work, beside Troupe and Redis in perf/kv.sh"};
  int port = 0;
  app.add_option("--port", port, "TCP port on 127.0.0.1")->required()->check(CLI::Range(1, 65535));
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  return serve(port);
}
