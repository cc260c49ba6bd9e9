#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/seccomp.hpp"
#include "troupe/io/reactor.hpp"

using namespace std::chrono_literals;
using troupe::io::backend;
using troupe::io::backend_choice;
using troupe::io::reactor;

namespace {

// A minimal eager coroutine for driving awaitables in tests.
struct fire_and_forget {
  struct promise_type {
    fire_and_forget get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

fire_and_forget sleeper(reactor& r, std::chrono::milliseconds d, int id, std::vector<int>& out) {
  co_await r.sleep_for(d);
  out.push_back(id);
}

/// Runs `body` in a forked child that may not use io_uring; returns what
/// the child wrote to its pipe and its exit status.
template <class F>
std::pair<std::string, int> in_child_without_uring(F body) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    if (!troupe::test::forbid_io_uring()) _exit(90);
    std::string out = body();
    [[maybe_unused]] auto n = write(fds[1], out.data(), out.size());
    _exit(0);
  }
  close(fds[1]);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {got, status};
}

}  // namespace

TEST_CASE("the probe reports io_uring and its features on this kernel", "[io][probe]") {
  auto p = troupe::io::probe();
  if (!p.uring_available) {
    // Not a pass: the io_uring backend goes untested here, and the log says so.
    WARN("io_uring is not available on this machine, so the io_uring backend is untested: "
         << p.failure);
    CHECK(troupe::io::reactor().kind() == backend::epoll);
    return;
  }
  CHECK(p.describe().rfind("io_uring (", 0) == 0);
  // Multishot accept and buffer rings came with Linux 5.19; where they are
  // missing the fallbacks run, and the log says so.
  if (p.multishot_accept) {
    CHECK(p.describe().find("multishot_accept") != std::string::npos);
  } else {
    WARN("this kernel has no multishot accept: accept streams use their fallback");
  }
  if (p.buffer_ring) {
    CHECK(p.describe().find("buffer_ring") != std::string::npos);
  } else {
    WARN("this kernel has no provided-buffer rings: pooled reads use the free list");
  }
  reactor r;
  CHECK(r.kind() == backend::uring);
  CHECK(r.fallback_reason().empty());
}

TEST_CASE("reactor timers resume coroutines in deadline order", "[io][timer]") {
  for (auto choice : {backend_choice::automatic, backend_choice::epoll}) {
    reactor r(choice);
    std::vector<int> fired;
    sleeper(r, 30ms, 3, fired);
    sleeper(r, 10ms, 1, fired);
    sleeper(r, 20ms, 2, fired);
    sleeper(r, 20ms, 22, fired);  // same deadline: first armed, first fired
    auto end = std::chrono::steady_clock::now() + 5s;
    while (fired.size() < 4 && std::chrono::steady_clock::now() < end) r.run_once(true);
    CHECK(fired == std::vector<int>{1, 2, 22, 3});
  }
}

TEST_CASE("another thread wakes a reactor blocked with no deadline", "[io][wake]") {
  for (auto choice : {backend_choice::automatic, backend_choice::epoll}) {
    reactor r(choice);
    auto t0 = std::chrono::steady_clock::now();
    std::thread waker([&r] {
      std::this_thread::sleep_for(20ms);
      r.wake();
    });
    INFO("backend " << troupe::io::to_string(r.kind()));
    int handled = r.run_once(true);  // blocks until the wake
    waker.join();
    CHECK(handled >= 1);
    CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
  }
}

TEST_CASE("when io_uring is forbidden the probe says what failed and what to do", "[io][probe]") {
  auto [out, status] = in_child_without_uring([] {
    auto p = troupe::io::probe();
    return std::string(p.uring_available ? "available" : "unavailable") + "|" + p.failure;
  });
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(out.rfind("unavailable|", 0) == 0);
  CHECK(out.find("io_uring_setup failed") != std::string::npos);
  CHECK(out.find("Operation not permitted") != std::string::npos);
  CHECK(out.find("seccomp") != std::string::npos);
  CHECK(out.find("--io=epoll") != std::string::npos);
}

