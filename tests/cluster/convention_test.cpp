// The convention with real engine processes on 127.0.0.1: `troupe serve`
// processes are the leader and members, and this test process is one more
// member (a troupe::system) that subscribes to the convention's updates
// and places actors.

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/convention.hpp"
#include "support/etcd.hpp"
#include "troupe/convention.hpp"
#include "troupe/convention_supervisor.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::convention_update;
using change = troupe::convention_update::change;
using troupe::test::cli;
using troupe::test::engine_process;
using troupe::test::free_port;
using troupe::test::member_options;
using troupe::test::wait_linked;
using troupe::test::wait_members;

namespace {

/// What the subscribed actor has seen.
struct seen_updates {
  std::mutex lock;
  std::vector<convention_update> all;

  bool has(change what, std::uint32_t engine, std::size_t from = 0) {
    std::lock_guard g(lock);
    for (std::size_t i = from; i < all.size(); ++i) {
      if (all[i].what == what && all[i].who.engine == engine) return true;
    }
    return false;
  }
  std::size_t size() {
    std::lock_guard g(lock);
    return all.size();
  }
  /// Waits (bounded) until `what` for `engine` is seen after index `from`.
  bool wait_for(change what, std::uint32_t engine, std::chrono::milliseconds limit,
                std::size_t from = 0) {
    return troupe::test::eventually([&] { return has(what, engine, from); }, limit,
                                    "the subscriber is told that engine " + std::to_string(engine) +
                                        " " + troupe::to_string(what));
  }
};
seen_updates updates;

struct update_collector : troupe::actor<update_collector, convention_update> {
  void on(const convention_update& u) {
    std::lock_guard g(updates.lock);
    updates.all.push_back(u);
  }
};

/// A copy of the test module, which this test may change on disk.
std::string module_copy(const std::string& dir_name) {
  const auto dir =
      std::filesystem::temp_directory_path() / (dir_name + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto to = dir / "libtest_conv_module.so";
  std::filesystem::copy_file(TEST_CONV_MODULE, to,
                             std::filesystem::copy_options::overwrite_existing);
  return to.string();
}

troupe::place_options where(nlohmann::json requirements, bool prefer_local = true) {
  troupe::place_options p;
  p.requirements = std::move(requirements);
  p.prefer_local = prefer_local;
  p.timeout = 5s;
  return p;
}

}  // namespace

TEST_CASE("a convention: members join, actors are placed by capabilities, losses are seen",
          "[convention][processes]") {
  const std::string leader = "127.0.0.1:" + std::to_string(free_port());
  auto lead = std::make_unique<engine_process>(1, leader, leader, R"({"zone": "a"})");
  auto m2 =
      std::make_unique<engine_process>(2, "127.0.0.1:0", leader, R"({"zone": "b", "gpu": true})",
                                       std::vector<std::string>{"--module", TEST_CONV_MODULE});
  auto m3 = std::make_unique<engine_process>(3, "127.0.0.1:0", leader, R"({"zone": "b"})");

  const std::string mod = module_copy("troupe-conv-test-a");
  const auto opts = member_options(9, leader, {{"zone", "test"}});
  troupe::system sys(opts.core, opts.layers());
  REQUIRE(sys.load_module(mod));
  troupe::subscribe_convention(sys, sys.spawn<update_collector>());

  // Everyone sees everyone: the leader's view reaches each member.
  REQUIRE(wait_members(sys, {1, 2, 3, 9}, 10s));
  CHECK(updates.wait_for(change::joined, 1, 5s));
  CHECK(updates.wait_for(change::joined, 2, 5s));
  CHECK(updates.wait_for(change::joined, 3, 5s));
  {
    auto ms = troupe::members(sys).value();
    CHECK(ms.front().engine == 9);  // this engine first
    for (const auto& m : ms) {
      if (m.engine == 1) CHECK(m.leader);
      if (m.engine == 2) CHECK(m.capabilities == nlohmann::json{{"zone", "b"}, {"gpu", true}});
    }
  }

  // A JSON predicate over capabilities.
  auto gpu = troupe::spawn_placed(sys, "conv.locator", {{"tag", "g"}}, where({{"gpu", true}}));
  REQUIRE(gpu);
  CHECK(gpu.value().engine() == 2);
  // The type's own check: only engines with a GPU; this one has none.
  auto checked = troupe::spawn_placed(sys, "conv.gpu_locator", nullptr, where(nullptr));
  REQUIRE(checked);
  CHECK(checked.value().engine() == 2);
  // This engine first when it fits.
  auto local = troupe::spawn_placed(sys, "conv.locator", nullptr,
                                    where({{"zone", {{"$in", {"test", "b"}}}}}));
  REQUIRE(local);
  CHECK(local.value().engine() == 9);

  // Engine 3 lacks the module: it is sent, checked by hash, loaded there.
  auto sent = troupe::spawn_placed(sys, "conv.locator", {{"tag", "m"}},
                                   where({{"zone", "b"}, {"gpu", {{"$exists", false}}}}));
  INFO((sent ? std::string() : sent.err().describe()));
  REQUIRE(sent);
  CHECK(sent.value().engine() == 3);
  CHECK(m3->proc.wait_for_output("installed module 'test.conv' from engine 9", 5s));
  {
    auto [code, out] = cli({"ask", "--admin", m3->admin, sent.value().to_string(),
                            R"({"tag": "!"})", "--type", "conv.where"});
    INFO(out);
    CHECK(code == 0);
    CHECK(out.find(R"("engine":3)") != std::string::npos);
    CHECK(out.find(R"("tag":"m!")") != std::string::npos);
  }

  // Nothing fits: an error naming each member's refusal.
  auto none = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"zone", "mars"}}));
  REQUIRE(!none);
  CHECK(none.err().code() == troupe::errc::not_found);
  INFO(none.err().text());
  CHECK(none.err().text().find("no member of the convention fits 'conv.locator'") !=
        std::string::npos);
  CHECK(none.err().text().find("engine 2: zone") != std::string::npos);
  // A bad predicate is named as such.
  auto bad = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"cores", {{"$gte2", 4}}}}));
  REQUIRE(!bad);
  CHECK(bad.err().code() == troupe::errc::misuse);
  CHECK(bad.err().text().find("$gte2") != std::string::npos);

  // Capabilities change at run time, and the convention hears of it.
  {
    const std::size_t from = updates.size();
    auto [code, out] = cli({"capabilities", "--admin", m3->admin, R"({"zone": "b", "ssd": true})"});
    INFO(out);
    CHECK(code == 0);
    CHECK(updates.wait_for(change::capabilities, 3, 5s, from));
    auto ssd = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"ssd", true}}));
    REQUIRE(ssd);
    CHECK(ssd.value().engine() == 3);
  }

  // A fourth member joins under load and gets work at once: spread
  // placements go to the least loaded member that fits.
  {
    const auto t0 = std::chrono::steady_clock::now();
    auto m4 = std::make_unique<engine_process>(4, "127.0.0.1:0", leader, R"({"zone": "b"})");
    int on_four = 0, placed = 0;
    while (on_four < 3 && std::chrono::steady_clock::now() - t0 < 10s) {
      auto a = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"zone", "b"}}, false));
      REQUIRE(a);
      ++placed;
      if (a.value().engine() == 4) ++on_four;
      std::this_thread::sleep_for(10ms);
    }
    const auto used_after = std::chrono::steady_clock::now() - t0;
    INFO(placed << " placed, " << on_four << " on the new member");
    CHECK(on_four == 3);
    CHECK(used_after < 5s);
    CHECK(wait_members(sys, {1, 2, 3, 4, 9}, 5s));
    // A member that stops cleanly has left, not been lost.
    const std::size_t from = updates.size();
    m4->proc.signal(SIGTERM);
    CHECK(updates.wait_for(change::left, 4, 5s, from));
    m4->proc.wait_exit(10s);
  }

  // A member that hangs is lost within the peer timeout (1 s), and joins
  // again when it goes on.
  {
    const std::size_t from = updates.size();
    const auto t0 = std::chrono::steady_clock::now();
    m3->proc.signal(SIGSTOP);
    REQUIRE(updates.wait_for(change::lost, 3, 5s, from));
    const auto detected = std::chrono::steady_clock::now() - t0;
    CHECK(detected < 3s);
    m3->proc.signal(SIGCONT);
    CHECK(updates.wait_for(change::joined, 3, 10s, from));
  }

  // A member killed outright is lost at once; the others go on.
  {
    const std::size_t from = updates.size();
    m2->proc.signal(SIGKILL);
    CHECK(updates.wait_for(change::lost, 2, 5s, from));
    m2->proc.wait_exit(10s);
    REQUIRE(wait_members(sys, {1, 3, 9}, 10s));
    auto gone = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"gpu", true}}));
    CHECK(!gone);
  }

  // The leader's loss does not stop the members: they still place and
  // route among themselves, and register again when it returns.
  {
    const std::size_t from = updates.size();
    lead->proc.signal(SIGKILL);
    CHECK(updates.wait_for(change::lost, 1, 5s, from));
    lead->proc.wait_exit(10s);
    auto without = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"zone", "b"}}));
    REQUIRE(without);
    CHECK(without.value().engine() == 3);
    lead = std::make_unique<engine_process>(1, leader, leader, R"({"zone": "a"})");
    CHECK(updates.wait_for(change::joined, 1, 10s, from));
    REQUIRE(wait_members(sys, {1, 3, 9}, 10s));
    auto [code, out] = cli({"members", "--admin", lead->admin});
    INFO(out);
    CHECK(code == 0);
    CHECK(out.find("engine 3") != std::string::npos);
    CHECK(out.find("engine 9") != std::string::npos);
  }
  CHECK(sys.unload_module("test.conv", true));  // modules are per process; the next test loads it
}

