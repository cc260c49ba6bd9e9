#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

struct watch_this {
  address target;
};
struct watch_twice_then_stop {
  address target;
};
struct seen {};
struct boom {};

/// Records every terminated notice it gets.
struct watcher
    : troupe::actor<watcher, watch_this, watch_twice_then_stop, troupe::terminated, seen> {
  std::vector<std::string> notices;
  void on(const watch_this& m) { watch(m.target); }
  void on(const watch_twice_then_stop& m) {
    // From one sender, in order: the watches land before the exit request.
    watch(m.target);
    watch(m.target);
    tell(m.target, troupe::exit_request{});
  }
  void on(const troupe::terminated& t) { notices.push_back(t.who.to_string() + " " + t.reason); }
  std::vector<std::string> on(const seen&) { return notices; }
};

struct mortal : troupe::actor<mortal, boom> {
  void on(const boom&) { throw std::runtime_error("struck down"); }
};

std::vector<std::string> notices_of(troupe::system& sys, address w, std::size_t want) {
  std::vector<std::string> got;
  for (int i = 0; i < 1000 && got.size() < want; ++i) {
    got = sys.ask<std::vector<std::string>>(w, seen{}, 5s).value();
    if (got.size() < want) std::this_thread::sleep_for(2ms);
  }
  return got;
}

}  // namespace

TEST_CASE("a watcher is told once when the watched actor stops", "[engine][watch]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  address w = sys.spawn<watcher>(troupe::spawn_options{.shard = 0});
  address m = sys.spawn<mortal>(troupe::spawn_options{.shard = 1});
  sys.tell(w, watch_twice_then_stop{m});  // two watches: two notices
  auto got = notices_of(sys, w, 2);
  REQUIRE(got.size() == 2);
  CHECK(got[0] == m.to_string() + " exit requested");
  CHECK(got[1] == m.to_string() + " exit requested");
}

TEST_CASE("watching an actor that already ended notifies at once", "[engine][watch]") {
  troupe::system_options o;
  o.inline_mode = true;
  troupe::system sys(o);
  address w = sys.spawn<watcher>();
  address m = sys.spawn<mortal>();
  sys.tell(m, troupe::exit_request{});
  sys.run_until_idle();
  sys.tell(w, watch_this{m});
  sys.tell(w, watch_this{address(1, 0, 999, 3)});  // never existed
  sys.tell(w, watch_this{address(7, 0, 1, 1)});    // another engine
  sys.run_until_idle();
  auto got = sys.ask<std::vector<std::string>>(w, seen{}, 1s).value();
  REQUIRE(got.size() == 3);
  std::sort(got.begin(), got.end());              // three targets, no order between them
  CHECK(got[0] == m.to_string() + " not alive");  // 1:0:1.1
  CHECK(got[1] == "1:0:999.3 not alive");
  CHECK(got[2] == "7:0:1.1 engine lost: no link to engine 7");
}

TEST_CASE("a watch on an actor still being installed waits for it", "[engine][watch]") {
  struct parent : troupe::actor<parent, seen, troupe::terminated> {
    std::vector<std::string> notices;
    address child;
    std::vector<std::string> on(const seen&) {
      if (!child) {
        child = spawn<mortal>(troupe::spawn_options{.shard = 1});  // install is in flight
        watch(child);
        tell(child, boom{});
      }
      return notices;
    }
    void on(const troupe::terminated& t) { notices.push_back(t.reason); }
    troupe::supervision_policy supervision() const override {
      return {.on_failure = troupe::directive::stop};
    }
  };
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  address p = sys.spawn<parent>(troupe::spawn_options{.shard = 0});
  std::vector<std::string> got;
  for (int i = 0; i < 1000 && got.empty(); ++i) {
    got = sys.ask<std::vector<std::string>>(p, seen{}, 5s).value();
    if (got.empty()) std::this_thread::sleep_for(2ms);
  }
  REQUIRE(got.size() == 1);
  CHECK(got[0] == "failed: std::runtime_error: struck down");
}

TEST_CASE("watchers of actors ended by shutdown are told, and nothing is lost",
          "[engine][watch][shutdown]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  address w = sys.spawn<watcher>(troupe::spawn_options{.shard = 0});
  for (int i = 0; i < 50; ++i) {
    sys.tell(w, watch_this{sys.spawn<mortal>(troupe::spawn_options{.shard = i % 2})});
  }
  sys.ask<std::vector<std::string>>(w, seen{}, 5s).value();
  sys.stop();
  auto st = sys.counters();
  CHECK(st.sent == st.delivered + st.dead_letters);
  CHECK(st.actors_live == 0);
}