TEST_CASE("without io_uring the reactor falls back to epoll, or fails clearly when told to use it",
          "[io][probe]") {
  auto [out, status] = in_child_without_uring([] {
    std::string s;
    {
      reactor r;  // automatic
      s += std::string(troupe::io::to_string(r.kind())) + "|" + r.fallback_reason() + "|";
    }
    try {
      reactor strict(backend_choice::uring);
      s += "no error";
    } catch (const troupe::io::setup_error& e) {
      s += std::string("error: ") + e.what();
    }
    return s;
  });
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(out.rfind("epoll|io_uring_setup failed", 0) == 0);
  CHECK(out.find("error: io_uring_setup failed: Operation not permitted") != std::string::npos);
}

// ------------------------------------------------------------ accept streams, pooled reads

namespace {

using troupe::io::op;
using troupe::io::op_kind;
using troupe::io::pooled_buffer;
using troupe::io::reactor_options;

/// A reactor set-up to run a test with: the kernel's best, the io_uring
/// fallbacks forced, and epoll.
struct setup {
  const char* name;
  reactor_options options;
};

std::vector<setup> setups(std::uint32_t buffer_count = 256, std::uint32_t buffer_size = 16 * 1024) {
  reactor_options best{.buffer_count = buffer_count, .buffer_size = buffer_size};
  reactor_options plain = best;
  plain.multishot_accept = false;
  plain.buffer_ring = false;
  reactor_options epoll = best;
  epoll.backend = backend_choice::epoll;
  std::vector<setup> out{{"the kernel's best", best}, {"epoll", epoll}};
  if (troupe::io::probe().uring_available) {
    out.push_back({"io_uring without multishot accept or buffer rings", plain});
  }
  return out;
}

/// Runs `r` until `done()` or `limit` passes; true if done.
bool pump(reactor& r, const std::function<bool()>& done,
          std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    r.run_once(true, std::chrono::steady_clock::now() + std::chrono::milliseconds(5));
  }
  return true;
}

/// recv, again when a signal broke it. A thread that made a ring (these
/// tests make reactors) is told when the ring's teardown is done, and that
/// breaks its next recv with a timeout (SO_RCVTIMEO) with EINTR.
ssize_t recv_retry(int fd, void* buf, std::size_t len, int flags) {
  ssize_t n;
  do {
    n = ::recv(fd, buf, len, flags);
  } while (n < 0 && errno == EINTR);
  return n;
}

void suit(reactor& r, int fd) {
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, r.wants_nonblocking() ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
}

/// A blocking TCP listener on 127.0.0.1; its port in `port`.
int listen_tcp(std::uint16_t& port, int backlog = 128) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(fd, backlog) == 0);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  port = ntohs(sa.sin_port);
  return fd;
}

/// The same, suited to `r`.
int listen_tcp(reactor& r, std::uint16_t& port) {
  const int fd = listen_tcp(port);
  suit(r, fd);
  return fd;
}

/// A blocking client connected to 127.0.0.1:port (it completes in the
/// listener's backlog, accepted or not); reads time out after 10 s.
int dial(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  return fd;
}

/// A connected TCP pair on 127.0.0.1: `client` blocking, `server` suited to `r`.
struct tcp_pair {
  int client = -1;
  int server = -1;
  tcp_pair(const tcp_pair&) = delete;
  tcp_pair& operator=(const tcp_pair&) = delete;
  explicit tcp_pair(reactor& r) {
    std::uint16_t port = 0;
    const int lfd = listen_tcp(port);
    client = dial(port);
    server = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(lfd);
    REQUIRE(server >= 0);
    suit(r, server);
  }
  ~tcp_pair() {
    ::close(client);
    ::close(server);
  }
};

fire_and_forget accept_one(reactor& r, troupe::io::accept_stream* s, int listen_fd,
                           std::vector<int>& out) {
  op o;
  o.owner = &r;
  o.kind = s ? op_kind::accept_next : op_kind::accept;
  o.fd = listen_fd;
  o.stream = s;
  out.push_back(co_await o);
}