TEST_CASE("a module changed since it was loaded is refused by the member it is sent to",
          "[convention][processes]") {
  const std::string leader = "127.0.0.1:" + std::to_string(free_port());
  engine_process lead(1, leader, leader, R"({"zone": "a"})");
  engine_process m3(3, "127.0.0.1:0", leader, R"({"zone": "b"})");

  const std::string mod = module_copy("troupe-conv-test-b");
  const auto opts = member_options(8, leader, {{"zone", "test"}});
  troupe::system sys(opts.core, opts.layers());
  REQUIRE(sys.load_module(mod));
  REQUIRE(wait_members(sys, {1, 3, 8}, 10s));
  {
    std::ofstream tamper(mod, std::ios::binary | std::ios::app);
    tamper << "not what was loaded";
  }
  auto r = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"zone", "b"}}));
  REQUIRE(!r);
  INFO(r.err().text());
  CHECK(r.err().text().find("module 'test.conv' needed for 'conv.locator' could not be installed "
                            "on engine 3") != std::string::npos);
  CHECK(r.err().text().find("refused: its bytes hash to") != std::string::npos);
  CHECK(m3.proc.wait_for_output("refused module 'test.conv' from engine 8", 5s));
  // The member goes on: a type it has is still placed there.
  auto members = troupe::members(sys);
  REQUIRE(members);
  CHECK(members.value().size() == 3);
  // And a type nobody can provide is named.
  auto unknown = troupe::spawn_placed(sys, "no.such.type", nullptr, where({{"zone", "b"}}));
  REQUIRE(!unknown);
  CHECK(unknown.err().text().find("no module loaded on engine 8 provides it") != std::string::npos);
}

