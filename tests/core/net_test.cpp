#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
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

// ------------------------------------------------------------ Unix sockets

namespace {

/// recv, again when a signal broke it (a thread that made an io_uring ring
/// gets one EINTR on a recv with SO_RCVTIMEO once the ring is torn down).
ssize_t recv_retry(int fd, void* buf, std::size_t len, int flags) {
  ssize_t n;
  do {
    n = ::recv(fd, buf, len, flags);
  } while (n < 0 && errno == EINTR);
  return n;
}

/// A directory of its own under /tmp, removed with what is in it.
class temp_dir {
 public:
  temp_dir() {
    char tmpl[] = "/tmp/troupe-net-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~temp_dir() {
    for (const auto& f : made_) ::unlink(f.c_str());
    ::rmdir(path_.c_str());
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  /// `name` inside it (removed with it).
  std::string file(const std::string& name) {
    made_.push_back(path_ + "/" + name);
    return made_.back();
  }

 private:
  std::string path_;
  std::vector<std::string> made_;
};

struct open_unix {
  std::string path;
};

/// Listens on a Unix socket and gives each connection an echo actor.
struct unix_echo_server : troupe::actor<unix_echo_server, open_unix, serve> {
  troupe::net::socket listener;
  std::atomic<int>* served;
  explicit unix_echo_server(std::atomic<int>* n) : served(n) {}
  std::string on(const open_unix& o) {
    auto s = troupe::net::listen_unix(o.path);
    if (!s) return s.err().describe();
    listener = std::move(*s);
    tell(self(), serve{});
    return "";
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

int connect_unix_blocking(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// echo_round over an already connected `fd` (closed here).
bool echo_over(int fd, std::size_t total, int seed) {
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
    auto n = recv_retry(fd, in.data() + got, total - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  writer.join();
  ::close(fd);
  return got == total && std::memcmp(in.data(), out.data(), total) == 0;
}

struct dial_unix {
  std::string path;
  std::string text;
};

/// An actor as a Unix-socket client: connects, sends, reads the echo back.
struct unix_client : troupe::actor<unix_client, dial_unix> {
  troupe::task<std::string> on(const dial_unix& d) {
    auto s = co_await troupe::net::connect_unix(d.path);
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

void run_unix_echo(troupe::io::backend_choice io) {
  temp_dir dir;
  const std::string path = dir.file("echo.sock");
  troupe::system_options o;
  o.shards = 2;
  o.io = io;
  troupe::system sys(o);
  std::atomic<int> served{0};
  address srv = sys.spawn<unix_echo_server>(troupe::spawn_options{.shard = 0}, &served);
  REQUIRE(sys.ask<std::string>(srv, open_unix{path}, 5s).value() == "");
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  // Plain threads as clients, and an actor on the other shard.
  constexpr int clients = 16;
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < clients; ++i) {
    ts.emplace_back([&, i] {
      if (echo_over(connect_unix_blocking(path), 100'000 + static_cast<std::size_t>(i) * 997, i)) {
        ok.fetch_add(1);
      }
    });
  }
  address c = sys.spawn<unix_client>(troupe::spawn_options{.shard = 1});
  CHECK(sys.ask<std::string>(c, dial_unix{path, "hello over a Unix socket"}, 5s).value() ==
        "hello over a Unix socket");
  for (auto& t : ts) t.join();
  CHECK(ok.load() == clients);
  for (int i = 0; i < 1000 && served.load() < clients + 1; ++i) std::this_thread::sleep_for(2ms);
  CHECK(served.load() == clients + 1);
}

}  // namespace

TEST_CASE("actors serve echo on a Unix socket to threads and to an actor, on io_uring",
          "[engine][net][unix]") {
  run_unix_echo(troupe::io::backend_choice::automatic);
}

TEST_CASE("actors serve echo on a Unix socket on the epoll fallback", "[engine][net][unix]") {
  run_unix_echo(troupe::io::backend_choice::epoll);
}

TEST_CASE("a Unix socket path that cannot work is an error that names it", "[engine][net][unix]") {
  temp_dir dir;
  troupe::system_options o;
  o.shards = 1;
  troupe::system sys(o);
  const std::string too_long = "/tmp/" + std::string(120, 'x') + ".sock";
  auto a = troupe::net::listen_unix(too_long);
  REQUIRE_FALSE(a);
  CHECK(a.err().text().find(too_long) != std::string::npos);
  CHECK(a.err().text().find("at most 107") != std::string::npos);
  const std::string missing = dir.file("no-such-dir") + "/s.sock";
  auto b = troupe::net::listen_unix(missing);
  REQUIRE_FALSE(b);
  CHECK(b.err().describe() == "i/o error: bind unix:" + missing + ": No such file or directory");
  address c = sys.spawn<unix_client>();
  auto r1 = sys.ask<std::string>(c, dial_unix{missing, "x"}, 5s).value();
  CHECK(r1 == "connect failed: i/o error: connect unix:" + missing + ": No such file or directory");
  auto r2 = sys.ask<std::string>(c, dial_unix{too_long, "x"}, 5s).value();
  CHECK(r2.find("connect unix:" + too_long) != std::string::npos);
  // Nobody listens at a path that exists: refused, and said so.
  const std::string stale = dir.file("stale.sock");
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, stale.data(), stale.size());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    ::close(fd);  // the file stays: stale
  }
  auto r3 = sys.ask<std::string>(c, dial_unix{stale, "x"}, 5s).value();
  CHECK(r3 == "connect failed: i/o error: connect unix:" + stale + ": Connection refused");
}

TEST_CASE("listen_unix replaces a stale socket file but nothing else", "[engine][net][unix]") {
  temp_dir dir;
  const std::string stale = dir.file("stale.sock");
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, stale.data(), stale.size());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    ::close(fd);
  }
  auto s = troupe::net::listen_unix(stale);
  REQUIRE(s);
  // A live listener is not taken over.
  auto again = troupe::net::listen_unix(stale);
  REQUIRE_FALSE(again);
  CHECK(again.err().text() == "listen unix:" + stale + ": another socket listens there");
  s->close();
  // A file that is not a socket stays as it is.
  const std::string plain = dir.file("plain.txt");
  std::ofstream(plain) << "keep me";
  auto p = troupe::net::listen_unix(plain);
  REQUIRE_FALSE(p);
  CHECK(p.err().text() == "listen unix:" + plain + ": the path exists and is not a socket");
  std::ifstream in(plain);
  std::string kept;
  std::getline(in, kept);
  CHECK(kept == "keep me");
}

// ------------------------------------------------------------ acceptor

// A coroutine handler's result type may not live in an anonymous namespace
// (its frame type would, which GCC warns of); this name is unique instead.
namespace net_test_acceptor {
struct acceptor_report {
  bool ahead = false;
  std::size_t queued_at_start = 0;
  int accepted = 0;
  std::string error;
};
}  // namespace net_test_acceptor

namespace {

using net_test_acceptor::acceptor_report;

struct open_acceptor {
  std::size_t bound;
};
struct serve_n {
  int n;
};

/// Accepts through one acceptor, and gives each connection an echo actor.
struct acceptor_server : troupe::actor<acceptor_server, open_acceptor, serve_n> {
  troupe::net::socket listener;  // declared first: outlives the acceptor
  troupe::net::acceptor acc;
  std::atomic<int>* served;
  explicit acceptor_server(std::atomic<int>* n) : served(n) {}
  int on(const open_acceptor& o) {
    listener = troupe::net::listen("127.0.0.1", 0).value();
    acc = troupe::net::acceptor(listener, o.bound);
    return listener.local_port();
  }
  troupe::task<acceptor_report> on(const serve_n& s) {
    acceptor_report r;
    r.ahead = acc.accepts_ahead();
    r.queued_at_start = acc.queued();
    for (int i = 0; i < s.n; ++i) {
      auto c = co_await acc.next();
      if (!c) {
        r.error = c.err().describe();
        break;
      }
      ++r.accepted;
      address a = spawn<echo_connection>(
          troupe::spawn_options{.where = troupe::placement::round_robin}, std::move(*c), served);
      tell(a, serve{});
    }
    co_return r;
  }
};

void run_acceptor(troupe::io::backend_choice io) {
  troupe::system_options o;
  o.shards = 2;
  o.io = io;
  troupe::system sys(o);
  std::atomic<int> served{0};
  address srv = sys.spawn<acceptor_server>(troupe::spawn_options{.shard = 0}, &served);
  constexpr std::size_t bound = 4;
  const auto port = static_cast<std::uint16_t>(sys.ask<int>(srv, open_acceptor{bound}, 5s).value());
  // Forty connect, and speak, before anybody asks for a connection.
  constexpr int clients = 40;
  std::vector<int> fds;
  for (int i = 0; i < clients; ++i) {
    fds.push_back(connect_blocking(port));
    REQUIRE(fds.back() >= 0);
    const std::string hello = "client " + std::to_string(i);
    REQUIRE(::send(fds.back(), hello.data(), hello.size(), 0) ==
            static_cast<ssize_t>(hello.size()));
  }
  std::this_thread::sleep_for(50ms);  // the shard accepts ahead meanwhile, up to its bound
  auto rep = sys.ask<acceptor_report>(srv, serve_n{clients}, 10s).value();
  CHECK(rep.error == "");
  CHECK(rep.accepted == clients);
  const auto p = troupe::io::probe();
  if (io == troupe::io::backend_choice::epoll) {
    CHECK_FALSE(rep.ahead);
  } else if (p.multishot_accept) {
    CHECK(rep.ahead);
    CHECK(rep.queued_at_start >= bound);  // taken while nobody asked; then it stopped
  } else {
    WARN("no multishot accept on this kernel: the acceptor took one connection per next()");
  }
  for (int i = 0; i < clients; ++i) {
    const std::string hello = "client " + std::to_string(i);
    std::string back(hello.size(), '\0');
    std::size_t got = 0;
    while (got < back.size()) {
      auto n = recv_retry(fds[i], back.data() + got, back.size() - got, 0);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    CHECK(back == hello);
    ::close(fds[i]);
  }
  for (int i = 0; i < 1000 && served.load() < clients; ++i) std::this_thread::sleep_for(2ms);
  CHECK(served.load() == clients);
}

}  // namespace

TEST_CASE("one acceptor takes more connections than its queue bound, made before anybody asked",
          "[engine][net][acceptor]") {
  run_acceptor(troupe::io::backend_choice::automatic);
}

TEST_CASE("an acceptor on the epoll fallback takes one connection per next()",
          "[engine][net][acceptor]") {
  run_acceptor(troupe::io::backend_choice::epoll);
}

namespace {

struct wait_forever {};

/// Waits for a connection that never comes; says how the wait ended.
struct idle_acceptor : troupe::actor<idle_acceptor, open_acceptor, wait_forever> {
  troupe::net::socket listener;
  troupe::net::acceptor acc;
  std::mutex* m;
  std::string* outcome;
  std::atomic<bool>* waiting;
  idle_acceptor(std::mutex* mu, std::string* out, std::atomic<bool>* w)
      : m(mu), outcome(out), waiting(w) {}
  int on(const open_acceptor& o) {
    listener = troupe::net::listen("127.0.0.1", 0).value();
    acc = troupe::net::acceptor(listener, o.bound);
    return listener.local_port();
  }
  troupe::task<void> on(const wait_forever&) {
    waiting->store(true);
    auto c = co_await acc.next();
    std::lock_guard g(*m);
    *outcome = c ? "a connection" : c.err().describe();
  }
};

}  // namespace

TEST_CASE("stopping the system ends an acceptor's waiting next() with an error",
          "[engine][net][acceptor]") {
  for (auto io : {troupe::io::backend_choice::automatic, troupe::io::backend_choice::epoll}) {
    INFO(troupe::io::to_string(io == troupe::io::backend_choice::epoll
                                   ? troupe::io::backend::epoll
                                   : troupe::io::backend::uring));
    std::mutex m;
    std::string outcome = "not ended";
    std::atomic<bool> waiting{false};
    {
      troupe::system_options o;
      o.shards = 2;
      o.io = io;
      troupe::system sys(o);
      address a =
          sys.spawn<idle_acceptor>(troupe::spawn_options{.shard = 1}, &m, &outcome, &waiting);
      REQUIRE(sys.ask<int>(a, open_acceptor{8}, 5s).value() > 0);
      sys.tell(a, wait_forever{});
      for (int i = 0; i < 1000 && !waiting.load(); ++i) std::this_thread::sleep_for(1ms);
      std::this_thread::sleep_for(20ms);  // in next() by now
      sys.stop();
    }
    std::lock_guard g(m);
    CHECK(outcome == "i/o error: accept: Operation canceled");
  }
}
