// Convention pools: one address over workers placed on the members of a
// convention. The process tests run real `troupe serve` engines (a leader
// and members that load the conv test module, whose busy worker takes a
// few milliseconds per job on a timer); this test process is one more
// member that holds the pool and drives the load from client actors.

#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modules/conv_work.hpp"
#include "support/convention.hpp"
#include "support/engine.hpp"
#include "troupe/convention_pool.hpp"
#include "troupe/module.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using conv_test::work;
using conv_test::work_done;
using troupe::convention_pool_stats;
using troupe::test::engine_process;
using troupe::test::free_port;
using troupe::test::member_options;
using troupe::test::wait_members_linked;

namespace {

using clock_type = std::chrono::steady_clock;

/// A `troupe serve` engine of the convention, with the conv test module.
engine_process member(std::uint32_t id, const std::string& listen, const std::string& leader,
                      const std::string& capabilities) {
  return engine_process(id, listen, leader, capabilities, {"--module", TEST_CONV_MODULE});
}

/// Loads the conv module here too (its work messages must be known to
/// cross the links), and unloads it at the end: modules are per process.
struct module_here {
  troupe::system& sys;
  bool loaded;
  explicit module_here(troupe::system& s) : sys(s), loaded(bool(s.load_module(TEST_CONV_MODULE))) {}
  ~module_here() {
    if (loaded) (void)sys.unload_module("test.conv", true);
  }
};

/// A convention of a leader (engine 1, zone a), two members the pools
/// fit (engines 2 and 3, zone b) and this process as engine 9, which holds
/// the pools; the constructor returns once all of them are linked.
struct leader_and_two_members {
  std::string leader = "127.0.0.1:" + std::to_string(free_port());
  engine_process lead = member(1, leader, leader, R"({"zone": "a"})");
  engine_process m2 = member(2, "127.0.0.1:0", leader, R"({"zone": "b"})");
  engine_process m3 = member(3, "127.0.0.1:0", leader, R"({"zone": "b"})");
  troupe::test::engine sys{member_options(9, leader, {{"zone", "test"}})};
  module_here mod{sys};

  leader_and_two_members() { REQUIRE(wait_members_linked(sys, {1, 2, 3, 9}, 10s)); }
};

troupe::convention_pool_options pool_options(std::uint32_t max_workers) {
  troupe::convention_pool_options o;
  o.where.requirements = {{"zone", "b"}};
  o.where.prefer_local = false;
  o.where.timeout = 5s;
  o.min_workers = 1;
  o.max_workers = max_workers;
  o.grow_at = 4;
  o.idle = 500ms;
  o.sample_every = 20ms;
  o.retry_every = 200ms;
  return o;
}

/// What the clients saw.
struct load_stats {
  std::atomic<bool> stop{false};
  std::atomic<int> running{0};
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> answered{0};
  std::atomic<std::uint64_t> lost{0};   ///< errc::peer_lost
  std::atomic<std::uint64_t> other{0};  ///< any other failure (a timeout would be one)
  std::array<std::atomic<std::uint64_t>, 16> by_engine{};
  std::mutex lock;
  std::string other_errors;

  std::uint64_t answers_from(std::uint32_t engine) const { return by_engine[engine & 15].load(); }
};

struct go {};

/// Keeps one job in flight to the pool until told to stop: each ask ends
/// with the answer or an error within 5 s.
template <class Job, class Done>
struct client_of : troupe::actor<client_of<Job, Done>, go> {
  client_of(load_stats* l, troupe::address pool, std::uint32_t ms) : l_(l), pool_(pool), ms_(ms) {}

  troupe::task<void> on(const go&) {
    std::uint64_t id = 0;
    while (!l_->stop.load()) {
      ++l_->sent;
      Job job{ms_, 0, ++id};
      troupe::result<Done> r = co_await this->template ask<Done>(pool_, std::move(job), 5s);
      if (r) {
        ++l_->answered;
        ++l_->by_engine[r.value().engine & 15];
      } else if (r.err().code() == troupe::errc::peer_lost) {
        ++l_->lost;
      } else {
        ++l_->other;
        std::lock_guard g(l_->lock);
        if (l_->other_errors.size() < 2000) l_->other_errors += r.err().describe() + "\n";
      }
      if (!r) co_await troupe::sleep_for{1ms};
    }
    --l_->running;
  }