fire_and_forget read_one(reactor& r, int fd, std::vector<pooled_buffer>& out, int& last) {
  op o;
  o.owner = &r;
  o.kind = op_kind::recv_pooled;
  o.fd = fd;
  last = co_await o;
  if (last > 0) out.emplace_back(r, o.buffer, static_cast<std::size_t>(last));
}

/// Reads `fd` to its end with pooled reads, hashing the bytes (FNV-1a) and
/// giving each buffer back at once.
fire_and_forget read_all(reactor& r, int fd, std::uint64_t& hash, std::size_t& total, int& end,
                         bool& finished) {
  for (;;) {
    op o;
    o.owner = &r;
    o.kind = op_kind::recv_pooled;
    o.fd = fd;
    const int n = co_await o;
    if (n <= 0) {
      end = n;
      break;
    }
    pooled_buffer b(r, o.buffer, static_cast<std::size_t>(n));
    for (std::byte c : b.bytes()) hash = (hash ^ static_cast<std::uint8_t>(c)) * 1099511628211ull;
    total += b.size();
  }
  finished = true;
}

std::uint8_t pattern(std::size_t i) {
  return static_cast<std::uint8_t>((i * 131 + (i >> 11)) & 0xff);
}

}  // namespace

TEST_CASE("a reactor refuses a buffer pool shape the kernel could not take", "[io][pool]") {
  CHECK_THROWS_WITH(reactor(reactor_options{.buffer_count = 100}),
                    Catch::Contains("buffer_count must be a power of two"));
  CHECK_THROWS_WITH(reactor(reactor_options{.buffer_size = 0}),
                    Catch::Contains("buffer_size must be 1 byte to 1 MiB"));
}