namespace {
struct watch_this {
  troupe::address who;
};
struct ended_query {};
/// Watches what it is told to and keeps the reasons they ended with.
struct end_counter : troupe::actor<end_counter, watch_this, troupe::terminated, ended_query> {
  std::vector<std::string> reasons;
  void on(const watch_this& m) { watch(m.who); }
  void on(const troupe::terminated& t) { reasons.push_back(t.reason); }
  std::vector<std::string> on(const ended_query&) { return reasons; }
};
}  // namespace

TEST_CASE("a convention supervisor places its children again on survivors when a member is lost",
          "[convention][processes]") {
  const std::string leader = "127.0.0.1:" + std::to_string(free_port());
  engine_process lead(1, leader, leader, R"({"zone": "a"})",
                      std::vector<std::string>{"--module", TEST_CONV_MODULE});
  auto m2 =
      std::make_unique<engine_process>(2, "127.0.0.1:0", leader, R"({"zone": "b"})",
                                       std::vector<std::string>{"--module", TEST_CONV_MODULE});
  engine_process m3(3, "127.0.0.1:0", leader, R"({"zone": "b"})",
                    std::vector<std::string>{"--module", TEST_CONV_MODULE});

  const auto opts = member_options(7, leader, {{"zone", "test"}});
  troupe::system sys(opts.core, opts.layers());
  REQUIRE(wait_members(sys, {1, 2, 3, 7}, 10s));
  std::vector<troupe::placed_child> specs;
  for (int i = 0; i < 4; ++i) {
    specs.push_back({"conv.locator", {{"tag", std::to_string(i)}}, where({{"zone", "b"}}, false)});
  }
  const troupe::address sup = sys.spawn<troupe::convention_supervisor>(specs);

  auto children_on = [&](auto pred, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    troupe::placed_children c;
    while (std::chrono::steady_clock::now() < end) {
      c = sys.ask<troupe::placed_children>(sup, troupe::placed_children_query{}, 5s).value();
      bool all = true;
      for (const auto& a : c.children) all = all && !a.is_null() && pred(a);
      if (all) return std::make_pair(true, c);
      std::this_thread::sleep_for(20ms);
    }
    return std::make_pair(false, c);
  };
  // Spread over the two members that fit.
  auto [placed, first] = children_on([](const troupe::address&) { return true; }, 10s);
  REQUIRE(placed);
  int on_two = 0;
  for (const auto& a : first.children) {
    CHECK((a.engine() == 2 || a.engine() == 3));
    if (a.engine() == 2) ++on_two;
  }
  REQUIRE(on_two > 0);

  // Member 2 dies: its children are placed again on member 3, the only
  // other that fits.
  const auto t0 = std::chrono::steady_clock::now();
  m2->proc.signal(SIGKILL);
  auto [moved, after] = children_on([](const troupe::address& a) { return a.engine() == 3; }, 10s);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(moved);
  CHECK(after.replacements == static_cast<std::uint64_t>(on_two));
  CHECK(took < 5s);
  m2->proc.wait_exit(10s);

  // Stopping the supervisor stops its children where they live.
  const troupe::address counter = sys.spawn<end_counter>();
  for (const auto& a : after.children) sys.tell(counter, watch_this{a});
  // The watches are in place (a watch on an actor already gone would say
  // "not alive" at once) before the supervisor is told to stop.
  std::this_thread::sleep_for(300ms);
  CHECK(sys.ask<std::vector<std::string>>(counter, ended_query{}, 5s).value().empty());
  sys.tell(sup, troupe::exit_request{});
  const auto stop_end = std::chrono::steady_clock::now() + 10s;
  std::vector<std::string> reasons;
  while (std::chrono::steady_clock::now() < stop_end) {
    reasons = sys.ask<std::vector<std::string>>(counter, ended_query{}, 5s).value();
    if (reasons.size() == after.children.size()) break;
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(reasons.size() == after.children.size());
  for (const auto& r : reasons) CHECK(r == "exit requested");
}

namespace {
struct say_this {
  std::string text;
};
struct chatty : troupe::actor<chatty, say_this> {
  void on(const say_this& m) { write_log(troupe::log_level::warn, m.text); }
};
}  // namespace

TEST_CASE("a member forwards the lines its actors log to the leader, with their origin",
          "[convention][processes]") {
  const std::string leader = "127.0.0.1:" + std::to_string(free_port());
  engine_process lead(1, leader, leader, R"({"zone": "a"})");
  troupe::engine_options o = member_options(6, leader, {{"zone", "test"}});
  o.convention->forward_logs = true;
  troupe::system sys(o.core, o.layers());
  REQUIRE(wait_members(sys, {1, 6}, 10s));
  const troupe::address a = sys.spawn<chatty>();
  // The leader may have just sent its view: the link is up, and the line goes.
  for (int i = 0; i < 100 && !lead.proc.wait_for_output("disk 7 is failing", 50ms); ++i) {
    sys.tell(a, say_this{"disk 7 is failing"});
  }
  const std::string out = lead.proc.output();
  INFO(out);
  CHECK(out.find("engine 6 actor " + a.to_string() + ": disk 7 is failing") != std::string::npos);
}

TEST_CASE(
    "a convention kept in etcd: no leader, members found, placed on, lost, and an etcd "
    "member's loss survived",
    "[convention][etcd][processes]") {
  troupe::test::etcd_cluster etcd(3);
  const std::string url = etcd.url();
  engine_process m2(2, "127.0.0.1:0", url, R"({"zone": "b"})",
                    std::vector<std::string>{"--module", TEST_CONV_MODULE});
  auto m3 =
      std::make_unique<engine_process>(3, "127.0.0.1:0", url, R"({"zone": "c"})",
                                       std::vector<std::string>{"--module", TEST_CONV_MODULE});
  troupe::engine_options o = member_options(9, "", {{"zone", "test"}});
  o.convention->membership = url;
  troupe::system sys(o.core, o.layers());
  const std::size_t from = updates.size();
  troupe::subscribe_convention(sys, sys.spawn<update_collector>());
  REQUIRE(wait_members(sys, {2, 3, 9}, 15s));
  REQUIRE(wait_linked(sys, {2, 3, 9}, 10s));  // members from etcd; their links a moment later
  auto table = troupe::members(sys);
  REQUIRE(table);
  for (const auto& m : *table) CHECK(!m.leader);

  auto b = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"zone", "b"}}));
  REQUIRE(b);
  CHECK(b.value().engine() == 2);

  // A member that dies is lost to the others.
  m3->proc.signal(SIGKILL);
  CHECK(updates.wait_for(change::lost, 3, 5s, from));
  REQUIRE(wait_members(sys, {2, 9}, 10s));
  m3->proc.wait_exit(10s);

  // etcd loses its leader: the convention goes on placing, and a member
  // still joins through the two etcd members left.
  const auto etcd_leader = etcd.leader();
  REQUIRE(etcd_leader);
  etcd.kill_node(*etcd_leader);
  auto again = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"zone", "b"}}));
  REQUIRE(again);
  CHECK(again.value().engine() == 2);
  engine_process m4(4, "127.0.0.1:0", url, R"({"zone": "c"})",
                    std::vector<std::string>{"--module", TEST_CONV_MODULE});
  REQUIRE(wait_members(sys, {2, 4, 9}, 20s));
  REQUIRE(wait_linked(sys, {2, 4, 9}, 10s));
  auto c = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"zone", "c"}}));
  REQUIRE(c);
  CHECK(c.value().engine() == 4);
}