 private:
  load_stats* l_;
  troupe::address pool_;
  std::uint32_t ms_;
};
using client = client_of<work, work_done>;

template <class Client>
void start_load(troupe::system& sys, load_stats& l, troupe::address pool, int clients,
                std::uint32_t ms) {
  for (int i = 0; i < clients; ++i) {
    ++l.running;
    sys.tell(sys.spawn<Client>(&l, pool, ms), go{});
  }
}

/// Stops the clients; true once every one has ended (bounded).
bool stop_load(load_stats& l, std::chrono::milliseconds limit) {
  l.stop = true;
  const auto end = clock_type::now() + limit;
  while (clock_type::now() < end) {
    if (l.running.load() == 0) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

convention_pool_stats stats_of(troupe::system& sys, troupe::address pool) {
  auto r = sys.ask<convention_pool_stats>(pool, troupe::convention_pool_stats_query{}, 5s);
  REQUIRE(r);
  return r.value();
}

/// Waits (bounded) until the pool's stats satisfy `pred`; the last stats seen.
template <class Pred>
std::pair<bool, convention_pool_stats> wait_stats(troupe::system& sys, troupe::address pool,
                                                  Pred pred, std::chrono::milliseconds limit) {
  const auto end = clock_type::now() + limit;
  convention_pool_stats s;
  while (clock_type::now() < end) {
    s = stats_of(sys, pool);
    if (pred(s)) return {true, s};
    std::this_thread::sleep_for(20ms);
  }
  return {false, s};
}

std::uint32_t on_engine(const convention_pool_stats& s, std::uint32_t engine) {
  auto it = s.workers_per_engine.find(engine);
  return it == s.workers_per_engine.end() ? 0 : it->second;
}

std::string describe(const convention_pool_stats& s) {
  nlohmann::json j = s;
  return j.dump();
}

std::string describe(load_stats& l) {
  std::lock_guard g(l.lock);
  return "sent " + std::to_string(l.sent) + ", answered " + std::to_string(l.answered) +
         ", peer_lost " + std::to_string(l.lost) + ", other " + std::to_string(l.other) + "\n" +
         l.other_errors;
}

}  // namespace

// --- a lone engine that leads its own convention (no processes) ---------

// Named, not anonymous: coroutine frames hold these (GCC warns of frames
// whose fields have internal linkage).
namespace cpool_test {

struct job {
  std::uint32_t ms = 1;
  std::uint32_t pad = 0;
  std::uint64_t id = 0;
};
struct job_done {
  std::uint32_t engine = 0;
  std::uint32_t pad = 0;
  std::uint64_t id = 0;
};

struct local_worker : troupe::actor<local_worker, job> {
  troupe::task<job_done> on(const job& j) {
    const job mine = j;
    co_await troupe::sleep_for{std::chrono::milliseconds(mine.ms)};
    co_return job_done{self().engine(), 0, mine.id};
  }
};

}  // namespace cpool_test

using cpool_test::job;
using cpool_test::job_done;
using cpool_test::local_worker;

namespace {

troupe::engine_options lone_options() {
  const std::string addr = "127.0.0.1:" + std::to_string(free_port());
  troupe::engine_options o;
  o.core.engine_id = 1;
  o.core.shards = 2;
  o.links = troupe::link_options{.listen = addr};
  o.convention = troupe::convention_options{.leader = addr, .capabilities = {{"zone", "b"}}};
  return o;
}

}  // namespace

TEST_CASE("a convention pool on one engine grows under load, answers every ask, shrinks when idle",
          "[convention][pool]") {
  troupe::register_actor<local_worker>("test.cpool.worker");
  load_stats load;
  troupe::test::engine sys(lone_options());
  REQUIRE(wait_members_linked(sys, {1}, 5s));
  auto o = pool_options(4);
  o.grow_at = 2;
  auto pool = troupe::spawn_convention_pool<job>(sys, "test.cpool.worker", nullptr, o);
  INFO((pool ? std::string() : pool.err().describe()));
  REQUIRE(pool);
  CHECK(stats_of(sys, pool.value()).workers == 1);

  start_load<client_of<job, job_done>>(sys, load, pool.value(), 16, 2);
  auto [grew, s] = wait_stats(
      sys, pool.value(), [](const auto& st) { return st.workers == 4; }, 10s);
  INFO(describe(s));
  CHECK(grew);
  std::this_thread::sleep_for(300ms);
  REQUIRE(stop_load(load, 10s));
  INFO(describe(load));
  CHECK(load.sent == load.answered);
  CHECK(load.answers_from(1) == load.answered);

  // Idle: back to the minimum.
  auto [shrank, after] = wait_stats(
      sys, pool.value(), [](const auto& st) { return st.workers == 1 && st.retiring == 0; }, 5s);
  INFO(describe(after));
  CHECK(shrank);
  CHECK(after.peak == 4);
  CHECK(after.shrunk >= 3);
  CHECK(after.forwarded == load.sent);
  // The stats cross the wire as JSON (CBOR): they read back the same.
  const nlohmann::json j = after;
  const auto back = j.get<convention_pool_stats>();
  CHECK(back.workers == after.workers);
  CHECK(back.workers_per_engine == after.workers_per_engine);
  CHECK(back.forwarded_per_engine == after.forwarded_per_engine);
  CHECK(back.worker_addresses == after.worker_addresses);
  CHECK(back.shrunk == after.shrunk);
}

TEST_CASE("a convention pool refuses bad options, unknown types and predicates nothing fits",
          "[convention][pool]") {
  troupe::register_actor<local_worker>("test.cpool.worker");
  troupe::test::engine sys(lone_options());
  REQUIRE(wait_members_linked(sys, {1}, 5s));
  auto spawn = [&](std::string type, troupe::convention_pool_options o) {
    return troupe::spawn_convention_pool<job>(sys, std::move(type), nullptr, std::move(o));
  };

  auto o = pool_options(2);
  o.min_workers = 3;
  auto r = spawn("test.cpool.worker", o);
  REQUIRE(!r);
  CHECK(r.err().code() == troupe::errc::misuse);
  CHECK(r.err().text() ==
        "convention pool of 'test.cpool.worker': min_workers (3) is more than max_workers (2)");

  o = pool_options(2);
  o.grow_at = 0;
  r = spawn("test.cpool.worker", o);
  REQUIRE(!r);
  CHECK(r.err().text().find("grow_at must be at least 1") != std::string::npos);

  o = pool_options(2);
  o.sample_every = 0ms;
  r = spawn("test.cpool.worker", o);
  REQUIRE(!r);
  CHECK(r.err().text().find("sample_every must be positive") != std::string::npos);

  r = spawn("", pool_options(2));
  REQUIRE(!r);
  CHECK(r.err().text().find("no worker type given") != std::string::npos);

  // A type no engine has.
  r = spawn("no.such.type", pool_options(2));
  REQUIRE(!r);
  INFO(r.err().describe());
  CHECK(r.err().text().find("convention pool of 'no.such.type'") != std::string::npos);
  CHECK(r.err().text().find("no actor type named 'no.such.type'") != std::string::npos);

  // A predicate nothing fits, and one that does not parse.
  o = pool_options(2);
  o.where.requirements = {{"zone", "mars"}};
  r = spawn("test.cpool.worker", o);
  REQUIRE(!r);
  CHECK(r.err().code() == troupe::errc::not_found);
  CHECK(r.err().text().find("no member of the convention fits 'test.cpool.worker'") !=
        std::string::npos);
  CHECK(r.err().text().find("engine 1: zone") != std::string::npos);
  o.where.requirements = {{"cores", {{"$gte2", 4}}}};
  r = spawn("test.cpool.worker", o);
  REQUIRE(!r);
  CHECK(r.err().code() == troupe::errc::misuse);
  CHECK(r.err().text().find("$gte2") != std::string::npos);

  // Spawned directly with bad options, the pool ends at once (its
  // supervisor and watchers are told why).
  o = pool_options(2);
  o.min_workers = 5;
  const troupe::address bad = sys.spawn<troupe::convention_pool<job>>(
      std::string("test.cpool.worker"), nlohmann::json(), o);
  auto asked = sys.ask<job_done>(bad, job{}, 2s);
  REQUIRE(!asked);
  CHECK(asked.err().code() == troupe::errc::dead_actor);

  // Outside any convention.
  troupe::system_options alone;
  alone.shards = 1;
  alone.engine_id = 5;
  troupe::system no_convention(alone);
  auto none = troupe::spawn_convention_pool<job>(no_convention, "test.cpool.worker", nullptr,
                                                 pool_options(2));
  REQUIRE(!none);
  CHECK(none.err().code() == troupe::errc::misuse);
  CHECK(none.err().text().find("in no convention") != std::string::npos);
}

TEST_CASE("a convention pool under load grows from one worker onto the members",
          "[convention][pool][processes]") {
  load_stats load;  // outlives the engine, whose clients count in it
  leader_and_two_members c;
  troupe::system& sys = c.sys;

  auto pool =
      troupe::spawn_convention_pool<work>(sys, "conv.busy_worker", nullptr, pool_options(6));
  INFO((pool ? std::string() : pool.err().describe()));
  REQUIRE(pool);
  {
    const convention_pool_stats first = stats_of(sys, pool.value());
    CHECK(first.workers == 1);
    CHECK(on_engine(first, 2) + on_engine(first, 3) == 1);
  }

  const auto t0 = clock_type::now();
  start_load<client>(sys, load, pool.value(), 32, 2);
  auto [grew, s] = wait_stats(
      sys, pool.value(),
      [](const auto& st) {
        return st.workers == 6 && on_engine(st, 2) > 0 && on_engine(st, 3) > 0;
      },
      10s);
  const auto took = clock_type::now() - t0;
  INFO(describe(s));
  CHECK(grew);
  CHECK(took < 5s);
  CHECK(on_engine(s, 1) == 0);  // the leader does not fit
  CHECK(on_engine(s, 9) == 0);
  std::this_thread::sleep_for(1s);
  REQUIRE(stop_load(load, 10s));
  INFO(describe(load));
  CHECK(load.sent == load.answered);
  CHECK(load.answers_from(2) > 0);
  CHECK(load.answers_from(3) > 0);

  auto [shrank, after] = wait_stats(
      sys, pool.value(), [](const auto& st) { return st.workers == 1 && st.retiring == 0; }, 5s);
  INFO(describe(after));
  CHECK(shrank);
  CHECK(after.peak == 6);
  CHECK(after.grown >= 5);
  CHECK(after.forwarded == load.sent);
  CHECK(after.dropped == 0);
}

TEST_CASE("a fourth member joins under load and receives work within seconds",
          "[convention][pool][processes]") {
  load_stats load;  // outlives the engine, whose clients count in it
  leader_and_two_members c;
  troupe::system& sys = c.sys;

  // At its maximum over the two members, and under load.
  auto pool =
      troupe::spawn_convention_pool<work>(sys, "conv.busy_worker", nullptr, pool_options(4));
  REQUIRE(pool);
  start_load<client>(sys, load, pool.value(), 32, 2);
  auto [full, s] = wait_stats(
      sys, pool.value(), [](const auto& st) { return st.workers == 4; }, 10s);
  INFO(describe(s));
  REQUIRE(full);

  const auto t0 = clock_type::now();
  auto m4 = member(4, "127.0.0.1:0", c.leader, R"({"zone": "b"})");
  auto [used, after] = wait_stats(
      sys, pool.value(),
      [](const auto& st) {
        auto f = st.forwarded_per_engine.find(4);
        return on_engine(st, 4) > 0 && f != st.forwarded_per_engine.end() && f->second > 0;
      },
      10s);
  const auto took = clock_type::now() - t0;
  INFO(describe(after));
  CHECK(used);
  CHECK(took < 5s);
  CHECK(after.workers <= 4);
  CHECK(after.moved >= 1);
  const auto until = clock_type::now() + 3s;
  while (load.answers_from(4) == 0 && clock_type::now() < until) std::this_thread::sleep_for(10ms);
  REQUIRE(stop_load(load, 10s));
  INFO(describe(load));
  CHECK(load.answers_from(4) > 0);
  CHECK(load.sent == load.answered);
  CHECK(stats_of(sys, pool.value()).peak == 4);
}

TEST_CASE(
    "a member killed under load: its workers are dropped, their asks fail with peer_lost, "
    "and the pool serves on and grows back",
    "[convention][pool][processes]") {
  load_stats load;  // outlives the engine, whose clients count in it
  leader_and_two_members c;
  troupe::system& sys = c.sys;

  auto pool =
      troupe::spawn_convention_pool<work>(sys, "conv.busy_worker", nullptr, pool_options(6));
  REQUIRE(pool);
  start_load<client>(sys, load, pool.value(), 32, 2);
  auto [spread, s] = wait_stats(
      sys, pool.value(),
      [](const auto& st) {
        return st.workers == 6 && on_engine(st, 2) > 0 && on_engine(st, 3) > 0;
      },
      10s);
  INFO(describe(s));
  REQUIRE(spread);
  const std::uint32_t on_two = on_engine(s, 2);

  c.m2.proc.signal(SIGKILL);
  const auto t0 = clock_type::now();
  auto [dropped, after] = wait_stats(
      sys, pool.value(), [](const auto& st) { return on_engine(st, 2) == 0; }, 5s);
  INFO(describe(after));
  CHECK(dropped);
  CHECK(clock_type::now() - t0 < 3s);
  CHECK(after.dropped >= on_two);
  // It serves on, and grows back on the member left.
  const std::uint64_t answered = load.answered;
  auto [back, regrown] = wait_stats(
      sys, pool.value(), [](const auto& st) { return st.workers == 6 && on_engine(st, 3) == 6; },
      10s);
  INFO(describe(regrown));
  CHECK(back);
  const auto serving_until = clock_type::now() + 5s;
  while (load.answered <= answered + 100 && clock_type::now() < serving_until) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(load.answered > answered + 100);
  REQUIRE(stop_load(load, 10s));
  c.m2.proc.wait_exit(10s);
  INFO(describe(load));
  // Every ask ended: answered, or failed with peer_lost (none waited for
  // its timeout).
  CHECK(load.lost > 0);
  CHECK(load.other == 0);
  CHECK(load.sent == load.answered + load.lost);
  CHECK(regrown.abandoned_asks > 0);
}
