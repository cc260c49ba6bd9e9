// The etcd client against a real etcd on 127.0.0.1 (tests/support/etcd.hpp):
// one node, or a 3-node cluster that loses a member.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "support/etcd.hpp"
#include "support/eventually.hpp"

using namespace std::chrono_literals;
using troupe::errc;
using troupe::internal::etcd_client;
using troupe::internal::etcd_event;
using troupe::internal::parse_etcd_url;
using troupe::test::etcd_cluster;
using troupe::test::eventually;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// What a watch delivered, gathered on its thread and read on the test's.
class watch_log {
 public:
  void add(const std::vector<etcd_event>& batch) {
    std::lock_guard lock(mutex_);
    events_.insert(events_.end(), batch.begin(), batch.end());
    changed_.notify_all();
  }
  void add_error(const troupe::error& e, bool final) {
    std::lock_guard lock(mutex_);
    errors_.push_back(e.describe());
    if (final) final_ = true;
    changed_.notify_all();
  }
  /// Waits (bounded) until `n` events have come; returns them all.
  std::vector<etcd_event> wait_events(std::size_t n, std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, limit, [&] { return events_.size() >= n; });
    return events_;
  }
  /// Waits (bounded) for a final error.
  bool wait_final(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return final_; });
  }
  std::vector<std::string> errors() {
    std::lock_guard lock(mutex_);
    return errors_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<etcd_event> events_;
  std::vector<std::string> errors_;
  bool final_ = false;
};

}  // namespace

TEST_CASE("etcd URLs are read into endpoints, and bad ones are named with what is wrong",
          "[etcd]") {
  auto one = parse_etcd_url("etcd://127.0.0.1:2379");
  REQUIRE(one.ok());
  CHECK(*one == std::vector<std::string>{"127.0.0.1:2379"});
  auto three = parse_etcd_url("etcd://a:1,b.example:2379,[::1]:65535");
  REQUIRE(three.ok());
  CHECK(*three == std::vector<std::string>{"a:1", "b.example:2379", "[::1]:65535"});

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"http://127.0.0.1:2379", "does not start with etcd://"},
      {"etcd://", "names no endpoint"},
      {"etcd://127.0.0.1", "has no :PORT"},
      {"etcd://127.0.0.1:", "has a bad port"},
      {"etcd://127.0.0.1:0", "has a bad port"},
      {"etcd://127.0.0.1:65536", "has a bad port"},
      {"etcd://127.0.0.1:12x", "has a bad port"},
      {"etcd://:2379", "has an empty host"},
      {"etcd://a:1,,b:2", "has an empty endpoint"},
      {"etcd://a:1,", "has an empty endpoint"},
      {"etcd://a b:1", "has a bad host"},
      {"etcd://[::1:2379", "has no closing ]"},
  };
  for (const auto& [url, why] : bad) {
    auto r = parse_etcd_url(url);
    INFO(url);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().code() == errc::misuse);
    CHECK(contains(r.err().text(), "bad etcd URL '" + url + "'"));
    CHECK(contains(r.err().text(), why));
  }
}

TEST_CASE("an unreachable etcd gives an error that names the endpoint", "[etcd]") {
  // Ports that were free a moment ago: nothing listens there.
  const auto ports = troupe::test::free_ports(2);
  const std::string a = "127.0.0.1:" + std::to_string(ports[0]);
  const std::string b = "127.0.0.1:" + std::to_string(ports[1]);
  etcd_client etcd({a, b}, 300ms);
  const auto start = std::chrono::steady_clock::now();
  auto r = etcd.get("k");
  const auto spent = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r.ok());
  INFO(r.err().describe());
  CHECK(r.err().code() == errc::io);
  CHECK(contains(r.err().text(), "etcd at " + a + " unreachable: "));
  CHECK(contains(r.err().text(), "etcd at " + b + " unreachable: "));
  CHECK(contains(r.err().text(), "/v3/kv/range"));
  CHECK(spent < 2s);  // the timeout bounds the retries
}