TEST_CASE(
    "a placement on a member known from etcd but not linked yet waits for its link, and ends "
    "naming it when the link does not come",
    "[convention][etcd][processes]") {
  troupe::test::etcd_cluster etcd(1);
  const std::string url = etcd.url();
  // Engine 12 alone has a GPU, engine 13 alone a TPU. Both are stopped
  // (SIGSTOP) once registered: no link to them comes up while they are,
  // and their records stay in etcd for their leases (10 s, renewed every
  // 3.3 s: more than 6 s after the stop).
  const std::vector<std::string> flags = {"--module", TEST_CONV_MODULE, "--peer-timeout", "10000"};
  engine_process gpu(12, "127.0.0.1:0", url, R"({"gpu": true})", flags);
  engine_process tpu(13, "127.0.0.1:0", url, R"({"tpu": true})", flags);
  for (engine_process* e : {&gpu, &tpu}) {
    REQUIRE(e->proc.wait_for_output("registered in etcd", 10s));
    e->proc.signal(SIGSTOP);
  }
  // This engine waits for a link at most its peer timeout (1 s).
  troupe::engine_options o = member_options(9, "", {{"zone", "test"}});
  o.convention->membership = url;
  troupe::system sys(o.core, o.layers());
  REQUIRE(wait_members(sys, {9, 12, 13}, 10s));
  CHECK(sys.engines() == std::vector<std::uint32_t>{9});  // members, not linked

  // Asked for while engine 12 is stopped; it goes on a moment later.
  auto on_gpu = std::async(std::launch::async, [&] {
    return troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"gpu", true}}));
  });
  std::this_thread::sleep_for(200ms);
  gpu.proc.signal(SIGCONT);
  troupe::result<troupe::address> placed = on_gpu.get();
  {
    INFO((placed ? std::string() : placed.err().describe()));
    REQUIRE(placed);
    CHECK(placed.value().engine() == 12);
  }

  // Engine 13 stays stopped: the placement ends, naming it, once the wait
  // is over (a later one skips it at once).
  for (int i = 0; i < 2; ++i) {
    auto none = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"tpu", true}}));
    REQUIRE(!none);
    INFO(none.err().describe());
    CHECK(none.err().text().find("engine 13") != std::string::npos);
    CHECK(none.err().text().find("no link") != std::string::npos);
  }
  // Linked once it goes on, and placed on.
  tpu.proc.signal(SIGCONT);
  REQUIRE(wait_linked(sys, {9, 12, 13}, 10s));
  auto on_tpu = troupe::spawn_placed(sys, "conv.locator", nullptr, where({{"tpu", true}}));
  INFO((on_tpu ? std::string() : on_tpu.err().describe()));
  REQUIRE(on_tpu);
  CHECK(on_tpu.value().engine() == 13);
}