TEST_CASE("an accept stream queues connections made before anybody asks, and stops at its bound",
          "[io][accept]") {
  for (const setup& su : setups()) {
    INFO(su.name);
    reactor r(su.options);
    std::uint16_t port = 0;
    const int lfd = listen_tcp(r, port);
    constexpr std::size_t bound = 4;
    troupe::io::accept_stream* s = r.open_accept_stream(lfd, bound);
    const bool ahead = r.kind() == backend::uring && su.options.multishot_accept &&
                       troupe::io::probe().multishot_accept;
    CHECK((s != nullptr) == ahead);
    std::vector<int> clients;
    std::vector<int> accepted;
    if (ahead) {
      // Three, below the bound: accepted while nobody asks, and it goes on.
      for (int i = 0; i < 3; ++i) clients.push_back(dial(port));
      CHECK(pump(r, [&] { return r.queued_connections(s) == 3; }));
      CHECK(r.accepting(s));
      // Three more: past the bound, so the kernel is told to stop.
      for (int i = 0; i < 3; ++i) clients.push_back(dial(port));
      CHECK(pump(r, [&] { return r.queued_connections(s) >= bound && !r.accepting(s); }));
      const std::size_t held = r.queued_connections(s);
      CHECK(held <= 6);  // the kernel takes the backlog in one go: maybe all six
      // Five more wait in the backlog, not in our queue.
      for (int i = 0; i < 5; ++i) clients.push_back(dial(port));
      pump(
          r, [] { return false; }, std::chrono::milliseconds(100));
      CHECK(r.queued_connections(s) == held);
      CHECK_FALSE(r.accepting(s));
    } else {
      for (int i = 0; i < 11; ++i) clients.push_back(dial(port));
    }
    // Taken one by one (at half the bound it accepts again): all eleven.
    for (std::size_t i = 0; i < clients.size(); ++i) {
      accept_one(r, s, lfd, accepted);
      REQUIRE(pump(r, [&] { return accepted.size() == i + 1; }));
      REQUIRE(accepted.back() >= 0);
    }
    CHECK(std::set<int>(accepted.begin(), accepted.end()).size() == clients.size());
    // Each accepted socket is its client's: bytes cross.
    for (std::size_t i = 0; i < clients.size(); ++i) {
      const char c = static_cast<char>('a' + i);
      REQUIRE(::send(clients[i], &c, 1, 0) == 1);
    }
    std::string got;
    for (int fd : accepted) {
      char c = 0;
      for (int tries = 0; tries < 1000 && ::recv(fd, &c, 1, MSG_DONTWAIT) != 1; ++tries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      got += c;
    }
    std::string want;
    for (std::size_t i = 0; i < clients.size(); ++i) want += static_cast<char>('a' + i);
    std::sort(got.begin(), got.end());
    CHECK(got == want);
    if (ahead) {
      // Two more queued, then the stream closes: they are closed with it.
      for (int i = 0; i < 2; ++i) clients.push_back(dial(port));
      CHECK(pump(r, [&] { return r.queued_connections(s) == 2; }));
      r.close_accept_stream(s);
      for (std::size_t i = clients.size() - 2; i < clients.size(); ++i) {
        char c;
        CHECK(recv_retry(clients[i], &c, 1, 0) == 0);  // the server side closed
      }
      pump(
          r, [] { return false; }, std::chrono::milliseconds(20));  // its last CQE
    }
    for (int fd : accepted) ::close(fd);
    for (int fd : clients) ::close(fd);
    ::close(lfd);
  }
}

TEST_CASE("pooled reads carry a long stream intact and give every buffer back", "[io][pool]") {
  for (const setup& su : setups(8, 4096)) {
    INFO(su.name);
    reactor r(su.options);
    tcp_pair p(r);
    constexpr std::size_t total = 4 << 20;
    std::uint64_t want = 14695981039346656037ull;
    for (std::size_t i = 0; i < total; ++i) want = (want ^ pattern(i)) * 1099511628211ull;
    std::thread writer([&p] {
      std::vector<std::uint8_t> chunk(65536);
      for (std::size_t off = 0; off < total;) {
        const std::size_t n = std::min(chunk.size(), total - off);
        for (std::size_t i = 0; i < n; ++i) chunk[i] = pattern(off + i);
        std::size_t sent = 0;
        while (sent < n) {
          auto k = ::send(p.client, chunk.data() + sent, n - sent, MSG_NOSIGNAL);
          if (k <= 0) return;
          sent += static_cast<std::size_t>(k);
        }
        off += n;
      }
      ::shutdown(p.client, SHUT_WR);
    });
    std::uint64_t hash = 14695981039346656037ull;
    std::size_t got = 0;
    int end = 1;
    bool finished = false;
    read_all(r, p.server, hash, got, end, finished);
    const bool ok = pump(
        r, [&] { return finished; }, std::chrono::milliseconds(30000));
    writer.join();
    REQUIRE(ok);
    CHECK(end == 0);  // the peer's end, not an error
    CHECK(got == total);
    CHECK(hash == want);
    const auto st = r.buffers();
    CHECK(st.held == 0);
    CHECK(st.count == 8);
    CHECK(st.kernel_ring == (r.kind() == backend::uring && su.options.buffer_ring &&
                             troupe::io::probe().buffer_ring));
  }
}

TEST_CASE("a pooled read waits while every buffer is held, and goes on when one comes back",
          "[io][pool]") {
  for (const setup& su : setups(4, 4096)) {
    INFO(su.name);
    reactor r(su.options);
    tcp_pair a(r);
    tcp_pair b(r);
    std::vector<pooled_buffer> held;
    int last = 0;
    // Four reads of one byte each take the four buffers, and keep them.
    for (std::size_t i = 0; i < 4; ++i) {
      const char c = static_cast<char>('0' + i);
      REQUIRE(::send(a.client, &c, 1, 0) == 1);
      read_one(r, a.server, held, last);
      REQUIRE(pump(r, [&] { return held.size() == i + 1; }));
      CHECK(held.back().size() == 1);
      CHECK(static_cast<char>(held.back().bytes()[0]) == c);
    }
    CHECK(r.buffers().held == 4);
    // Bytes arrive on another socket, and more on the first, with no buffer free.
    std::vector<pooled_buffer> late;
    int late_last = 1;
    read_one(r, b.server, late, late_last);
    REQUIRE(::send(b.client, "hello", 5, 0) == 5);
    REQUIRE(::send(a.client, "more", 4, 0) == 4);
    pump(
        r, [] { return false; }, std::chrono::milliseconds(100));
    CHECK(late.empty());
    CHECK(late_last == 1);  // still waiting, not failed
    CHECK(r.buffers().waits >= 1);
    CHECK(r.in_flight() >= 1);
    // One buffer back: the waiting read takes it and reads what came.
    held.erase(held.begin());
    REQUIRE(pump(r, [&] { return !late.empty(); }));
    CHECK(std::string(reinterpret_cast<const char*>(late[0].bytes().data()), late[0].size()) ==
          "hello");
    CHECK(r.buffers().held == 4);
    held.clear();
    late.clear();
    CHECK(r.buffers().held == 0);
    // And the first socket's bytes are still there for the next read.
    read_one(r, a.server, held, last);
    REQUIRE(pump(r, [&] { return held.size() == 1; }));
    CHECK(std::string(reinterpret_cast<const char*>(held[0].bytes().data()), held[0].size()) ==
          "more");
  }
}

TEST_CASE("cancel_all ends a waiting accept and a read waiting for a buffer", "[io][cancel]") {
  for (const setup& su : setups(1, 1024)) {
    INFO(su.name);
    reactor r(su.options);
    std::uint16_t port = 0;
    const int lfd = listen_tcp(r, port);
    troupe::io::accept_stream* s = r.open_accept_stream(lfd, 8);
    std::vector<int> accepted;
    accept_one(r, s, lfd, accepted);
    // The one buffer held, and a second read waiting for it.
    tcp_pair a(r);
    tcp_pair b(r);
    REQUIRE(::send(a.client, "x", 1, 0) == 1);
    std::vector<pooled_buffer> held;
    int last = 0;
    read_one(r, a.server, held, last);
    REQUIRE(pump(r, [&] { return held.size() == 1; }));
    int waiting = 1;
    read_one(r, b.server, held, waiting);
    REQUIRE(::send(b.client, "y", 1, 0) == 1);
    pump(
        r, [] { return false; }, std::chrono::milliseconds(50));
    REQUIRE(accepted.empty());
    REQUIRE(waiting == 1);
    r.cancel_all();
    CHECK(pump(r, [&] { return accepted.size() == 1 && waiting != 1; }));
    CHECK(accepted == std::vector<int>{-ECANCELED});
    CHECK(waiting == -ECANCELED);
    // Later ones end at once.
    accept_one(r, s, lfd, accepted);
    CHECK(accepted.size() == 2);
    CHECK(accepted.back() == -ECANCELED);
    held.clear();
    pump(
        r, [&] { return r.in_flight() == 0; }, std::chrono::milliseconds(1000));
    CHECK(r.in_flight() == 0);
    r.close_accept_stream(s);
    ::close(lfd);
  }
}

TEST_CASE("a reactor that ends with an accept stream open closes what it queued", "[io][accept]") {
  if (!troupe::io::probe().multishot_accept) {
    WARN("no multishot accept on this kernel: nothing to end");
    return;
  }
  std::uint16_t port = 0;
  const int lfd = listen_tcp(port);
  int client = -1;
  {
    reactor r;
    troupe::io::accept_stream* s = r.open_accept_stream(lfd, 8);
    REQUIRE(s != nullptr);
    client = dial(port);
    REQUIRE(pump(r, [&] { return r.queued_connections(s) == 1; }));
  }  // the ring first, then the stream and its connection
  char c;
  CHECK(recv_retry(client, &c, 1, 0) == 0);
  ::close(client);
  ::close(lfd);
}
