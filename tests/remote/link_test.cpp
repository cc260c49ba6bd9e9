// Engines in separate processes, linked over TCP on 127.0.0.1: this test
// process is one engine (id 1), troupe-test-peer processes are the others.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "peer/peer_messages.hpp"
#include "support/engine.hpp"
#include "support/process.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

/// A peer engine process and what it printed when ready.
struct peer {
  troupe::test::child_process proc;
  std::uint16_t port = 0;
  address counter, echo;

  explicit peer(std::vector<std::string> args) : proc(std::move(args)) {
    REQUIRE(proc.wait_for_output("ready ", 10s));
    std::istringstream in(proc.output().substr(proc.output().find("ready ")));
    std::string word, c, e;
    unsigned p = 0;
    in >> word >> p >> c >> e;
    port = static_cast<std::uint16_t>(p);
    counter = address::parse(c).value();
    echo = address::parse(e).value();
  }
};

std::vector<std::string> peer_args(std::uint32_t engine, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {TROUPE_TEST_PEER, "--engine-id", std::to_string(engine), "--listen",
                                "127.0.0.1:0"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

troupe::engine_options engine_one(std::vector<std::string> peers, std::string secret = {}) {
  troupe::engine_options o;
  o.core.engine_id = 1;
  o.core.shards = 2;
  o.links = troupe::link_options{.peers = std::move(peers),
                                 .secret = std::move(secret),
                                 .heartbeat = 100ms,
                                 .peer_timeout = 1s};
  return o;
}

/// Asks until the link is up (bounded); returns the last result.
troupe::result<peer_test::echo_text> ask_until_linked(troupe::system& sys, address to,
                                                      const std::string& text) {
  auto r = sys.ask<peer_test::echo_text>(to, peer_test::echo_text{text}, 2s);
  for (int i = 0; i < 200 && !r; ++i) {
    std::this_thread::sleep_for(20ms);
    r = sys.ask<peer_test::echo_text>(to, peer_test::echo_text{text}, 2s);
  }
  return r;
}

struct flood {
  address to;
  std::uint64_t n;
};
/// Set to end a flood early.
std::atomic<bool> flood_stop{false};
struct flood_on {
  address to;
  std::uint64_t next, last;
};
/// Sends `n` numbered messages to a remote counter, a chunk per turn, so
/// that its shard keeps reading its links in between.
struct sender : troupe::actor<sender, flood, flood_on> {
  void on(const flood& f) { on(flood_on{f.to, 1, f.n}); }
  void on(const flood_on& f) {
    if (flood_stop.load(std::memory_order_relaxed)) return;
    const std::uint64_t end = std::min(f.last, f.next + 4095);
    for (std::uint64_t i = f.next; i <= end; ++i) tell(f.to, peer_test::seq{i});
    if (end < f.last) tell(self(), flood_on{f.to, end + 1, f.last});
  }
};

std::string peer_port(const peer& p) { return "127.0.0.1:" + std::to_string(p.port); }

/// Asks the counter for its tally until it has `want` messages (bounded:
/// about a minute); the last tally.
peer_test::tally wait_tally(troupe::system& sys, address counter, std::uint64_t want) {
  peer_test::tally t{};
  for (int i = 0; i < 6000 && t.received < want; ++i) {
    t = sys.ask<peer_test::tally>(counter, peer_test::tally_query{}, 5s).value();
    if (t.received < want) std::this_thread::sleep_for(10ms);
  }
  return t;
}

}  // namespace

TEST_CASE("tell and ask reach an actor in another engine process, in order", "[link][processes]") {
  peer_test::register_messages();
  peer p(peer_args(2));
  troupe::test::engine sys(engine_one({peer_port(p)}));
  auto r = ask_until_linked(sys, p.echo, "hello, engine 2");
  REQUIRE(r);
  CHECK(r.value().text == "hello, engine 2");

  // Per-pair order over 1,000,000 messages, from two shards at once.
  constexpr std::uint64_t n = 500'000;
  address s0 = sys.spawn<sender>(troupe::spawn_options{.shard = 0});
  address s1 = sys.spawn<sender>(troupe::spawn_options{.shard = 1});
  sys.tell(s0, flood{p.counter, n});
  sys.tell(s1, flood{p.counter, n});
  const peer_test::tally t = wait_tally(sys, p.counter, 2 * n);
  CHECK(t.received == 2 * n);
  CHECK(t.out_of_order == 0);
  CHECK(sys.counters().sent_remote >= 2 * n);
}

namespace {

/// Waits (bounded) until every shard of `sys` serves `want` connections
/// to other engines; returns what each serves.
std::vector<std::uint64_t> links_per_shard(troupe::system& sys, std::uint64_t want) {
  std::vector<std::uint64_t> each;
  for (int i = 0; i < 300; ++i) {
    each.clear();
    bool all = true;
    for (const troupe::stats& st : sys.shard_counters()) {
      each.push_back(st.links);
      all &= st.links == want;
    }
    if (all) break;
    std::this_thread::sleep_for(10ms);
  }
  return each;
}

/// This process's TCP sockets connected to 127.0.0.1:`port`.
std::vector<int> sockets_to(std::uint16_t port) {
  std::vector<int> fds;
  for (int fd = 3; fd < 4096; ++fd) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0 &&
        sa.sin_family == AF_INET && ntohs(sa.sin_port) == port) {
      fds.push_back(fd);
    }
  }
  return fds;
}

