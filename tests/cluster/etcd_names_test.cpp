// The directory's names kept in etcd (--membership etcd://...), with a real
// etcd (tests/support/etcd.hpp), real `troupe serve` engine processes on
// 127.0.0.1, and this test process as one more engine (a troupe::system).

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "support/convention.hpp"
#include "support/engine.hpp"
#include "support/etcd.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;
using troupe::errc;
using troupe::test::eventually;
using troupe::test::member_ids;

namespace {

const std::string names_prefix = "/troupe/troupe/names/";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A `troupe serve` engine of a convention kept in etcd, with the test
/// module (conv.locator answers conv.where with its engine id).
struct engine_process {
  std::unique_ptr<troupe::test::child_process> proc;
  std::string admin;

  engine_process(std::uint32_t id, const std::string& etcd_url,
                 const std::string& peer_timeout_ms = "1000") {
    proc = std::make_unique<troupe::test::child_process>(std::vector<std::string>{
        TROUPE_BINARY, "serve", "--shards", "2", "--engine-id", std::to_string(id), "--listen",
        "127.0.0.1:0", "--membership", etcd_url, "--module", TEST_CONV_MODULE, "--admin",
        "127.0.0.1:0", "--heartbeat", "100", "--peer-timeout", peer_timeout_ms});
    REQUIRE(proc->wait_for_output("admin endpoint on http://", 10s));
    REQUIRE(proc->wait_for_output("registered in etcd", 10s));
    std::smatch m;
    const std::string out = proc->output();
    REQUIRE(std::regex_search(out, m, std::regex("admin endpoint on http://([0-9.]+:[0-9]+)")));
    admin = m[1];
  }
};

/// The troupe CLI, started now; finish() waits (bounded) for its exit.
struct cli_run {
  troupe::test::child_process proc;
  explicit cli_run(std::vector<std::string> args)
      : proc([&] {
          args.insert(args.begin(), TROUPE_BINARY);
          return args;
        }()) {}
  /// Exit code (-1: did not end in 20 s) and output, trimmed.
  std::pair<int, std::string> finish() {
    auto status = proc.wait_exit(20s);
    std::string out = proc.output();
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return {status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, out};
  }
};

std::pair<int, std::string> cli(std::vector<std::string> args) {
  return cli_run(std::move(args)).finish();
}

cli_run spawn_by_name(const engine_process& e, const std::string& name) {
  return cli_run({"spawn", "conv.locator", "--name", name, "--admin", e.admin});
}

/// The engine that the actor named `name` answers from, asked through
/// engine `e`'s admin endpoint (which looks the name up); 0 on failure.
std::uint32_t engine_of_named(const engine_process& e, const std::string& name) {
  auto [code, out] =
      cli({"ask", "--admin", e.admin, name, R"({"tag": "?"})", "--type", "conv.where"});
  if (code != 0) return 0;
  const auto j = nlohmann::json::parse(out, nullptr, false);
  return j.is_object() ? j.value("engine", 0u) : 0u;
}

troupe::engine_options in_etcd(std::uint32_t id, const std::string& url) {
  troupe::engine_options o;
  o.core.engine_id = id;
  o.core.shards = 2;
  o.links = troupe::link_options{.listen = "127.0.0.1:0", .heartbeat = 100ms, .peer_timeout = 1s};
  o.convention = troupe::convention_options{.membership = url};
  return o;
}

/// This process's engine takes conv.locator too (the module may be loaded
/// already, by an earlier test in this process).
void load_test_module(troupe::system& sys) {
  auto m = sys.load_module(TEST_CONV_MODULE);
  if (!m) REQUIRE(contains(m.err().text(), "already"));
}

troupe::result<address> spawn_here(troupe::system& sys, const std::string& name) {
  return sys.spawn_type("conv.locator", nullptr, troupe::spawn_options{}, name);
}

/// The address etcd binds `name` to (parsed from its value), or null.
address bound_in_etcd(troupe::internal::etcd_client& etcd, const std::string& name) {
  auto v = etcd.get(names_prefix + name);
  if (!v || !v->has_value()) return {};
  const auto j = nlohmann::json::parse(**v, nullptr, false);
  if (!j.is_object()) return {};
  return address::parse(j.value("address", std::string())).value_or(address{});
}

struct quit {};
struct plain : troupe::actor<plain, quit> {
  void on(const quit&) { stop(); }
};

}  // namespace