TEST_CASE("the etcd client puts, gets, lists a prefix and removes keys", "[etcd]") {
  etcd_cluster cluster(1);
  etcd_client etcd(cluster.endpoints(), 5s);

  auto missing = etcd.get("/t/none");
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->has_value());

  REQUIRE(etcd.put("/t/a", "1").ok());
  REQUIRE(etcd.put("/t/b", "").ok());  // empty values are values
  // Bytes that are not text, and a key just past the prefix.
  const std::string binary("\0\xff\x01z", 4);
  REQUIRE(etcd.put("/t/c", binary).ok());
  REQUIRE(etcd.put("/t0", "outside").ok());
  REQUIRE(etcd.put("/s", "outside").ok());

  auto a = etcd.get("/t/a");
  REQUIRE(a.ok());
  CHECK(*a == std::optional<std::string>("1"));
  auto b = etcd.get("/t/b");
  REQUIRE(b.ok());
  CHECK(*b == std::optional<std::string>(""));

  auto range = etcd.range_prefix("/t/");
  REQUIRE(range.ok());
  REQUIRE(range->kvs.size() == 3);
  CHECK(range->kvs[0].key == "/t/a");
  CHECK(range->kvs[0].value == "1");
  CHECK(range->kvs[1].key == "/t/b");
  CHECK(range->kvs[1].value == "");
  CHECK(range->kvs[2].key == "/t/c");
  CHECK(range->kvs[2].value == binary);
  CHECK(range->kvs[0].mod_revision < range->kvs[2].mod_revision);
  CHECK(range->revision >= range->kvs[2].mod_revision);
  auto all = etcd.range_prefix("");
  REQUIRE(all.ok());
  CHECK(all->kvs.size() == 5);

  auto removed = etcd.remove("/t/a");
  REQUIRE(removed.ok());
  CHECK(*removed);
  auto again = etcd.remove("/t/a");
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  auto gone = etcd.get("/t/a");
  REQUIRE(gone.ok());
  CHECK_FALSE(gone->has_value());
  auto after = etcd.range_prefix("/t/");
  REQUIRE(after.ok());
  CHECK(after->kvs.size() == 2);
  CHECK(after->revision > range->revision);

  // etcd's own refusals come back with its words.
  auto no_lease = etcd.put("/t/d", "x", 12345);
  REQUIRE_FALSE(no_lease.ok());
  CHECK(no_lease.err().code() == errc::not_found);
  CHECK(contains(no_lease.err().text(), "etcd at " + cluster.endpoint(0) + " /v3/kv/put: "));
  CHECK(contains(no_lease.err().text(), "lease not found"));
}

