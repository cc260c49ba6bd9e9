// Engines in network namespaces that the test makes (support/netns.hpp),
// linked over a bridge, with a link cut silently mid-stream and healed:
// - two troupe-test-peer processes, X (--drive: it streams tells and asks to
//   Y and prints what happens) and Y;
// - three `troupe serve` engines of a convention (a leader, two members),
//   one member cut off from the other two.
// This test process is in none of those namespaces: it reads the engines'
// output, sends X signals for reports, and runs the troupe CLI inside a
// namespace with `ip netns exec`. Engine timing: heartbeat 100 ms, peer
// timeout 1 s.

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/netns.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;
using troupe::test::child_process;
using troupe::test::netns_network;

namespace {

constexpr long long peer_timeout_ms = 1000;
/// Detection may take the timeout, a tick of the link's timer (heartbeat/2)
/// and the scheduling of loaded or sanitized processes.
constexpr long long detection_margin_ms = 1500;
/// How long a cut lasts at least: the side that dials meets silence when
/// it redials, before the heal.
constexpr long long cut_for_ms = 2500;

/// Milliseconds on the monotonic clock, which the engines print too.
long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// True if `p`'s PID runs `binary` itself: `ip netns exec` exec'd it, so
/// that signals and kills by that PID reach the engine.
bool runs(const child_process& p, const std::string& binary) {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(p.pid()) + "/exe", ec);
  return !ec && exe == std::filesystem::canonical(binary);
}

std::vector<std::string> lines_starting(const std::string& out, const std::string& prefix) {
  std::vector<std::string> found;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) found.push_back(line);
  }
  return found;
}

std::size_t occurrences(const std::string& out, const std::string& text) {
  std::size_t n = 0;
  for (auto at = out.find(text); at != std::string::npos; at = out.find(text, at + 1)) ++n;
  return n;
}

/// Waits (bounded) until `p` printed `n` lines starting with `prefix`; returns those there are.
std::vector<std::string> wait_lines(const child_process& p, const std::string& prefix,
                                    std::size_t n, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  auto found = lines_starting(p.output(), prefix);
  while (found.size() < n && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(10ms);
    found = lines_starting(p.output(), prefix);
  }
  return found;
}

/// The "t=<ms>" stamp of a driver line (-1 if none).
long long stamp(const std::string& line) {
  std::smatch m;
  return std::regex_search(line, m, std::regex(" t=([0-9]+)")) ? std::stoll(m[1]) : -1;
}

/// One "report" line of the driver: key=value fields, and order_error=<the
/// rest of the line> when the checker on Y could not be asked.
struct report {
  std::map<std::string, std::string> fields;
  std::string line;

  bool has(const std::string& key) const { return fields.contains(key); }
  std::string text(const std::string& key) const {
    auto it = fields.find(key);
    return it == fields.end() ? std::string() : it->second;
  }
  long long num(const std::string& key) const {
    auto it = fields.find(key);
    return it == fields.end() ? -1 : std::stoll(it->second);
  }
};

/// Asks the driver for report number `k` (SIGUSR1) and parses it.
report ask_report(const child_process& x, int k) {
  const std::string prefix = "report " + std::to_string(k) + " ";
  x.signal(SIGUSR1);
  const auto found = wait_lines(x, prefix, 1, 10s);
  report r;
  if (found.empty()) return r;
  r.line = found.front();
  std::istringstream in(r.line.substr(prefix.size()));
  for (std::string word; in >> word;) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = word.substr(0, eq);
    if (key == "order_error") {
      std::string rest;
      std::getline(in, rest);
      r.fields[key] = word.substr(eq + 1) + rest;
      break;
    }
    r.fields[key] = word.substr(eq + 1);
  }
  return r;
}