TEST_CASE("names in etcd: a name spawned from three engines at once is one actor, found from each",
          "[etcd][names][processes]") {
  troupe::test::etcd_cluster etcd(1);
  troupe::internal::etcd_client client(etcd.endpoints(), 5s);
  engine_process e2(2, etcd.url()), e3(3, etcd.url());
  troupe::test::engine sys(in_etcd(9, etcd.url()));
  load_test_module(sys);
  REQUIRE(eventually(
      [&] {
        return member_ids(sys) == std::vector<std::uint32_t>{2, 3, 9};
      },
      15s, "engine 9 counts the members {2, 3, 9}"));
  // Every engine linked to both others: lookups from each reach the winner.
  REQUIRE(eventually(
      [&] {
        return sys.engines() == std::vector<std::uint32_t>{2, 3, 9} &&
               troupe::test::peers_of(e2.admin) == std::vector<std::uint32_t>{3, 9} &&
               troupe::test::peers_of(e3.admin) == std::vector<std::uint32_t>{2, 9};
      },
      15s, "engines 2, 3 and 9 are each linked to both others"));

  const auto start = std::chrono::steady_clock::now();
  constexpr int names = 8;
  std::vector<std::uint32_t> owners;
  for (int k = 0; k < names; ++k) {
    const std::string name = "race-" + std::to_string(k);
    INFO(name);
    // Two engine processes and this one claim the name at about the same
    // moment: the CLI takes a few ms to reach its engine, so this engine's
    // claim starts a little later each round, and each may win.
    cli_run from2 = spawn_by_name(e2, name);
    cli_run from3 = spawn_by_name(e3, name);
    std::this_thread::sleep_for(std::chrono::milliseconds(8 * k));
    troupe::result<address> here = spawn_here(sys, name);
    auto [code2, out2] = from2.finish();
    auto [code3, out3] = from3.finish();
    INFO(out2 << " | " << out3);
    REQUIRE(code2 == 0);
    REQUIRE(code3 == 0);
    REQUIRE(here);
    const address winner = here.value();
    CHECK(out2 == winner.to_string());
    CHECK(out3 == winner.to_string());
    CHECK(bound_in_etcd(client, name) == winner);
    owners.push_back(winner.engine());

    // Found from every engine: through each admin endpoint's lookup (the
    // actor answers with its engine), and here.
    auto found = sys.lookup_name(name);
    REQUIRE(found);
    CHECK(found.value() == winner);
    CHECK(engine_of_named(e2, name) == winner.engine());
    CHECK(engine_of_named(e3, name) == winner.engine());
  }
  WARN(names << " names raced from 3 engines in "
             << std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - start)
                    .count()
             << " ms; owners: " << [&] {
                  std::string s;
                  for (auto o : owners) s += std::to_string(o) + " ";
                  return s;
                }());

  // The key is on its owner's lease: one key per name, and no other.
  auto all = client.range_prefix(names_prefix);
  REQUIRE(all);
  CHECK(all->kvs.size() == names);
  for (const auto& kv : all->kvs) CHECK(kv.lease != 0);
}

