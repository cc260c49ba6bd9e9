#include <catch2/catch.hpp>

#include <chrono>
#include <set>
#include <stdexcept>
#include <vector>

#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

struct job {
  int id;
  address report_to;
};
struct done_job {
  int id;
};
struct get {};

/// Takes a millisecond of (virtual) time per job; fails on a negative id.
struct slow_worker : troupe::actor<slow_worker, job> {
  troupe::task<int> on(const job& j) {
    co_await troupe::sleep_for{1ms};
    if (j.id < 0) throw std::runtime_error("bad job");
    if (j.report_to) tell(j.report_to, done_job{j.id});
    co_return j.id * 2;
  }
};

struct collector : troupe::actor<collector, done_job, get> {
  std::set<int> seen;
  void on(const done_job& d) { seen.insert(d.id); }
  int on(const get&) { return static_cast<int>(seen.size()); }
};

using job_pool = troupe::pool<slow_worker, job>;

troupe::system_options inline_options() {
  troupe::system_options o;
  o.inline_mode = true;
  return o;
}

}  // namespace

TEST_CASE("a pool grows under load and shrinks back when idle", "[engine][pool]") {
  troupe::system sys(inline_options());
  address c = sys.spawn<collector>();
  address p = sys.spawn<job_pool>(
      troupe::pool_options{.min_workers = 1, .max_workers = 4, .grow_at = 4, .idle = 20ms});
  auto before = sys.ask<troupe::pool_stats>(p, troupe::pool_stats_query{}, 1s).value();
  CHECK(before.workers == 1);
  for (int i = 0; i < 200; ++i) sys.tell(p, job{i, c});
  sys.run_until_idle();                              // virtual time: the jobs, then the idle ticks
  CHECK(sys.ask<int>(c, get{}, 1s).value() == 200);  // nothing lost
  auto after = sys.ask<troupe::pool_stats>(p, troupe::pool_stats_query{}, 1s).value();
  CHECK(after.peak == 4);
  CHECK(after.forwarded == 200);
  CHECK(after.workers == 1);               // back to the minimum
  CHECK(sys.counters().actors_live == 3);  // collector, pool, one worker
}

TEST_CASE("an ask to a pool is answered by a worker", "[engine][pool]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  address p = sys.spawn<job_pool>(troupe::pool_options{.min_workers = 2, .max_workers = 2});
  for (int i = 1; i <= 20; ++i) CHECK(sys.ask<int>(p, job{i, address{}}, 5s).value() == 2 * i);
  auto bad = sys.ask<int>(p, job{-1, address{}}, 5s);
  REQUIRE(!bad);
  CHECK(bad.err().code() == troupe::errc::failed);
  CHECK(sys.ask<int>(p, job{4, address{}}, 5s).value() == 8);  // the worker was restarted
}

TEST_CASE("a pool replaces a worker that ends", "[engine][pool]") {
  troupe::system sys(inline_options());
  address p = sys.spawn<job_pool>(
      troupe::pool_options{.min_workers = 2,
                           .max_workers = 2,
                           .worker_supervision = {.on_failure = troupe::directive::stop}});
  auto r = sys.ask<int>(p, job{-5, address{}}, 1s);
  CHECK(!r);
  sys.run_until_idle();
  auto st = sys.ask<troupe::pool_stats>(p, troupe::pool_stats_query{}, 1s).value();
  CHECK(st.replaced == 1);
  CHECK(st.workers == 2);
  CHECK(sys.ask<int>(p, job{3, address{}}, 1s).value() == 6);
  CHECK(sys.counters().actors_live == 3);
  sys.stop();
  auto s = sys.counters();
  CHECK(s.sent == s.delivered + s.dead_letters + s.poisoned);
}