/// Bytes sent on `fd` and acknowledged by the other end (TCP_INFO).
std::uint64_t bytes_acked(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return 0;
  return info.tcpi_bytes_acked;
}

}  // namespace

TEST_CASE("each shard sends on its own connection to another engine, whatever the shard counts",
          "[link][processes]") {
  peer_test::register_messages();
  // 3 shards here, 2 there: three connections, one per shard here; the
  // other engine's shard 0 serves two of them.
  peer p(peer_args(2, {"--shards", "2"}));
  troupe::engine_options o = engine_one({peer_port(p)});
  o.core.shards = 3;
  // Connections handed from shard to shard on either reactor.
  o.core.io = GENERATE(troupe::io::backend_choice::automatic, troupe::io::backend_choice::epoll);
  INFO("reactor: " << (o.core.io == troupe::io::backend_choice::epoll ? "epoll" : "automatic"));
  troupe::test::engine sys(o);
  REQUIRE(ask_until_linked(sys, p.echo, "up"));
  CHECK(links_per_shard(sys, 1) == std::vector<std::uint64_t>{1, 1, 1});
  CHECK(sockets_to(p.port).size() == 3);

  constexpr std::uint64_t n = 200'000;
  flood_stop = false;
  const std::vector<std::uint64_t> before = [&] {
    std::vector<std::uint64_t> v;
    for (const troupe::stats& st : sys.shard_counters()) v.push_back(st.sent_remote);
    return v;
  }();
  for (std::uint16_t sh = 0; sh < 3; ++sh) {
    address s = sys.spawn<sender>(troupe::spawn_options{.shard = sh});
    sys.tell(s, flood{p.counter, n});
  }
  const peer_test::tally t = wait_tally(sys, p.counter, 3 * n);
  CHECK(t.received == 3 * n);
  CHECK(t.out_of_order == 0);
  // Each shard encoded its own sender's messages: none went by shard 0.
  const std::vector<troupe::stats> after = sys.shard_counters();
  for (std::size_t sh = 0; sh < 3; ++sh) {
    INFO("shard " << sh);
    CHECK(after[sh].sent_remote - before[sh] >= n);
    CHECK(after[sh].sent_remote - before[sh] < n + 1000);
  }
}