TEST_CASE("names in etcd: an owner killed with kill -9 frees its names when its lease expires",
          "[etcd][names][processes]") {
  troupe::test::etcd_cluster etcd(1);
  troupe::internal::etcd_client client(etcd.endpoints(), 5s);
  auto e2 = std::make_unique<engine_process>(2, etcd.url());
  troupe::test::engine sys(in_etcd(9, etcd.url()));
  load_test_module(sys);
  REQUIRE(troupe::test::wait_members_linked(sys, {2, 9}, 15s));

  auto [code, out] = spawn_by_name(*e2, "leased").finish();
  REQUIRE(code == 0);
  const auto first = address::parse(out);
  REQUIRE(first);
  CHECK(first->engine() == 2);
  auto found = sys.lookup_name("leased");
  REQUIRE(found);
  CHECK(found.value() == *first);

  e2->proc->signal(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  e2->proc->wait_exit(5s);
  // Until the lease (2 s: --peer-timeout 1 s, at least 2) runs out, etcd
  // still binds it; then the key is gone with the lease.
  REQUIRE(eventually([&] { return bound_in_etcd(client, "leased").is_null(); }, 10s,
                     "'leased' is bound to nobody in etcd"));
  const auto freed = std::chrono::steady_clock::now() - killed;
  WARN("the name was freed " << std::chrono::duration_cast<std::chrono::milliseconds>(freed).count()
                             << " ms after kill -9 of its owner");
  CHECK(freed < 8s);

  // Free: a claim here wins, and lookups see the new owner (the watch
  // dropped what was cached).
  auto again = spawn_here(sys, "leased");
  REQUIRE(again);
  CHECK(again.value().engine() == 9);
  CHECK(bound_in_etcd(client, "leased") == again.value());
  auto now = sys.lookup_name("leased");
  REQUIRE(now);
  CHECK(now.value() == again.value());
}

TEST_CASE(
    "names in etcd: an engine restarted with the same id frees its earlier run's names at once",
    "[etcd][names][processes]") {
  troupe::test::etcd_cluster etcd(1);
  troupe::internal::etcd_client client(etcd.endpoints(), 5s);
  // A long lease (5 s): what frees the names sooner is the restart.
  auto e2 = std::make_unique<engine_process>(2, etcd.url(), "5000");
  auto [code, out] = spawn_by_name(*e2, "kept-over").finish();
  REQUIRE(code == 0);
  auto before = client.read(names_prefix + "kept-over");
  REQUIRE(before);
  REQUIRE(before->kv);

  e2->proc->signal(SIGKILL);
  e2->proc->wait_exit(5s);
  const auto killed = std::chrono::steady_clock::now();
  e2 = std::make_unique<engine_process>(2, etcd.url(), "5000");
  REQUIRE(eventually([&] { return bound_in_etcd(client, "kept-over").is_null(); }, 10s,
                     "'kept-over' is bound to nobody in etcd"));
  const auto freed = std::chrono::steady_clock::now() - killed;
  WARN("the earlier run's name was freed "
       << std::chrono::duration_cast<std::chrono::milliseconds>(freed).count()
       << " ms after the kill, by the restart");
  CHECK(freed < 4s);  // sooner than the 5 s lease
  CHECK(e2->proc->output().find("revoked lease") != std::string::npos);

  // The restarted engine claims it anew, on its new lease.
  auto [code2, out2] = spawn_by_name(*e2, "kept-over").finish();
  REQUIRE(code2 == 0);
  auto after = client.read(names_prefix + "kept-over");
  REQUIRE(after);
  REQUIRE(after->kv);
  CHECK(after->kv->create_revision > before->kv->create_revision);
  CHECK(after->kv->lease != before->kv->lease);
  CHECK(engine_of_named(*e2, "kept-over") == 2);
}

TEST_CASE("names in etcd: with 3 etcd nodes, claims and lookups go on when the leader is killed",
          "[etcd][names][processes]") {
  troupe::test::etcd_cluster etcd(3);
  troupe::internal::etcd_client client(etcd.endpoints(), 5s);
  engine_process e2(2, etcd.url());
  troupe::test::engine sys(in_etcd(9, etcd.url()));
  load_test_module(sys);
  REQUIRE(troupe::test::wait_members_linked(sys, {2, 9}, 15s));
  auto [code, out] = spawn_by_name(e2, "before").finish();
  REQUIRE(code == 0);

  const auto leader = etcd.leader();
  REQUIRE(leader);
  etcd.kill_node(*leader);
  const auto start = std::chrono::steady_clock::now();

  auto here = spawn_here(sys, "after-here");
  INFO((here ? here.value().to_string() : here.err().describe()));
  REQUIRE(here);
  CHECK(here.value().engine() == 9);
  auto [code2, out2] = spawn_by_name(e2, "after-there").finish();
  INFO(out2);
  REQUIRE(code2 == 0);
  // A race after the loss still yields one actor.
  cli_run there = spawn_by_name(e2, "after-race");
  auto race_here = spawn_here(sys, "after-race");
  auto [code3, out3] = there.finish();
  REQUIRE(race_here);
  REQUIRE(code3 == 0);
  CHECK(out3 == race_here.value().to_string());

  for (const std::string name : {"before", "after-here", "after-there", "after-race"}) {
    INFO(name);
    auto found = sys.lookup_name(name);
    REQUIRE(found);
    CHECK(found.value() == bound_in_etcd(client, name));
    CHECK(engine_of_named(e2, name) == found.value().engine());
  }
  const auto spent = std::chrono::steady_clock::now() - start;
  WARN("claims and lookups after the etcd leader's loss took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(spent).count() << " ms");
  CHECK(spent < 20s);
}

TEST_CASE("names in etcd: bad and unknown names, and an etcd gone, give errors that say so",
          "[etcd][names]") {
  troupe::test::etcd_cluster etcd(1);
  troupe::internal::etcd_client client(etcd.endpoints(), 5s);
  troupe::test::engine sys(in_etcd(9, etcd.url()));

  auto unknown = sys.lookup_name("nobody");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.err().code() == errc::not_found);
  CHECK(contains(unknown.err().text(), "no actor is named 'nobody'"));
  CHECK(contains(unknown.err().text(), names_prefix + "nobody"));

  auto empty = sys.spawn_named<plain>("", troupe::spawn_options{});
  REQUIRE_FALSE(empty);
  CHECK(empty.err().code() == errc::misuse);
  CHECK(contains(empty.err().text(), "must not be empty"));
  auto empty_lookup = sys.lookup_name("");
  REQUIRE_FALSE(empty_lookup);
  CHECK(empty_lookup.err().code() == errc::misuse);
  auto too_long = sys.spawn_named<plain>(std::string(2000, 'x'), troupe::spawn_options{});
  REQUIRE_FALSE(too_long);
  CHECK(too_long.err().code() == errc::misuse);
  CHECK(contains(too_long.err().text(), "is 2000 bytes long"));
  CHECK(contains(too_long.err().text(), "at most 1024 bytes"));

  // Something else wrote the key: said, not taken for an address.
  REQUIRE(client.put(names_prefix + "garbage", "not a binding").ok());
  auto garbage = sys.lookup_name("garbage");
  REQUIRE_FALSE(garbage);
  CHECK(garbage.err().code() == errc::failed);
  CHECK(contains(garbage.err().text(), "not an actor's address"));
  auto garbage_claim = sys.spawn_named<plain>("garbage", troupe::spawn_options{});
  REQUIRE_FALSE(garbage_claim);
  CHECK(contains(garbage_claim.err().text(), "not an actor's address"));

  // An actor that ends frees its name: the key goes, a new spawn is a new actor.
  auto first = sys.spawn_named<plain>("short-lived", troupe::spawn_options{});
  REQUIRE(first);
  CHECK(bound_in_etcd(client, "short-lived") == first.value());
  auto same = sys.spawn_named<plain>("short-lived", troupe::spawn_options{});
  REQUIRE(same);
  CHECK(same.value() == first.value());
  sys.tell(first.value(), quit{});
  REQUIRE(eventually([&] { return bound_in_etcd(client, "short-lived").is_null(); }, 5s,
                     "'short-lived' is bound to nobody in etcd"));
  auto gone = sys.lookup_name("short-lived");
  REQUIRE_FALSE(gone);
  CHECK(gone.err().code() == errc::not_found);
  auto second = sys.spawn_named<plain>("short-lived", troupe::spawn_options{});
  REQUIRE(second);
  CHECK(second.value() != first.value());

  // etcd gone: a cached name still answers, anything that needs etcd fails
  // naming it, within the client's bound.
  auto kept = sys.spawn_named<plain>("kept", troupe::spawn_options{});
  REQUIRE(kept);
  REQUIRE(sys.lookup_name("kept"));
  etcd.kill_node(0);
  auto cached = sys.lookup_name("kept");
  REQUIRE(cached);
  CHECK(cached.value() == kept.value());
  const auto start = std::chrono::steady_clock::now();
  auto cut_off = sys.spawn_named<plain>("unreachable", troupe::spawn_options{});
  REQUIRE_FALSE(cut_off);
  INFO(cut_off.err().describe());
  CHECK((cut_off.err().code() == errc::io || cut_off.err().code() == errc::timeout));
  CHECK(contains(cut_off.err().text(), "etcd at " + etcd.endpoint(0)));
  CHECK(contains(cut_off.err().text(), "name 'unreachable'"));
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  auto lost_lookup = sys.lookup_name("never-cached");
  REQUIRE_FALSE(lost_lookup);
  CHECK(contains(lost_lookup.err().text(), "etcd at " + etcd.endpoint(0)));
}

TEST_CASE("names in etcd: after its lease ended, an engine claims its names again, bar those taken",
          "[etcd][names]") {
  troupe::test::etcd_cluster etcd(1);
  troupe::internal::etcd_client client(etcd.endpoints(), 5s);
  troupe::test::engine sys(in_etcd(9, etcd.url()));
  auto again = sys.spawn_named<plain>("again", troupe::spawn_options{});
  auto taken = sys.spawn_named<plain>("taken", troupe::spawn_options{});
  REQUIRE(again);
  REQUIRE(taken);
  auto held = client.read(names_prefix + "again");
  REQUIRE(held);
  REQUIRE(held->kv);
  const std::int64_t lease = held->kv->lease;
  auto other = client.grant_lease(10s);
  REQUIRE(other);

  // Another engine holds one of the names now (as it could once the lease
  // had ended: put first here, so that the engine cannot claim it back
  // before), and the engine's lease ends, as when it is cut off from etcd
  // for longer than its TTL.
  const auto stranger = *address::parse("7:0:1.1");
  REQUIRE(
      client.put(names_prefix + "taken", R"({"address": "7:0:1.1", "engine": 7})", *other).ok());
  REQUIRE(client.revoke(lease).ok());

  // Registered again on a new lease, the engine claims back what is free.
  REQUIRE(eventually([&] { return bound_in_etcd(client, "again") == again.value(); }, 10s,
                     "'again' is bound in etcd to its new actor"));
  auto now = client.read(names_prefix + "again");
  REQUIRE(now);
  REQUIRE(now->kv);
  CHECK(now->kv->lease != lease);
  CHECK(now->kv->lease != 0);
  auto found = sys.lookup_name("again");
  REQUIRE(found);
  CHECK(found.value() == again.value());
  // The name taken meanwhile stays with its new owner, here too.
  std::this_thread::sleep_for(500ms);
  CHECK(bound_in_etcd(client, "taken") == stranger);
  CHECK(eventually(
      [&] {
        auto f = sys.lookup_name("taken");
        return f && f.value() == stranger;
      },
      5s, "'taken' is looked up as the stranger's"));
}
