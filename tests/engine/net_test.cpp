#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "troupe/net.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

struct serve {};
struct open_port {};
struct stats_query {};

/// Serves one connection: echoes what it reads until the peer closes.
struct echo_connection : troupe::actor<echo_connection, serve> {
  troupe::net::socket sock;
  std::atomic<int>* served;
  echo_connection(troupe::net::socket s, std::atomic<int>* n) : sock(std::move(s)), served(n) {}
  troupe::task<void> on(const serve&) {
    std::array<std::byte, 4096> buf;
    for (;;) {
      auto n = co_await troupe::net::recv(sock, buf);
      if (!n || *n == 0) break;
      auto sent = co_await troupe::net::send_all(sock, {buf.data(), *n});
      if (!sent) break;
    }
    served->fetch_add(1);
    stop();
  }
};

/// Listens, and gives each connection an actor of its own (spread over the
/// shards).
struct echo_server : troupe::actor<echo_server, open_port, serve> {
  troupe::net::socket listener;
  std::atomic<int>* served;
  explicit echo_server(std::atomic<int>* n) : served(n) {}
  int on(const open_port&) {
    listener = troupe::net::listen("127.0.0.1", 0).value();
    tell(self(), serve{});
    return listener.local_port();
  }
  troupe::task<void> on(const serve&) {
    for (;;) {
      auto s = co_await troupe::net::accept(listener);
      if (!s) co_return;
      address c = spawn<echo_connection>(
          troupe::spawn_options{.where = troupe::placement::round_robin}, std::move(*s), served);
      tell(c, serve{});
    }
  }
};

int connect_blocking(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  timeval tv{10, 0};  // a test never hangs on a lost echo
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Writes `total` bytes of a pattern and reads them back; true if equal.
bool echo_round(std::uint16_t port, std::size_t total, int seed) {
  int fd = connect_blocking(port);
  if (fd < 0) return false;
  std::vector<char> out(total), in(total);
  for (std::size_t i = 0; i < total; ++i) out[i] = static_cast<char>((i * 31 + seed) & 0xff);
  std::thread writer([&] {
    std::size_t off = 0;
    while (off < total) {
      auto n = ::send(fd, out.data() + off, std::min<std::size_t>(total - off, 7000), MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
  });
  std::size_t got = 0;
  while (got < total) {
    auto n = ::recv(fd, in.data() + got, total - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  writer.join();
  ::close(fd);
  return got == total && std::memcmp(in.data(), out.data(), total) == 0;
}

void run_echo(troupe::io::backend_choice io) {
  troupe::system_options o;
  o.shards = 2;
  o.io = io;
  troupe::system sys(o);
  if (io == troupe::io::backend_choice::epoll) {
    REQUIRE(sys.io_description().rfind("epoll", 0) == 0);
  } else if (troupe::io::probe().uring_available) {
    REQUIRE(sys.io_description().rfind("io_uring", 0) == 0);
  }
  std::atomic<int> served{0};
  address srv = sys.spawn<echo_server>(troupe::spawn_options{.shard = 0}, &served);
  const auto port = static_cast<std::uint16_t>(sys.ask<int>(srv, open_port{}, 5s).value());
  REQUIRE(port != 0);
  constexpr int clients = 40;
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < clients; ++i) {
    ts.emplace_back([&, i] {
      if (echo_round(port, 200'000 + static_cast<std::size_t>(i) * 1000, i)) ok.fetch_add(1);
    });
  }
  for (auto& t : ts) t.join();
  CHECK(ok.load() == clients);
  for (int i = 0; i < 1000 && served.load() < clients; ++i) std::this_thread::sleep_for(2ms);
  CHECK(served.load() == clients);  // every connection actor saw its peer close
}

struct dial {
  std::uint16_t port;
  std::string text;
};

/// An actor as a client: connects, sends, reads the echo back.
struct client : troupe::actor<client, dial> {
  troupe::task<std::string> on(const dial& d) {
    auto s = co_await troupe::net::connect("127.0.0.1", d.port);
    if (!s) co_return "connect failed: " + s.err().describe();
    auto sent = co_await troupe::net::send_all(
        *s, std::as_bytes(std::span<const char>(d.text.data(), d.text.size())));
    if (!sent) co_return "send failed";
    std::string back;
    std::array<std::byte, 256> buf;
    while (back.size() < d.text.size()) {
      auto n = co_await troupe::net::recv(*s, buf);
      if (!n || *n == 0) break;
      back.append(reinterpret_cast<const char*>(buf.data()), *n);
    }
    co_return back;
  }
};

}  // namespace

TEST_CASE("actors serve 40 TCP clients at once on io_uring, every byte echoed", "[engine][net]") {
  run_echo(troupe::io::backend_choice::automatic);
}

TEST_CASE("actors serve 40 TCP clients at once on the epoll fallback", "[engine][net]") {
  run_echo(troupe::io::backend_choice::epoll);
}

TEST_CASE("an actor connects as a client, and a refused connection is an error that says so",
          "[engine][net]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  std::atomic<int> served{0};
  address srv = sys.spawn<echo_server>(troupe::spawn_options{.shard = 1}, &served);
  const auto port = static_cast<std::uint16_t>(sys.ask<int>(srv, open_port{}, 5s).value());
  address c = sys.spawn<client>(troupe::spawn_options{.shard = 0});
  CHECK(sys.ask<std::string>(c, dial{port, "hello over loopback"}, 5s).value() ==
        "hello over loopback");
  // A port nobody listens on: the one just freed by a closed listener.
  std::uint16_t closed_port;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    closed_port = ntohs(sa.sin_port);
    ::close(fd);
  }
  auto refused = sys.ask<std::string>(c, dial{closed_port, "x"}, 5s).value();
  CHECK(refused.find("connect failed: i/o error: connect 127.0.0.1:") == 0);
  CHECK(refused.find("Connection refused") != std::string::npos);
}

TEST_CASE("sockets outside a shard fail with an error that says why", "[engine][net]") {
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  address c = sys.spawn<client>();
  auto r = sys.ask<std::string>(c, dial{1, "x"}, 1s).value();
  CHECK(r.find("sockets need a shard's reactor") != std::string::npos);
}