TEST_CASE("put_if_absent lets exactly one of two racing clients create each key", "[etcd]") {
  etcd_cluster cluster(1);
  etcd_client one(cluster.endpoints(), 5s), two(cluster.endpoints(), 5s);
  auto lease_one = one.grant_lease(10s);
  auto lease_two = two.grant_lease(10s);
  auto lease_three = one.grant_lease(10s);
  REQUIRE(lease_one.ok());
  REQUIRE(lease_two.ok());
  REQUIRE(lease_three.ok());

  // Three racers: clients one and two, and a third thread that shares
  // client one (calls from several threads at once).
  constexpr int rounds = 20;
  struct racer {
    etcd_client* client;
    std::int64_t lease;
    std::string name;
    std::vector<int> won = std::vector<int>(rounds);
    int failed = 0;
  };
  std::vector<racer> racers = {
      {&one, *lease_one, "one"}, {&two, *lease_two, "two"}, {&one, *lease_three, "three"}};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (auto& r : racers) {
    threads.emplace_back([&ready, &r] {
      ++ready;
      while (ready.load() < 3) std::this_thread::yield();
      for (int i = 0; i < rounds; ++i) {
        auto created = r.client->put_if_absent("/names/n" + std::to_string(i), r.name, r.lease);
        if (!created) ++r.failed;
        r.won[i] = created && *created ? 1 : 0;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : racers) CHECK(r.failed == 0);
  for (int i = 0; i < rounds; ++i) {
    INFO("round " << i);
    int winners = 0;
    std::string winner;
    for (const auto& r : racers) {
      winners += r.won[i];
      if (r.won[i]) winner = r.name;
    }
    CHECK(winners == 1);
    auto holder = two.get("/names/n" + std::to_string(i));
    REQUIRE(holder.ok());
    CHECK(*holder == std::optional<std::string>(winner));
  }

  // Claiming again what one holds (its answer was lost, say) is still its
  // own; the same value under another lease, or another value, is not.
  auto mine = one.put_if_absent("/names/solo", "one", *lease_one);
  REQUIRE(mine.ok());
  CHECK(*mine);
  auto repeat = one.put_if_absent("/names/solo", "one", *lease_one);
  REQUIRE(repeat.ok());
  CHECK(*repeat);
  auto other_lease = two.put_if_absent("/names/solo", "one", *lease_two);
  REQUIRE(other_lease.ok());
  CHECK_FALSE(*other_lease);
  auto other_value = one.put_if_absent("/names/solo", "uno", *lease_one);
  REQUIRE(other_value.ok());
  CHECK_FALSE(*other_value);
  // Released, the name can be claimed again.
  REQUIRE(one.remove("/names/solo").ok());
  auto reclaimed = two.put_if_absent("/names/solo", "two", *lease_two);
  REQUIRE(reclaimed.ok());
  CHECK(*reclaimed);
}

TEST_CASE("a lease without keep-alives expires and takes its keys; one kept alive stays",
          "[etcd]") {
  etcd_cluster cluster(1);
  etcd_client etcd(cluster.endpoints(), 5s);
  auto kept = etcd.grant_lease(1s);
  auto left = etcd.grant_lease(1s);
  REQUIRE(kept.ok());
  REQUIRE(left.ok());
  CHECK(*kept != *left);
  REQUIRE(etcd.put("/members/kept", "a", *kept).ok());
  REQUIRE(etcd.put("/members/left", "b", *left).ok());
  REQUIRE(etcd.put("/members/static", "c").ok());

  // Keep one alive for twice its TTL, and until the other is gone.
  const auto start = std::chrono::steady_clock::now();
  bool left_gone = false;
  while (std::chrono::steady_clock::now() - start < (left_gone ? 2s : 5s)) {
    auto ttl = etcd.keep_alive(*kept);
    REQUIRE(ttl.ok());
    CHECK(*ttl == 1s);
    auto l = etcd.get("/members/left");
    REQUIRE(l.ok());
    if (!l->has_value()) left_gone = true;
    std::this_thread::sleep_for(200ms);
  }
  CHECK(left_gone);
  auto range = etcd.range_prefix("/members/");
  REQUIRE(range.ok());
  REQUIRE(range->kvs.size() == 2);
  CHECK(range->kvs[0].key == "/members/kept");
  CHECK(range->kvs[0].lease == *kept);
  CHECK(range->kvs[1].key == "/members/static");
  CHECK(range->kvs[1].lease == 0);

  auto expired = etcd.keep_alive(*left);
  REQUIRE_FALSE(expired.ok());
  CHECK(expired.err().code() == errc::not_found);
  CHECK(contains(expired.err().text(), "lease " + std::to_string(*left) + " has expired"));

  // Revoking takes the keys at once; revoking again is no error.
  REQUIRE(etcd.revoke(*kept).ok());
  auto kept_key = etcd.get("/members/kept");
  REQUIRE(kept_key.ok());
  CHECK_FALSE(kept_key->has_value());
  CHECK(etcd.revoke(*kept).ok());
  CHECK_FALSE(etcd.keep_alive(*kept).ok());
}

TEST_CASE("a prefix watch sees puts and deletes in revision order until it stops", "[etcd]") {
  etcd_cluster cluster(1);
  etcd_client etcd(cluster.endpoints(), 5s);
  REQUIRE(etcd.put("/w/before", "0").ok());
  auto range = etcd.range_prefix("/w/");
  REQUIRE(range.ok());

  watch_log log;
  auto watch = etcd.watch_prefix(
      "/w/", range->revision + 1, [&](const std::vector<etcd_event>& b) { log.add(b); },
      [&](const troupe::error& e, bool final) { log.add_error(e, final); });
  REQUIRE(etcd.put("/w/a", "1").ok());
  REQUIRE(etcd.put("/x/a", "outside").ok());
  REQUIRE(etcd.put("/w/b", "2").ok());
  REQUIRE(etcd.remove("/w/a").ok());
  REQUIRE(etcd.put("/w/b", "3").ok());
  REQUIRE(etcd.remove("/w/before").ok());

  const auto events = log.wait_events(5, 5s);
  REQUIRE(events.size() == 5);
  using kind = etcd_event::kind;
  CHECK((events[0].type == kind::put && events[0].key == "/w/a" && events[0].value == "1"));
  CHECK((events[1].type == kind::put && events[1].key == "/w/b" && events[1].value == "2"));
  CHECK((events[2].type == kind::remove && events[2].key == "/w/a" && events[2].value.empty()));
  CHECK((events[3].type == kind::put && events[3].key == "/w/b" && events[3].value == "3"));
  CHECK((events[4].type == kind::remove && events[4].key == "/w/before"));
  for (std::size_t i = 1; i < events.size(); ++i) {
    CHECK(events[i].mod_revision > events[i - 1].mod_revision);
  }
  CHECK(watch->revision() == events.back().mod_revision);
  CHECK(watch->running());

  watch->stop();
  CHECK_FALSE(watch->running());
  REQUIRE(etcd.put("/w/late", "x").ok());
  std::this_thread::sleep_for(300ms);
  CHECK(log.wait_events(6, 0ms).size() == 5);
  CHECK(log.errors().empty());
}

TEST_CASE("a watch from a compacted revision ends with a final error that says so", "[etcd]") {
  etcd_cluster cluster(1);
  etcd_client etcd(cluster.endpoints(), 5s);
  for (int i = 0; i < 5; ++i) REQUIRE(etcd.put("/c/k", std::to_string(i)).ok());
  auto range = etcd.range_prefix("/c/");
  REQUIRE(range.ok());
  troupe::test::etcdctl(
      {"--endpoints", cluster.endpoint(0), "compact", std::to_string(range->revision)});
  watch_log log;
  auto watch = etcd.watch_prefix(
      "/c/", 2, [&](const std::vector<etcd_event>& b) { log.add(b); },
      [&](const troupe::error& e, bool final) { log.add_error(e, final); });
  REQUIRE(log.wait_final(5s));
  const auto errors = log.errors();
  REQUIRE(errors.size() == 1);
  INFO(errors[0]);
  CHECK(contains(errors[0],
                 "compacted its history up to revision " + std::to_string(range->revision)));
  CHECK(contains(errors[0], "watch of '/c/'"));
  CHECK(eventually([&] { return !watch->running(); }, 2s, "the watch has stopped"));
  CHECK(log.wait_events(1, 0ms).empty());
}

TEST_CASE("with 3 etcd nodes, the client and its watch survive kill -9 of the node they use",
          "[etcd]") {
  etcd_cluster cluster(3);
  // The leader's loss is the harder case: a request the dead leader took is
  // never answered, and the others elect a new one first.
  SECTION("when that node leads") { cluster.make_leader(0); }
  SECTION("when that node follows") { cluster.make_leader(1); }
  // The client and the watch start at the first endpoint.
  etcd_client etcd(cluster.endpoints(), 5s);
  auto lease = etcd.grant_lease(5s);
  REQUIRE(lease.ok());
  REQUIRE(etcd.put("/m/engine-1", "alive", *lease).ok());
  auto range = etcd.range_prefix("/m/");
  REQUIRE(range.ok());
  watch_log log;
  auto watch = etcd.watch_prefix(
      "/m/", range->revision + 1, [&](const std::vector<etcd_event>& b) { log.add(b); },
      [&](const troupe::error& e, bool final) { log.add_error(e, final); });
  REQUIRE(etcd.put("/m/engine-2", "alive").ok());
  REQUIRE(log.wait_events(1, 5s).size() == 1);

  cluster.kill_node(0);
  const auto start = std::chrono::steady_clock::now();
  // Perhaps the leader died: the calls wait out the election.
  auto put = etcd.put("/m/engine-3", "alive");
  INFO((put.ok() ? std::string("ok") : put.err().describe()));
  REQUIRE(put.ok());
  REQUIRE(etcd.keep_alive(*lease).ok());
  auto claimed = etcd.put_if_absent("/m/name", "engine-1", *lease);
  REQUIRE(claimed.ok());
  CHECK(*claimed);
  REQUIRE(etcd.remove("/m/engine-2").ok());
  auto after = etcd.range_prefix("/m/");
  REQUIRE(after.ok());
  CHECK(after->kvs.size() == 3);
  CHECK(std::chrono::steady_clock::now() - start < 5s);

  // The watch moved to another member and missed nothing.
  const auto events = log.wait_events(4, 10s);
  REQUIRE(events.size() == 4);
  CHECK(events[0].key == "/m/engine-2");
  CHECK(events[1].key == "/m/engine-3");
  CHECK(events[2].key == "/m/name");
  CHECK((events[3].key == "/m/engine-2" && events[3].type == etcd_event::kind::remove));
  const auto errors = log.errors();
  REQUIRE_FALSE(errors.empty());
  INFO(errors[0]);
  CHECK(contains(errors[0], "etcd at " + cluster.endpoint(0)));
  watch->stop();

  // A fresh client that lists the dead member first still gets through.
  etcd_client fresh(cluster.endpoints(), 5s);
  auto got = fresh.get("/m/engine-3");
  REQUIRE(got.ok());
  CHECK(*got == std::optional<std::string>("alive"));
}

TEST_CASE("create_or_read says who holds a key; remove_if and reattach act only on its value",
          "[etcd]") {
  etcd_cluster cluster(1);
  etcd_client etcd(cluster.endpoints(), 5s);
  auto lease_one = etcd.grant_lease(10s);
  auto lease_two = etcd.grant_lease(10s);
  REQUIRE(lease_one.ok());
  REQUIRE(lease_two.ok());

  auto none = etcd.read("/n/a");
  REQUIRE(none.ok());
  CHECK_FALSE(none->kv.has_value());
  CHECK(none->revision > 0);

  auto mine = etcd.create_or_read("/n/a", "one", *lease_one);
  REQUIRE(mine.ok());
  CHECK(mine->created);
  CHECK(mine->holder.value == "one");
  CHECK(mine->revision > none->revision);
  // Repeated (its answer lost, say): still its own.
  auto repeat = etcd.create_or_read("/n/a", "one", *lease_one);
  REQUIRE(repeat.ok());
  CHECK(repeat->created);
  // Another claimant learns who holds it, at which revision.
  auto theirs = etcd.create_or_read("/n/a", "two", *lease_two);
  REQUIRE(theirs.ok());
  CHECK_FALSE(theirs->created);
  CHECK(theirs->holder.value == "one");
  CHECK(theirs->holder.lease == *lease_one);
  CHECK(theirs->holder.create_revision == mine->revision);
  CHECK(theirs->revision >= mine->revision);

  auto read = etcd.read("/n/a");
  REQUIRE(read.ok());
  REQUIRE(read->kv.has_value());
  CHECK(read->kv->value == "one");
  CHECK(read->kv->lease == *lease_one);
  CHECK(read->revision >= mine->revision);

  // Onto another lease only while it holds that value.
  auto wrong = etcd.reattach("/n/a", "two", *lease_two);
  REQUIRE(wrong.ok());
  CHECK_FALSE(*wrong);
  auto moved = etcd.reattach("/n/a", "one", *lease_two);
  REQUIRE(moved.ok());
  CHECK(*moved);
  REQUIRE(etcd.revoke(*lease_one).ok());  // the old lease's end no longer takes it
  auto still = etcd.read("/n/a");
  REQUIRE(still.ok());
  REQUIRE(still->kv.has_value());
  CHECK(still->kv->lease == *lease_two);

  // A newer holder is never removed by an older one's release.
  auto stale = etcd.remove_if("/n/a", "zero");
  REQUIRE(stale.ok());
  CHECK_FALSE(*stale);
  auto removed = etcd.remove_if("/n/a", "one");
  REQUIRE(removed.ok());
  CHECK(*removed);
  auto again = etcd.remove_if("/n/a", "one");
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  auto gone = etcd.read("/n/a");
  REQUIRE(gone.ok());
  CHECK_FALSE(gone->kv.has_value());
  auto missing = etcd.reattach("/n/a", "one", *lease_two);
  REQUIRE(missing.ok());
  CHECK_FALSE(*missing);
}
