#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

struct job {
  std::uint64_t seq;
};
struct go {
  std::uint32_t remaining;
};
struct make_victims {
  std::uint32_t n;
};

struct tallies {
  std::atomic<std::uint64_t> handled{0};
  std::atomic<std::uint64_t> poison_back{0};
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> drivers_done{0};
};

/// Fails about one message in 64, decided by its own random stream, which
/// starts afresh with each instance; so a retried message may pass or fail.
struct victim : troupe::actor<victim, job> {
  tallies* t;
  std::uint64_t state;
  explicit victim(tallies* tt) : t(tt), state(reinterpret_cast<std::uintptr_t>(this) | 1) {}
  void on(const job& j) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    if (((state ^ j.seq) & 63) == 0) throw std::runtime_error("random failure");
    t->handled.fetch_add(1, std::memory_order_relaxed);
  }
};

/// Spawns victims on both shards: half restart (the default policy), half
/// stop when they fail, so that later messages to them are dead letters.
struct keeper : troupe::actor<keeper, make_victims> {
  tallies* t;
  bool stop_on_failure;
  keeper(tallies* tt, bool s) : t(tt), stop_on_failure(s) {}
  troupe::supervision_policy supervision() const override {
    if (stop_on_failure) return {.on_failure = troupe::directive::stop};
    return {.max_restarts = 1'000'000};
  }
  std::vector<address> on(const make_victims& m) {
    std::vector<address> out;
    for (std::uint32_t i = 0; i < m.n; ++i) {
      out.push_back(spawn<victim>(troupe::spawn_options{.shard = static_cast<int>(i % 2)}, t));
    }
    return out;
  }
};

/// Sends its share of jobs to random victims, a chunk per turn, and counts
/// the poison that comes back.
struct driver : troupe::actor<driver, go, troupe::poison> {
  tallies* t;
  std::vector<address> targets;
  std::uint64_t rng;
  driver(tallies* tt, std::vector<address> v, std::uint64_t seed)
      : t(tt), targets(std::move(v)), rng(seed) {}
  void on(const go& g) {
    const std::uint32_t chunk = g.remaining < 500 ? g.remaining : 500;
    for (std::uint32_t i = 0; i < chunk; ++i) {
      rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
      tell(targets[(rng >> 33) % targets.size()], job{rng});
    }
    t->sent.fetch_add(chunk, std::memory_order_relaxed);
    if (g.remaining > chunk) {
      tell(self(), go{g.remaining - chunk});
    } else {
      t->drivers_done.fetch_add(1, std::memory_order_relaxed);
    }
  }
  void on(const troupe::poison& p) {
    if (p.message.is<job>()) t->poison_back.fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace

TEST_CASE(
    "10,000 actors fail at random while 1,000,000 messages flow, and every message "
    "is accounted for",
    "[engine][supervision][stress]") {
  constexpr std::uint32_t victims = 10'000;
  constexpr std::uint32_t messages = 1'000'000;
  constexpr int drivers = 4;
  tallies t;
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  address restarter = sys.spawn<keeper>(troupe::spawn_options{.shard = 0}, &t, false);
  address stopper = sys.spawn<keeper>(troupe::spawn_options{.shard = 1}, &t, true);
  auto a = sys.ask<std::vector<address>>(restarter, make_victims{victims / 2}, 30s).value();
  auto b = sys.ask<std::vector<address>>(stopper, make_victims{victims / 2}, 30s).value();
  std::vector<address> all = a;
  all.insert(all.end(), b.begin(), b.end());
  REQUIRE(all.size() == victims);

  std::vector<address> ds;
  for (int i = 0; i < drivers; ++i) {
    ds.push_back(sys.spawn<driver>(troupe::spawn_options{.shard = i % 2}, &t, all,
                                   static_cast<std::uint64_t>(i + 1) * 0x9e3779b97f4a7c15ULL));
  }
  for (address d : ds) sys.tell(d, go{messages / drivers});

  // Every job ends as handled, poison back at its driver, or a dead letter
  // (its victim had stopped).
  auto accounted = [&] {
    auto st = sys.counters();
    return t.handled.load() + t.poison_back.load() + st.dead(troupe::dead_reason::actor_stopped);
  };
  for (int i = 0; i < 6000 && (t.drivers_done.load() < drivers || accounted() < messages); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(t.drivers_done.load() == drivers);
  CHECK(t.sent.load() == messages);
  CHECK(accounted() == messages);

  auto st = sys.counters();
  INFO("failures " << st.failures << ", restarts " << st.restarts << ", poisoned " << st.poisoned
                   << ", dead " << st.dead_letters);
  CHECK(st.failures > 5'000);  // about one job in 64 fails
  CHECK(st.restarts > 2'000);  // half the victims restart
  CHECK(st.poisoned == t.poison_back.load());
  CHECK(st.dead(troupe::dead_reason::actor_stopped) > 0);  // the other half stop
  CHECK(st.actors_live < victims + drivers + 2);
  sys.stop();
  st = sys.counters();
  CHECK(st.sent == st.delivered + st.dead_letters + st.poisoned);
  CHECK(st.actors_live == 0);
}