/// Ends `p` with SIGTERM (a graceful stop); its exit status, or -1.
int stop_gracefully(child_process& p) {
  p.signal(SIGTERM);
  const auto status = p.wait_exit(15s);
  return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

/// The engine ids `troupe members` lists on the engine of host `i`
/// (whose admin endpoint is 127.0.0.1:7700 in its namespace); empty if
/// the CLI failed.
std::vector<std::uint32_t> members_seen(const netns_network& net, std::size_t i) {
  child_process cli(net.exec(i, {TROUPE_BINARY, "members", "--admin", "127.0.0.1:7700"}));
  const auto status = cli.wait_exit(10s);
  std::vector<std::uint32_t> ids;
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) return ids;
  for (const auto& line : lines_starting(cli.output(), "engine ")) {
    ids.push_back(static_cast<std::uint32_t>(std::stoul(line.substr(7))));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

/// Waits (bounded) until host `i`'s engine lists exactly `want`; what it listed last.
std::vector<std::uint32_t> wait_members(const netns_network& net, std::size_t i,
                                        const std::vector<std::uint32_t>& want,
                                        std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  auto seen = members_seen(net, i);
  while (seen != want && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(50ms);
    seen = members_seen(net, i);
  }
  return seen;
}

/// Waits (bounded) until `p` printed `text`; the milliseconds from
/// `since` to when it was seen (an upper bound of when it was printed), or
/// -1 if it never was.
long long seen_after(const child_process& p, const std::string& text, long long since,
                     std::chrono::milliseconds limit) {
  return p.wait_for_output(text, limit) ? now_ms() - since : -1;
}

}  // namespace

TEST_CASE("a namespace that cannot be made fails the test, naming the command and its error",
          "[netns]") {
  // In a child that is not root, as a test run without CAP_NET_ADMIN is.
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    std::string what = "no error";
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
      what = "setuid failed";
    } else {
      try {
        netns_network net(1);
      } catch (const std::exception& e) {
        what = e.what();
      }
    }
    (void)!::write(pipe_fds[1], what.data(), what.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string what;
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) what.append(buf, n);
  ::close(pipe_fds[0]);
  ::waitpid(pid, nullptr, 0);
  INFO(what);
  CHECK(what.find("netns: `") == 0);
  CHECK(what.find(" netns add troupe-") != std::string::npos);
  CHECK(what.find("exited with") != std::string::npos);
  CHECK(what.find("need root or CAP_NET_ADMIN") != std::string::npos);
}

