#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "troupe/net.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

// Handler result types live in a named namespace: a coroutine frame whose
// type used an anonymous one would draw GCC's -Wsubobject-linkage.
namespace net_pooled_test {

/// What a pooled reader saw of one stream.
struct digest {
  std::uint64_t bytes = 0;
  std::uint64_t hash = 0;
  std::uint32_t held_after = 0;  ///< pool buffers still out once it was done
  bool kernel_ring = false;
  std::string error;
};

}  // namespace net_pooled_test

namespace {

using net_pooled_test::digest;

constexpr std::uint64_t fnv_start = 14695981039346656037ull;
constexpr std::uint64_t fnv_prime = 1099511628211ull;

std::uint8_t pattern(std::size_t i) {
  return static_cast<std::uint8_t>((i * 131 + (i >> 11)) & 0xff);
}

struct open_port {};
struct digest_stream {};

/// Accepts one connection and reads it to its end with recv_pooled,
/// hashing the bytes; each buffer goes back as soon as it is hashed.
struct pooled_reader : troupe::actor<pooled_reader, open_port, digest_stream> {
  troupe::net::socket listener;
  int on(const open_port&) {
    listener = troupe::net::listen("127.0.0.1", 0).value();
    return listener.local_port();
  }
  troupe::task<digest> on(const digest_stream&) {
    digest d;
    d.hash = fnv_start;
    auto s = co_await troupe::net::accept(listener);
    if (!s) {
      d.error = s.err().describe();
      co_return d;
    }
    for (;;) {
      auto b = co_await troupe::net::recv_pooled(*s);
      if (!b) {
        d.error = b.err().describe();
        break;
      }
      if (b->empty()) break;  // the peer is done
      for (std::byte c : b->bytes()) d.hash = (d.hash ^ static_cast<std::uint8_t>(c)) * fnv_prime;
      d.bytes += b->size();
    }
    const auto st = troupe::net::pooled_buffers();
    d.held_after = st.held;
    d.kernel_ring = st.kernel_ring;
    co_return d;
  }
};

/// recv, again when a signal broke it (a thread that made an io_uring ring
/// gets one EINTR on a recv with SO_RCVTIMEO once the ring is torn down).
ssize_t recv_retry(int fd, void* buf, std::size_t len, int flags) {
  ssize_t n;
  do {
    n = ::recv(fd, buf, len, flags);
  } while (n < 0 && errno == EINTR);
  return n;
}

int connect_blocking(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  timeval tv{10, 0};  // a test never hangs on a lost reply
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void run_stream(troupe::io::backend_choice io) {
  troupe::system_options o;
  o.shards = 2;
  o.io = io;
  troupe::system sys(o);
  address r = sys.spawn<pooled_reader>(troupe::spawn_options{.shard = 1});
  const auto port = static_cast<std::uint16_t>(sys.ask<int>(r, open_port{}, 5s).value());
  auto pending = std::async(std::launch::async,
                            [&sys, r] { return sys.ask<digest>(r, digest_stream{}, 60s); });
  constexpr std::size_t total = 24 << 20;  // 24 MiB: the 4 MiB pool goes round many times
  std::uint64_t want = fnv_start;
  const int fd = connect_blocking(port);
  REQUIRE(fd >= 0);
  std::vector<std::uint8_t> chunk(100'000);
  for (std::size_t off = 0; off < total;) {
    const std::size_t n = std::min(chunk.size(), total - off);
    for (std::size_t i = 0; i < n; ++i) {
      chunk[i] = pattern(off + i);
      want = (want ^ chunk[i]) * fnv_prime;
    }
    std::size_t sent = 0;
    while (sent < n) {
      auto k = ::send(fd, chunk.data() + sent, n - sent, MSG_NOSIGNAL);
      REQUIRE(k > 0);
      sent += static_cast<std::size_t>(k);
    }
    off += n;
  }
  ::close(fd);
  auto d = pending.get().value();
  CHECK(d.error == "");
  CHECK(d.bytes == total);
  CHECK(d.hash == want);
  CHECK(d.held_after == 0);  // every buffer went back
  const auto p = troupe::io::probe();
  if (io != troupe::io::backend_choice::epoll && p.buffer_ring) {
    CHECK(d.kernel_ring);
  } else if (io != troupe::io::backend_choice::epoll) {
    WARN("no provided-buffer rings on this kernel: pooled reads used the free list");
  }
}

// ------------------------------------------------------------ every buffer held

struct hold_all {};
struct drop_all {};
struct pool_query {};
struct read_once {};

/// Reads one byte at a time into pooled buffers and keeps them all, acking
/// each so that the client sends the next only then (bytes that came
/// together would share a buffer).
struct hoarder : troupe::actor<hoarder, open_port, hold_all, drop_all, pool_query> {
  troupe::net::socket listener;
  troupe::net::socket conn;
  std::vector<troupe::net::pooled_buffer> held;
  int on(const open_port&) {
    listener = troupe::net::listen("127.0.0.1", 0).value();
    return listener.local_port();
  }
  troupe::task<std::string> on(const hold_all&) {
    auto s = co_await troupe::net::accept(listener);
    if (!s) co_return s.err().describe();
    conn = std::move(*s);
    const std::uint32_t count = troupe::net::pooled_buffers().count;
    while (held.size() < count) {
      auto b = co_await troupe::net::recv_pooled(conn);
      if (!b) co_return b.err().describe();
      if (b->empty()) co_return "closed early";
      held.push_back(std::move(*b));
      const std::byte ack{'k'};
      if (!co_await troupe::net::send_all(conn, {&ack, 1})) co_return "ack failed";
    }
    co_return "holding " + std::to_string(held.size());
  }
  std::uint32_t on(const drop_all&) {
    held.clear();
    return troupe::net::pooled_buffers().held;
  }
  std::uint64_t on(const pool_query&) { return troupe::net::pooled_buffers().waits; }
};

/// Reads once with recv_pooled on a connection of its own.
struct late_reader : troupe::actor<late_reader, open_port, read_once> {
  troupe::net::socket listener;
  std::mutex* m;
  std::string* got;
  std::atomic<int>* state;  // 0 before, 1 waiting in recv_pooled, 2 done
  late_reader(std::mutex* mu, std::string* g, std::atomic<int>* st) : m(mu), got(g), state(st) {}
  int on(const open_port&) {
    listener = troupe::net::listen("127.0.0.1", 0).value();
    return listener.local_port();
  }
  troupe::task<void> on(const read_once&) {
    auto s = co_await troupe::net::accept(listener);
    if (!s) co_return;
    state->store(1);
    auto b = co_await troupe::net::recv_pooled(*s);
    {
      std::lock_guard g(*m);
      *got = !b ? b.err().describe()
                : std::string(reinterpret_cast<const char*>(b->bytes().data()), b->size());
    }
    state->store(2);
  }
};

void run_exhausted(troupe::io::backend_choice io) {
  troupe::system_options o;
  o.shards = 1;  // one shard, one pool: both actors draw on it
  o.io = io;
  troupe::system sys(o);
  address h = sys.spawn<hoarder>();
  std::mutex m;
  std::string got;
  std::atomic<int> state{0};
  address l = sys.spawn<late_reader>(&m, &got, &state);
  const auto hp = static_cast<std::uint16_t>(sys.ask<int>(h, open_port{}, 5s).value());
  const auto lp = static_cast<std::uint16_t>(sys.ask<int>(l, open_port{}, 5s).value());
  auto holding = std::async(std::launch::async,
                            [&sys, h] { return sys.ask<std::string>(h, hold_all{}, 60s); });
  const int hfd = connect_blocking(hp);
  REQUIRE(hfd >= 0);
  // One byte per buffer, each after the previous one's ack: a round trip
  // per buffer of the shard's pool.
  const std::uint32_t count = troupe::io::reactor_options{}.buffer_count;
  for (std::uint32_t i = 0; i < count; ++i) {
    const char c = static_cast<char>('a' + i % 26);
    REQUIRE(::send(hfd, &c, 1, MSG_NOSIGNAL) == 1);
    char ack = 0;
    INFO("round trip " << i);
    REQUIRE(recv_retry(hfd, &ack, 1, 0) == 1);
  }
  REQUIRE(holding.get().value() == "holding " + std::to_string(count));
  // Every buffer is out. Bytes come to another connection, and more to the
  // first one: the late read waits, it does not fail.
  sys.tell(l, read_once{});
  const int lfd = connect_blocking(lp);
  REQUIRE(lfd >= 0);
  for (int i = 0; i < 2000 && state.load() == 0; ++i) std::this_thread::sleep_for(1ms);
  REQUIRE(::send(lfd, "late bytes", 10, MSG_NOSIGNAL) == 10);
  REQUIRE(::send(hfd, "unread", 6, MSG_NOSIGNAL) == 6);
  std::this_thread::sleep_for(100ms);
  CHECK(state.load() == 1);
  CHECK(sys.ask<std::uint64_t>(h, pool_query{}, 5s).value() >= 1);  // it waited
  // The hoard goes back: the late read goes on with its bytes.
  CHECK(sys.ask<std::uint32_t>(h, drop_all{}, 5s).value() <= 1);
  for (int i = 0; i < 5000 && state.load() != 2; ++i) std::this_thread::sleep_for(1ms);
  CHECK(state.load() == 2);
  {
    std::lock_guard g(m);
    CHECK(got == "late bytes");
  }
  CHECK(sys.ask<std::uint32_t>(h, drop_all{}, 5s).value() == 0);
  ::close(hfd);
  ::close(lfd);
}

}  // namespace

TEST_CASE("recv_pooled reads a 24 MiB stream intact and gives every buffer back, on io_uring",
          "[engine][net][pooled]") {
  run_stream(troupe::io::backend_choice::automatic);
}

TEST_CASE("recv_pooled reads a 24 MiB stream intact on the epoll fallback",
          "[engine][net][pooled]") {
  run_stream(troupe::io::backend_choice::epoll);
}

TEST_CASE(
    "with every pooled buffer held a read waits, and goes on when they come back, on io_uring",
    "[engine][net][pooled]") {
  run_exhausted(troupe::io::backend_choice::automatic);
}

TEST_CASE("with every pooled buffer held a read waits on the epoll fallback too",
          "[engine][net][pooled]") {
  run_exhausted(troupe::io::backend_choice::epoll);
}
