#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

struct tick {
  int n;
};
struct arm {
  int count;
};
struct get {};

struct alarm_clock : troupe::actor<alarm_clock, arm, tick, get> {
  std::vector<int> fired;
  void on(const arm& a) {
    // Armed in reverse: they must still fire in deadline order.
    troupe::timer_id third = 0;
    for (int i = a.count; i >= 1; --i) {
      auto id = wakeup_after(std::chrono::milliseconds(2 * i), tick{i});
      if (i == 3) third = id;
    }
    // The first cancel succeeds, a second one finds nothing: recorded as
    // -1 / -2 in the trace for the test thread to check.
    if (third) {
      fired.push_back(cancel_timer(third) ? -1 : 0);
      fired.push_back(cancel_timer(third) ? 0 : -2);
    }
  }
  void on(const tick& t) { fired.push_back(t.n); }
  std::vector<int> on(const get&) { return fired; }
};

}  // namespace

TEST_CASE("timers fire in deadline order and a cancelled one never fires", "[engine][timer]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  address a = sys.spawn<alarm_clock>();
  sys.tell(a, arm{10});
  std::vector<int> fired;
  for (int i = 0; i < 500 && fired.size() < 11; ++i) {
    std::this_thread::sleep_for(2ms);
    fired = sys.ask<std::vector<int>>(a, get{}, 10s).value();
  }
  CHECK(fired == std::vector<int>{-1, -2, 1, 2, 4, 5, 6, 7, 8, 9, 10});
}

TEST_CASE("a wakeup pending at shutdown is a dead letter, not lost", "[engine][timer]") {
  troupe::system_options o;
  o.shards = 1;
  troupe::system sys(o);
  address a = sys.spawn<alarm_clock>();
  sys.tell(a, arm{2});
  struct far : troupe::actor<far, arm> {
    void on(const arm&) { wakeup_after(1h, tick{0}); }
  };
  address f = sys.spawn<far>();
  sys.tell(f, arm{1});
  sys.ask<std::vector<int>>(a, get{}, 1s).value();
  sys.stop();
  auto st = sys.counters();
  CHECK(st.dead(troupe::dead_reason::shutting_down) >= 1);
  CHECK(st.sent == st.delivered + st.dead_letters);
}