TEST_CASE(
    "a link cut silently mid-stream between two network namespaces fails the pending asks, "
    "dead-letters what was queued, and comes back by redial",
    "[netns][link][processes]") {
  const long long t0 = now_ms();
  netns_network net(2);  // host 0: engine 1 (X), host 1: engine 2 (Y)
  const std::string y_at = net.address(1) + ":7000";
  const std::vector<std::string> timing = {"--heartbeat", "100", "--peer-timeout",
                                           std::to_string(peer_timeout_ms)};
  std::vector<std::string> y_args = {TROUPE_TEST_PEER, "--engine-id", "2", "--listen", y_at};
  y_args.insert(y_args.end(), timing.begin(), timing.end());
  child_process y(net.exec(1, y_args));
  REQUIRE(y.wait_for_output("ready ", 10s));
  CHECK(runs(y, TROUPE_TEST_PEER));
  std::vector<std::string> x_args = {
      TROUPE_TEST_PEER, "--engine-id", "1",       "--listen", net.address(0) + ":7000",
      "--peer",         y_at,          "--drive", "2"};
  x_args.insert(x_args.end(), timing.begin(), timing.end());
  child_process x(net.exec(0, x_args));
  auto logs = [&] { return "engine 1 (X):\n" + x.output() + "\nengine 2 (Y):\n" + y.output(); };

  // Flowing: tells in order, quick asks answered, slow asks pending on Y.
  {
    const bool streaming = x.wait_for_output("drive streaming", 20s);
    INFO(logs());
    REQUIRE(streaming);
    CHECK(runs(x, TROUPE_TEST_PEER));
    const auto asks = wait_lines(x, "ask t=", 1, 5s);
    REQUIRE(!asks.empty());
    CHECK(asks.front().ends_with(" ok"));
  }
  std::this_thread::sleep_for(500ms);
  const report before = ask_report(x, 1);
  {
    INFO(logs());
    REQUIRE(before.has("received"));
    CHECK(before.num("received") > 1000);
    CHECK(before.num("received") == before.num("last"));  // 1, 2, 3, ... each once, in order
    CHECK(before.num("gaps") == 0);
    CHECK(before.num("backwards") == 0);
    CHECK(before.num("dead_peer_lost") == 0);
    CHECK(before.num("local_failed") == 0);
  }

  // The cut: silence both ways, mid-stream.
  const long long cut_at = now_ms();
  net.cut_silently(1);
  const auto slow = wait_lines(
      x, "slow-ask ", 4, std::chrono::milliseconds(peer_timeout_ms + detection_margin_ms + 2000));
  const long long y_saw = seen_after(
      y, "link to engine 1 (accepted) closed: no traffic from the peer for 1000ms", cut_at, 5s);
  const report during = ask_report(x, 2);
  {
    INFO(logs());
    // Every pending ask failed: the peer was lost, found by its silence, in time.
    REQUIRE(slow.size() == 4);
    for (const auto& line : slow) {
      INFO(line);
      CHECK(line.find(" failed peer lost: link to engine 2 lost: no traffic from the peer for "
                      "1000ms") != std::string::npos);
      CHECK(stamp(line) - cut_at >= peer_timeout_ms - 200);
      CHECK(stamp(line) - cut_at <= peer_timeout_ms + detection_margin_ms);
    }
    // The quick asks failed the same way, and then at once for want of a link.
    bool quick_lost = false;
    for (const auto& line : lines_starting(x.output(), "ask t=")) {
      if (stamp(line) >= cut_at && line.find(" failed peer lost: ") != std::string::npos) {
        quick_lost = true;
      }
      CHECK(line.find("wrong reply") == std::string::npos);
    }
    CHECK(quick_lost);
    // Y saw the silence too.
    CHECK(y_saw >= 0);
    CHECK(y_saw <= peer_timeout_ms + detection_margin_ms);
    // What was queued for Y when the link died is counted, as dead letters.
    REQUIRE(!during.line.empty());
    CHECK(!during.has("received"));
    CHECK(during.text("order_error").find("no link to engine 2") != std::string::npos);
    CHECK(during.num("dead_peer_lost") > 0);
    // X went on serving its own actors all along.
    CHECK(during.num("local_asks") > before.num("local_asks") + 20);
    CHECK(during.num("local_failed") == 0);
    CHECK(during.num("local_max_ms") < 500);
  }

  // Heal: X's dial loop links again, by itself.
  std::this_thread::sleep_for(
      std::chrono::milliseconds(std::max(0LL, cut_at + cut_for_ms - now_ms())));
  const long long heal_at = now_ms();
  net.heal(1);
  long long back_at = -1;
  for (const auto end = heal_at + 15'000; back_at < 0 && now_ms() < end;) {
    for (const auto& line : lines_starting(x.output(), "ask t=")) {
      if (stamp(line) > heal_at && line.ends_with(" ok")) back_at = stamp(line);
    }
    if (back_at < 0) std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(300ms);
  const report after = ask_report(x, 3);
  {
    INFO(logs());
    REQUIRE(back_at >= 0);
    CHECK(occurrences(x.output(), "link to engine 2 (" + y_at + ") is up") == 2);
    REQUIRE(after.has("received"));
    CHECK(after.num("received") > before.num("received"));
    CHECK(after.num("backwards") == 0);  // in order, before the cut and after it
    CHECK(after.num("gaps") == 1);       // one hole: what the cut lost
    CHECK(after.num("local_failed") == 0);
    CHECK(after.num("local_max_ms") < 500);
  }

  // Accounting. The contract says nothing vanishes: each streamed message
  // is received or a dead letter. Dead letters here include a few asks
  // (at most one per failed ask), hence a range. A message Y received but
  // had not yet confirmed when the link died is both (X cannot know it
  // arrived): at most a batch of acks' worth.
  x.signal(SIGUSR2);
  REQUIRE(x.wait_for_output("stream stopped", 5s));
  report last = ask_report(x, 4);
  for (int k = 5; k < 40; ++k) {
    std::this_thread::sleep_for(50ms);
    report next = ask_report(x, k);
    const bool settled = next.num("received") == last.num("received");
    last = std::move(next);
    if (settled) break;
  }
  {
    INFO(logs());
    REQUIRE(last.has("received"));
    const long long streamed = last.num("streamed");
    const long long received = last.num("received");
    const long long dead = last.num("dead_peer_lost") + last.num("dead_no_route");
    const long long vanished_at_least = streamed - received - dead;
    const long long vanished_at_most = vanished_at_least + last.num("remote_ask_failures");
    std::printf(
        "netns link test: streamed %lld, received %lld, dead letters %lld (peer lost %lld, no "
        "route %lld); neither: %lld to %lld; lost %lld ms after the cut, linked again %lld ms "
        "after the heal; %lld ms in all\n",
        streamed, received, dead, last.num("dead_peer_lost"), last.num("dead_no_route"),
        vanished_at_least, vanished_at_most, stamp(slow.front()) - cut_at, back_at - heal_at,
        now_ms() - t0);
    CHECK(received <= streamed);
    CHECK(vanished_at_least <= 0);  // nothing vanished
    // Counted twice (received, and a dead letter at X): only what arrived
    // unconfirmed, never more than the ack batch and a heartbeat's worth.
    CHECK(vanished_at_most >= -3000);
  }

  {
    INFO(logs());
    CHECK(stop_gracefully(x) == 0);
    CHECK(stop_gracefully(y) == 0);
  }
}

TEST_CASE(
    "a convention member cut off in its own network namespace is lost to the others, sees them "
    "lost, and joins again when the network heals",
    "[netns][convention][processes]") {
  const long long t0 = now_ms();
  netns_network net(3);  // host 0: the leader (engine 1); hosts 1, 2: members (engines 2, 3)
  const std::string leader = net.address(0) + ":7000";
  auto serve = [&](std::size_t host) {
    return net.exec(
        host, {TROUPE_BINARY, "serve", "--shards", "1", "--engine-id", std::to_string(host + 1),
               "--listen", net.address(host) + ":7000", "--convention", leader, "--capabilities",
               "{\"host\": " + std::to_string(host) + "}", "--admin", "127.0.0.1:7700",
               "--heartbeat", "100", "--peer-timeout", std::to_string(peer_timeout_ms)});
  };
  child_process lead(serve(0));
  REQUIRE(lead.wait_for_output("admin endpoint on http://", 10s));
  child_process m1(serve(1));
  child_process m2(serve(2));
  auto logs = [&] {
    return "engine 1 (leader):\n" + lead.output() + "\nengine 2:\n" + m1.output() +
           "\nengine 3:\n" + m2.output();
  };
  {
    const bool up = m1.wait_for_output("admin endpoint on http://", 10s) &&
                    m2.wait_for_output("admin endpoint on http://", 10s);
    INFO(logs());
    REQUIRE(up);
    CHECK(runs(lead, TROUPE_BINARY));
    CHECK(runs(m1, TROUPE_BINARY));
    CHECK(runs(m2, TROUPE_BINARY));
    const std::vector<std::uint32_t> all = {1, 2, 3};
    REQUIRE(wait_members(net, 0, all, 10s) == all);
    REQUIRE(wait_members(net, 1, all, 10s) == all);
    REQUIRE(wait_members(net, 2, all, 10s) == all);
  }

  // Engine 3 is cut off: each side sees the other lost, by its silence.
  const long long cut_at = now_ms();
  net.cut_silently(2);
  const auto limit = std::chrono::milliseconds(peer_timeout_ms + detection_margin_ms + 2000);
  const long long leader_saw =
      seen_after(lead, "engine 1: engine 3 was lost from the convention: ", cut_at, limit);
  const long long m1_saw =
      seen_after(m1, "engine 2: engine 3 was lost from the convention: ", cut_at, limit);
  const long long m2_saw_leader =
      seen_after(m2, "engine 3: engine 1 was lost from the convention: ", cut_at, limit);
  const long long m2_saw_m1 =
      seen_after(m2, "engine 3: engine 2 was lost from the convention: ", cut_at, limit);
  {
    INFO(logs());
    for (long long saw : {leader_saw, m1_saw, m2_saw_leader, m2_saw_m1}) {
      CHECK(saw >= 0);
      CHECK(saw <= peer_timeout_ms + detection_margin_ms);
    }
    CHECK(lead.output().find("engine 1: engine 3 was lost from the convention: no traffic from "
                             "the peer for 1000ms") != std::string::npos);
    CHECK(m2.output().find("engine 3: engine 1 was lost from the convention: no traffic from the "
                           "peer for 1000ms") != std::string::npos);
    CHECK(wait_members(net, 0, {1, 2}, 5s) == std::vector<std::uint32_t>{1, 2});
    CHECK(wait_members(net, 1, {1, 2}, 5s) == std::vector<std::uint32_t>{1, 2});
    CHECK(wait_members(net, 2, {3}, 5s) == std::vector<std::uint32_t>{3});
  }

  // Heal: engine 3 dials the leader and engine 2 again, and all list all.
  std::this_thread::sleep_for(
      std::chrono::milliseconds(std::max(0LL, cut_at + cut_for_ms - now_ms())));
  const long long heal_at = now_ms();
  net.heal(2);
  {
    const std::vector<std::uint32_t> all = {1, 2, 3};
    const auto seen0 = wait_members(net, 0, all, 15s);
    const auto seen1 = wait_members(net, 1, all, 10s);
    const auto seen2 = wait_members(net, 2, all, 10s);
    const long long rejoined = now_ms() - heal_at;
    INFO(logs());
    CHECK(seen0 == all);
    CHECK(seen1 == all);
    CHECK(seen2 == all);
    CHECK(occurrences(lead.output(), "engine 1: engine 3 (" + net.address(2) +
                                         ":7000) joined the convention") == 2);
    CHECK(occurrences(m1.output(), "engine 2: engine 3 (" + net.address(2) +
                                       ":7000) joined the convention") == 2);
    std::printf(
        "netns convention test: lost after %lld/%lld ms (leader/member), the cut-off member saw "
        "them lost after %lld/%lld ms; all listed all again %lld ms after the heal; %lld ms in "
        "all\n",
        leader_saw, m1_saw, m2_saw_leader, m2_saw_m1, rejoined, now_ms() - t0);
  }
  {
    INFO(logs());
    CHECK(stop_gracefully(m2) == 0);
    CHECK(stop_gracefully(m1) == 0);
    CHECK(stop_gracefully(lead) == 0);
  }
}
