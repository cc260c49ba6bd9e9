#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "troupe/testing.hpp"
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

TEST_CASE_METHOD(troupe::testing::fixture,
                 "timers fire in deadline order and a cancelled one never fires",
                 "[engine][timer]") {
  address a = spawn<alarm_clock>();
  inject(address{}, a, arm{10});
  expect<arm>().to(a);  // ten timers, 2ms apart, armed from the last; the third cancelled
  for (int i = 1; i <= 10; ++i) {
    CHECK(advance_time(1ms) == 0);  // none before its deadline
    if (i == 3) {
      CHECK(advance_time(1ms) == 0);  // cancelled: its deadline passes with nothing
      continue;
    }
    CHECK(advance_time(1ms) == 1);
    expect<tick>().with([i](const tick& t) { return t.n == i; }).from(a).to(a);
  }
  CHECK(mail_count() == 0);
  CHECK(sys.ask<std::vector<int>>(a, get{}, 1s).value() ==
        std::vector<int>{-1, -2, 1, 2, 4, 5, 6, 7, 8, 9, 10});
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