TEST_CASE("an address passed in a message is used from a third engine", "[link][processes]") {
  peer_test::register_messages();
  peer p2(peer_args(2));
  peer p3(peer_args(3, {"--peer", peer_port(p2)}));
  troupe::test::engine sys(engine_one({peer_port(p2), peer_port(p3)}));
  REQUIRE(ask_until_linked(sys, p2.echo, "up"));
  REQUIRE(ask_until_linked(sys, p3.echo, "up"));
  // Engine 1 asks engine 2's echo to ask engine 3's echo.
  peer_test::relay rel{p3.echo, {}};
  std::strcpy(rel.text, "via engine 2");
  std::string got;
  for (int i = 0; i < 100 && got != "via engine 2"; ++i) {  // until 2 and 3 are linked
    auto r = sys.ask<peer_test::echo_text>(p2.echo, rel, 10s);
    got = r ? r.value().text : r.err().describe();
    if (got != "via engine 2") std::this_thread::sleep_for(50ms);
  }
  INFO(p2.proc.output());
  INFO(p3.proc.output());
  CHECK(got == "via engine 2");
}

TEST_CASE("a killed engine fails the asks waiting on it, and its restart links again",
          "[link][processes]") {
  peer_test::register_messages();
  troupe::engine_options o = engine_one({});
  o.links->listen = "127.0.0.1:0";
  troupe::test::engine sys(o);
  const std::string me = "127.0.0.1:" + std::to_string(troupe::listen_port(sys));
  auto p = std::make_unique<peer>(peer_args(2, {"--peer", me}));
  REQUIRE(ask_until_linked(sys, p->echo, "up"));
  // Under load (a flood to its counter, still going when the peer dies), an ask the peer holds for
  // 30 s, then kill -9: the ask must end long before.
  address flooder = sys.spawn<sender>(troupe::spawn_options{.shard = 1});
  sys.tell(flooder, flood{p->counter, 50'000'000});
  std::thread killer([&] {
    std::this_thread::sleep_for(200ms);
    p->proc.signal(SIGKILL);
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = sys.ask<int>(p->echo, peer_test::slow_echo{30'000}, 20s);
  const auto took = std::chrono::steady_clock::now() - t0;
  killer.join();
  REQUIRE(!r);
  CHECK(r.err().code() == troupe::errc::peer_lost);
  CHECK(took < 5s);  // the peer timeout is 1 s
  // What the flood could not deliver is counted as dead letters.
  for (int i = 0; i < 500 && sys.counters().dead(troupe::dead_reason::no_route) == 0; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  const auto st = sys.counters();
  CHECK(st.dead(troupe::dead_reason::peer_lost) + st.dead(troupe::dead_reason::no_route) > 0);
  flood_stop = true;  // the rest of the flood is not needed
  // Sending to it now is a dead letter, not a wait.
  auto again = sys.ask<peer_test::echo_text>(p->echo, peer_test::echo_text{"x"}, 5s);
  CHECK(!again);
  // A new process of engine 2 dials in again and the link comes back.
  p = std::make_unique<peer>(peer_args(2, {"--peer", me}));
  auto back = ask_until_linked(sys, p->echo, "back");
  REQUIRE(back);
  CHECK(back.value().text == "back");
}

TEST_CASE("a peer with the wrong secret is refused, the right one is linked", "[link][processes]") {
  peer_test::register_messages();
  peer good(peer_args(2, {"--secret", "s3cret"}));
  peer bad(peer_args(3, {"--secret", "guess"}));
  troupe::test::engine sys(engine_one({peer_port(good), peer_port(bad)}, "s3cret"));
  REQUIRE(ask_until_linked(sys, good.echo, "trusted"));
  auto refused = sys.ask<peer_test::echo_text>(bad.echo, peer_test::echo_text{"x"}, 1s);
  CHECK(!refused);
  CHECK(bad.proc.wait_for_output("wrong secret", 5s));
}

TEST_CASE("garbage on the peer port closes that connection only", "[link][processes]") {
  peer_test::register_messages();
  peer p(peer_args(2));
  troupe::test::engine sys(engine_one({peer_port(p)}));
  REQUIRE(ask_until_linked(sys, p.echo, "before"));
  auto raw = [&](const std::string& bytes) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(p.port);
    ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(50ms);
    ::close(fd);
  };
  raw("GET / HTTP/1.0\r\n\r\n");  // not a troupe engine
  std::string old_hello("TRPE\x01\x00\x07\x00\x00\x00\x06\x00troupe", 18);
  raw(old_hello + std::string(32, 'n'));  // an engine of another protocol version
  const std::string head("TRPE\x04\x00\x07\x00\x00\x00\x06\x00troupe", 18);
  const std::string nonce(32, 'n');
  // Then: shards, the connection's index in its group, the group.
  const std::string hello = head + nonce + std::string("\x01\x00\x00\x00\x01\0\0\0\0\0\0\0", 12);
  raw(head + nonce + std::string("\x00\x00\x00\x00\x01\0\0\0\0\0\0\0", 12));  // no shards
  // A further connection of a group that was never opened.
  raw(head + nonce + std::string("\x01\x00\x01\x00\x2a\0\0\0\0\0\0\0", 12));
  raw(hello + std::string("\xff\xff\xff\x7f\x01", 5));                  // an oversized frame
  raw(hello + std::string("\x10\x00\x00\x00\x01\x02\x01", 7));          // a truncated one
  raw(hello + std::string("\x04\x00\x00\x00\x04\x01\x00\x00\x00", 9));  // a short ack
  // An ack of more messages than were ever sent on that connection.
  raw(hello + std::string("\x08\x00\x00\x00\x04\x05\x00\x00\x00\x00\x00\x00\x00", 13));
  CHECK(p.proc.wait_for_output("bad magic", 5s));
  CHECK(p.proc.wait_for_output("refused: protocol version 1, this engine speaks 4", 5s));
  CHECK(p.proc.wait_for_output("refused: a handshake with 0 shards", 5s));
  CHECK(p.proc.wait_for_output(
      "refused: connection 1 of a link from engine 7 that is not open here", 5s));
  CHECK(p.proc.wait_for_output("exceeds max_frame", 5s));
  CHECK(p.proc.wait_for_output("malformed input: an ack of 4 bytes (8 expected)", 5s));
  CHECK(p.proc.wait_for_output("malformed input: an ack of 5 messages; 0 were confirmed and 0 sent",
                               5s));
  auto after = sys.ask<peer_test::echo_text>(p.echo, peer_test::echo_text{"after"}, 5s);
  REQUIRE(after);
  CHECK(after.value().text == "after");
}

TEST_CASE("a type the other engine does not know is a dead letter there, and the ask says so",
          "[link][processes]") {
  struct only_here {
    int v;
  };
  peer_test::register_messages();
  troupe::register_message<only_here>("test.only_here");
  peer p(peer_args(2));
  troupe::test::engine sys(engine_one({peer_port(p)}));
  REQUIRE(ask_until_linked(sys, p.echo, "up"));
  auto r = sys.ask<int>(p.echo, only_here{1}, 5s);
  REQUIRE(!r);
  CHECK(r.err().text() == "engine 2 has no message type named 'test.only_here'");
  // A type not registered at all never leaves this engine.
  struct unregistered {
    int v;
  };
  sys.tell(p.echo, unregistered{1});
  for (int i = 0; i < 100 && sys.counters().dead(troupe::dead_reason::unknown_type) == 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  CHECK(sys.counters().dead(troupe::dead_reason::unknown_type) == 1);
}

namespace {

struct watch_this {
  address target;
};
struct notices_query {};
/// Watches what it is told to and keeps the notices.
struct watcher : troupe::actor<watcher, watch_this, troupe::terminated, notices_query> {
  std::vector<troupe::terminated> seen;
  /// Answers once the watch has reached the target's engine: an ask behind
  /// it on the same path (this shard, its lane, the link) has come back.
  troupe::task<bool> on(const watch_this& w) {
    watch(w.target);
    if (w.target.engine() != 2) co_return true;
    peer_test::echo_text probe{"probe"};
    auto r = co_await ask<peer_test::echo_text>(w.target, std::move(probe), 5s);
    co_return static_cast<bool>(r);
  }
  void on(const troupe::terminated& t) { seen.push_back(t); }
  std::vector<troupe::terminated> on(const notices_query&) { return seen; }
};

std::vector<troupe::terminated> notices(troupe::system& sys, address w, std::size_t want) {
  std::vector<troupe::terminated> got;
  for (int i = 0; i < 500 && got.size() < want; ++i) {
    got = sys.ask<std::vector<troupe::terminated>>(w, notices_query{}, 5s).value();
    if (got.size() < want) std::this_thread::sleep_for(10ms);
  }
  return got;
}

}  // namespace

TEST_CASE("the end of any one connection of a link ends the whole link, which comes back",
          "[link][processes]") {
  peer_test::register_messages();
  peer_test::register_actors();
  peer p(peer_args(2, {"--shards", "2"}));
  troupe::test::engine sys(engine_one({peer_port(p)}));
  REQUIRE(ask_until_linked(sys, p.echo, "up"));
  REQUIRE(links_per_shard(sys, 1) == std::vector<std::uint64_t>{1, 1});
  const address target = sys.spawn_on(2, "peer_test.echo").value();
  address w = sys.spawn<watcher>(troupe::spawn_options{.shard = 0});
  REQUIRE(sys.ask<bool>(w, watch_this{target}, 5s).value());
  // Shard 1's connection: the one that carried a flood from shard 1.
  flood_stop = false;
  constexpr std::uint64_t n = 100'000;
  sys.tell(sys.spawn<sender>(troupe::spawn_options{.shard = 1}), flood{p.counter, n});
  const peer_test::tally t = wait_tally(sys, p.counter, n);
  REQUIRE(t.received == n);
  std::vector<int> fds = sockets_to(p.port);
  REQUIRE(fds.size() == 2);
  const std::uint64_t sent0 = bytes_acked(fds[0]), sent1 = bytes_acked(fds[1]);
  INFO("bytes sent: " << sent0 << " and " << sent1);
  CHECK(std::max(sent0, sent1) > 1'000'000);  // 100,000 messages of 8 bytes and more
  CHECK(std::min(sent0, sent1) < 100'000);    // asks, heartbeats, acks
  // A slow answer is pending when the connection goes.
  std::optional<troupe::errc> pending_code;
  std::thread asker([&] {
    auto r = sys.ask<int>(p.echo, peer_test::slow_echo{5000}, 10s);
    pending_code = r ? std::optional<troupe::errc>{} : r.err().code();
  });
  std::this_thread::sleep_for(200ms);  // the ask is on its way
  ::shutdown(sent0 > sent1 ? fds[0] : fds[1], SHUT_RDWR);
  asker.join();
  CHECK(pending_code == troupe::errc::peer_lost);  // at once, not at 5 s
  auto got = notices(sys, w, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].reason.rfind("engine lost: link to engine 2 lost: ", 0) == 0);
  // The dial loop brings the whole link back.
  auto again = ask_until_linked(sys, p.echo, "again");
  REQUIRE(again);
  CHECK(again.value().text == "again");
  CHECK(links_per_shard(sys, 1) == std::vector<std::uint64_t>{1, 1});
}

TEST_CASE(
    "an actor type registered by name is spawned on another engine, and an unknown one is refused",
    "[link][processes]") {
  peer_test::register_messages();
  peer_test::register_actors();
  peer p(peer_args(2));
  troupe::test::engine sys(engine_one({peer_port(p)}));
  REQUIRE(ask_until_linked(sys, p.echo, "up"));
  auto a = sys.spawn_on(2, "peer_test.echo", troupe::spawn_options{.shard = 1});
  REQUIRE(a);
  CHECK(a.value().engine() == 2);
  CHECK(a.value().shard() == 1);
  CHECK(a.value() != p.echo);
  auto r = sys.ask<peer_test::echo_text>(a.value(), peer_test::echo_text{"made there"}, 5s);
  REQUIRE(r);
  CHECK(r.value().text == "made there");
  // The same call for this engine spawns here.
  auto here = sys.spawn_on(1, "peer_test.echo");
  REQUIRE(here);
  CHECK(here.value().engine() == 1);
  auto unknown = sys.spawn_on(2, "peer_test.nobody");
  REQUIRE(!unknown);
  CHECK(unknown.err().code() == troupe::errc::not_found);
  CHECK(unknown.err().text() == "engine 2 has no actor type named 'peer_test.nobody'");
  auto nowhere = sys.spawn_on(9, "peer_test.echo");
  REQUIRE(!nowhere);
  CHECK(nowhere.err().code() == troupe::errc::peer_lost);
  CHECK(nowhere.err().text() == "no link to engine 9");
}

TEST_CASE("a watch on another engine fires when the actor ends, and when its engine is lost",
          "[link][processes]") {
  peer_test::register_messages();
  peer_test::register_actors();
  auto p = std::make_unique<peer>(peer_args(2));
  troupe::test::engine sys(engine_one({peer_port(*p)}));
  REQUIRE(ask_until_linked(sys, p->echo, "up"));
  const address first = sys.spawn_on(2, "peer_test.echo").value();
  const address second = sys.spawn_on(2, "peer_test.echo").value();
  address w = sys.spawn<watcher>(troupe::spawn_options{.shard = 1});
  CHECK(sys.ask<bool>(w, watch_this{address(9, 0, 1, 1)}, 5s).value());  // no link to 9
  REQUIRE(sys.ask<bool>(w, watch_this{first}, 5s).value());
  REQUIRE(sys.ask<bool>(w, watch_this{second}, 5s).value());
  sys.tell(first, peer_test::quit{});
  auto got = notices(sys, w, 2);
  REQUIRE(got.size() == 2);
  CHECK(got[0].who == address(9, 0, 1, 1));
  CHECK(got[0].reason == "engine lost: no link to engine 9");
  CHECK(got[1].who == first);
  CHECK(got[1].reason == "stopped");
  p->proc.signal(SIGKILL);
  got = notices(sys, w, 3);
  REQUIRE(got.size() == 3);
  CHECK(got[2].who == second);
  CHECK(got[2].reason.rfind("engine lost: link to engine 2 lost: ", 0) == 0);
  std::this_thread::sleep_for(200ms);
  CHECK(notices(sys, w, 3).size() == 3);  // exactly once each
}

namespace {

template <class M>
M with_name(const std::string& name) {
  M m{};
  std::snprintf(m.name, sizeof m.name, "%s", name.c_str());
  return m;
}

}  // namespace

TEST_CASE("named actors across three engines: one actor per name, resolved from every engine",
          "[link][processes][names]") {
  peer_test::register_messages();
  peer_test::register_actors();
  peer two(peer_args(2));
  peer three(peer_args(3, {"--peer", peer_port(two)}));
  troupe::test::engine sys(engine_one({peer_port(two), peer_port(three)}));
  REQUIRE(ask_until_linked(sys, two.echo, "up"));
  REQUIRE(ask_until_linked(sys, three.echo, "up"));
  // Engines 2 and 3 see each other too (a relay from one to the other).
  auto relayed = [&](const peer& from, const peer& to) {
    peer_test::relay r{to.echo, {}};
    std::snprintf(r.text, sizeof r.text, "mesh");
    for (int i = 0; i < 200; ++i) {
      auto got = sys.ask<peer_test::echo_text>(from.echo, r, 5s);
      if (got && got.value().text == "mesh") return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  REQUIRE(relayed(two, three));
  REQUIRE(relayed(three, two));

  const std::vector<std::string> names = {"alpha", "bravo",   "charlie", "delta",
                                          "echo",  "foxtrot", "golf",    "hotel"};
  std::map<std::string, address> named;
  for (const std::string& name : names) {
    // Three engines claim the name at the same time.
    address a2, a3;
    std::thread t2([&] {
      a2 = sys.ask<address>(two.echo, with_name<peer_test::name_claim_req>(name), 10s).value();
    });
    std::thread t3([&] {
      a3 = sys.ask<address>(three.echo, with_name<peer_test::name_claim_req>(name), 10s).value();
    });
    auto a1 = sys.spawn_named<peer_test::echo>(name, {});
    t2.join();
    t3.join();
    REQUIRE(a1);
    INFO(name << ": " << a1.value().to_string() << " " << a2.to_string() << " " << a3.to_string());
    CHECK(a2 == a1.value());
    CHECK(a3 == a1.value());
    named[name] = a1.value();
    // Resolved from every engine.
    CHECK(sys.lookup_name(name).value() == a1.value());
    CHECK(sys.ask<address>(two.echo, with_name<peer_test::name_query>(name), 5s).value() ==
          a1.value());
    CHECK(sys.ask<address>(three.echo, with_name<peer_test::name_query>(name), 5s).value() ==
          a1.value());
    auto hello = sys.ask<peer_test::echo_text>(a1.value(), peer_test::echo_text{name}, 5s);
    REQUIRE(hello);
    CHECK(hello.value().text == name);
  }
  // Claimed from one engine only, a named actor lives there, whichever
  // engine keeps its name.
  for (const std::string name : {"india", "juliet", "kilo", "lima", "mike", "november"}) {
    const address a =
        sys.ask<address>(three.echo, with_name<peer_test::name_claim_req>(name), 10s).value();
    CHECK(a.engine() == 3);
    CHECK(sys.lookup_name(name).value() == a);
    CHECK(sys.ask<address>(two.echo, with_name<peer_test::name_query>(name), 5s).value() == a);
  }
  // A named actor ends: every engine forgets the name (caches too).
  const address gone = named["alpha"];
  sys.tell(gone, peer_test::quit{});
  auto forgotten_everywhere = [&](const std::string& name) {
    for (int i = 0; i < 300; ++i) {
      const bool here = !sys.lookup_name(name);
      const bool at2 =
          sys.ask<address>(two.echo, with_name<peer_test::name_query>(name), 5s).value().is_null();
      const bool at3 = sys.ask<address>(three.echo, with_name<peer_test::name_query>(name), 5s)
                           .value()
                           .is_null();
      if (here && at2 && at3) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  CHECK(forgotten_everywhere("alpha"));
  // The name can be taken again, by a new actor.
  auto again = sys.spawn_named<peer_test::echo>("alpha", {});
  REQUIRE(again);
  CHECK(again.value() != gone);
}

TEST_CASE("names registered before an engine joins move to it and are found from it",
          "[link][processes][names]") {
  peer_test::register_messages();
  peer_test::register_actors();
  troupe::engine_options o = engine_one({});
  o.links->listen = "127.0.0.1:0";
  troupe::test::engine sys(o);
  const std::string me = "127.0.0.1:" + std::to_string(troupe::listen_port(sys));
  peer two(peer_args(2, {"--peer", me}));
  REQUIRE(ask_until_linked(sys, two.echo, "up"));
  const std::vector<std::string> names = {"oscar",  "papa",  "quebec",  "romeo",
                                          "sierra", "tango", "uniform", "victor"};
  std::map<std::string, address> named;
  for (const std::string& name : names) {
    named[name] =
        sys.ask<address>(two.echo, with_name<peer_test::name_claim_req>(name), 10s).value();
    REQUIRE(named[name]);
  }
  // Engine 3 joins both; some names now belong to its directory.
  peer three(peer_args(3, {"--peer", me, "--peer", peer_port(two)}));
  REQUIRE(ask_until_linked(sys, three.echo, "up"));
  auto all_found = [&] {
    for (const std::string& name : names) {
      auto here = sys.lookup_name(name);
      if (!here || here.value() != named[name]) return false;
      if (sys.ask<address>(three.echo, with_name<peer_test::name_query>(name), 5s).value() !=
          named[name]) {
        return false;
      }
      if (sys.ask<address>(two.echo, with_name<peer_test::name_query>(name), 5s).value() !=
          named[name]) {
        return false;
      }
    }
    return true;
  };
  bool found = false;
  for (int i = 0; i < 200 && !found; ++i) {
    found = all_found();
    if (!found) std::this_thread::sleep_for(20ms);
  }
  CHECK(found);
  // And a second claim of each, from the new engine, yields the same actor.
  for (const std::string& name : names) {
    CHECK(sys.ask<address>(three.echo, with_name<peer_test::name_claim_req>(name), 10s).value() ==
          named[name]);
  }
}
