#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "troupe/testing.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;

namespace {

troupe::system_options inline_options() {
  troupe::system_options o;
  o.inline_mode = true;
  return o;
}

struct add {
  int n;
};
struct get {};
struct fail {};  // a message type; unrelated to actor_base::fail_with
/// Fails on the first `n` deliveries to each instance... of the whole class:
/// the count lives outside the actor, so a fresh instance sees it too.
struct fail_times {
  std::shared_ptr<int> left;
};

/// State that a restart must reset, and handlers that fail on demand.
struct worker : troupe::actor<worker, add, get, fail, fail_times> {
  int total = 0;
  void on(const add& m) { total += m.n; }
  int on(const get&) { return total; }
  void on(const fail&) { throw std::runtime_error("told to fail"); }
  int on(const fail_times& m) {
    if (*m.left > 0) {
      --*m.left;
      throw std::runtime_error("failing " + std::to_string(*m.left + 1) + " more");
    }
    return ++total;
  }
};

struct spawn_worker {
  troupe::spawn_options where{};
};
struct children_seen {};
struct poisons_seen {};

/// A parent with a policy of the test's choosing that records what it is
/// told about its children, and a sender that records poison.
struct parent : troupe::actor<parent, spawn_worker, children_seen, poisons_seen,
                              troupe::child_exited, troupe::poison, address> {
  troupe::supervision_policy policy;
  std::vector<std::string> exits;
  std::vector<std::string> poisons;
  explicit parent(troupe::supervision_policy p) : policy(p) {}
  troupe::supervision_policy supervision() const override { return policy; }
  address on(const spawn_worker& m) { return spawn<worker>(m.where); }
  std::vector<std::string> on(const children_seen&) { return exits; }
  std::vector<std::string> on(const poisons_seen&) { return poisons; }
  void on(const troupe::child_exited& m) {
    exits.push_back(std::string(troupe::to_string(m.kind)) + " | " + m.reason);
  }
  void on(const troupe::poison& p) {
    const fail* f = p.message.get<fail>();
    poisons.push_back((f ? "fail" : p.message.type_name()) + std::string(" | ") + p.reason);
  }
  // Forwards `fail` to a target as itself, so that poison comes back here.
  void on(const address& target) { tell(target, fail{}); }
};

}  // namespace

TEST_CASE("a restart keeps the address and gives fresh state", "[engine][supervision]") {
  troupe::system sys(inline_options());
  address w = sys.spawn<worker>();
  sys.tell(w, add{5});
  REQUIRE(sys.ask<int>(w, get{}, 1s).value() == 5);
  auto failed = sys.ask<troupe::done>(w, fail{}, 10s);
  REQUIRE(!failed);
  CHECK(failed.err().code() == troupe::errc::failed);  // at once, not a timeout
  CHECK(failed.err().text().find("told to fail") != std::string::npos);
  CHECK(sys.ask<int>(w, get{}, 1s).value() == 0);  // same address, fresh instance
  sys.tell(w, add{2});
  CHECK(sys.ask<int>(w, get{}, 1s).value() == 2);
  auto st = sys.counters();
  CHECK(st.restarts == 2);  // the failure and its retry
  CHECK(st.failures == 2);
  CHECK(st.poisoned == 1);
}

TEST_CASE("the failing message is retried once on the fresh instance", "[engine][supervision]") {
  troupe::system sys(inline_options());
  address w = sys.spawn<worker>();
  auto once = std::make_shared<int>(1);
  // Fails once, then the retry on the fresh instance succeeds.
  CHECK(sys.ask<int>(w, fail_times{once}, 1s).value() == 1);
  CHECK(sys.counters().restarts == 1);
  CHECK(sys.counters().poisoned == 0);
  // Fails twice: the retry fails too, so the ask ends with the error.
  auto twice = std::make_shared<int>(2);
  auto r = sys.ask<int>(w, fail_times{twice}, 1s);
  REQUIRE(!r);
  CHECK(r.err().code() == troupe::errc::failed);
  CHECK(r.err().text().find("failing 1 more") != std::string::npos);
  CHECK(sys.counters().poisoned == 1);
}

TEST_CASE("a message that fails twice goes back to its sender as poison", "[engine][supervision]") {
  troupe::system sys(inline_options());
  address p = sys.spawn<parent>(troupe::supervision_policy{});
  address w = sys.spawn<worker>();
  sys.tell(p, w);  // p tells w `fail`: it fails, is retried, fails again
  sys.run_until_idle();
  auto poisons = sys.ask<std::vector<std::string>>(p, poisons_seen{}, 1s).value();
  REQUIRE(poisons.size() == 1);
  CHECK(poisons[0] == "fail | std::runtime_error: told to fail");
  auto st = sys.counters();
  sys.stop();
  st = sys.counters();
  CHECK(st.sent == st.delivered + st.dead_letters + st.poisoned);
}

TEST_CASE("without retry the first failure is poison, and stop ends the child",
          "[engine][supervision]") {
  troupe::system sys(inline_options());
  address p = sys.spawn<parent>(
      troupe::supervision_policy{.on_failure = troupe::directive::stop, .retry_once = false});
  address w = sys.ask<address>(p, spawn_worker{}, 1s).value();
  sys.tell(p, w);
  sys.run_until_idle();
  auto poisons = sys.ask<std::vector<std::string>>(p, poisons_seen{}, 1s).value();
  CHECK(poisons.size() == 1);
  auto exits = sys.ask<std::vector<std::string>>(p, children_seen{}, 1s).value();
  REQUIRE(exits.size() == 1);
  CHECK(exits[0] == "failed | failed: std::runtime_error: told to fail");
  CHECK(!sys.ask<int>(w, get{}, 1s));  // gone
  CHECK(sys.counters().restarts == 0);
}

TEST_CASE("restarts beyond the limit end the child and escalate to its parent",
          "[engine][supervision]") {
  // grandparent --(stop)--> middle --(2 restarts per second)--> worker
  struct middle : troupe::actor<middle, spawn_worker> {
    troupe::supervision_policy supervision() const override {
      return {.retry_once = false, .max_restarts = 2, .within = std::chrono::seconds(10)};
    }
    address on(const spawn_worker&) { return spawn<worker>(); }
  };
  struct grandparent
      : troupe::actor<grandparent, spawn_worker, children_seen, troupe::child_exited> {
    std::vector<std::string> exits;
    troupe::supervision_policy supervision() const override {
      return {.on_failure = troupe::directive::stop};
    }
    address on(const spawn_worker&) { return spawn<middle>(); }
    std::vector<std::string> on(const children_seen&) { return exits; }
    void on(const troupe::child_exited& m) {
      exits.push_back(std::string(troupe::to_string(m.kind)) + " | " + m.reason);
    }
  };
  troupe::system sys(inline_options());
  address g = sys.spawn<grandparent>();
  address m = sys.ask<address>(g, spawn_worker{}, 1s).value();
  address w = sys.ask<address>(m, spawn_worker{}, 1s).value();
  for (int i = 0; i < 2; ++i) {
    sys.tell(w, fail{});
    sys.run_until_idle();
    CHECK(sys.ask<int>(w, get{}, 1s).value() == 0);  // restarted
  }
  sys.tell(w, fail{});  // the third in the window
  sys.run_until_idle();
  CHECK(!sys.ask<int>(w, get{}, 1s));
  auto exits = sys.ask<std::vector<std::string>>(g, children_seen{}, 1s).value();
  REQUIRE(exits.size() == 1);
  CHECK(exits[0].rfind("failed | failed: child " + w.to_string() +
                           " escalated: restart limit reached (2 in 10000ms)",
                       0) == 0);
  CHECK(sys.counters().actors_live == 1);  // the grandparent alone
}

TEST_CASE("all-for-one restarts the siblings of the child that failed", "[engine][supervision]") {
  troupe::system sys(inline_options());
  address p = sys.spawn<parent>(troupe::supervision_policy{
      .scope = troupe::supervision_scope::all_for_one, .retry_once = false});
  std::vector<address> kids;
  for (int i = 0; i < 3; ++i) kids.push_back(sys.ask<address>(p, spawn_worker{}, 1s).value());
  for (address k : kids) sys.tell(k, add{7});
  sys.run_until_idle();
  for (address k : kids) REQUIRE(sys.ask<int>(k, get{}, 1s).value() == 7);
  sys.tell(kids[1], fail{});
  sys.run_until_idle();
  for (address k : kids) CHECK(sys.ask<int>(k, get{}, 1s).value() == 0);
  CHECK(sys.counters().restarts == 3);

  // One-for-one, for contrast: only the one that failed.
  address q = sys.spawn<parent>(troupe::supervision_policy{.retry_once = false});
  address a = sys.ask<address>(q, spawn_worker{}, 1s).value();
  address b = sys.ask<address>(q, spawn_worker{}, 1s).value();
  sys.tell(a, add{1});
  sys.tell(b, add{1});
  sys.tell(a, fail{});
  sys.run_until_idle();
  CHECK(sys.ask<int>(a, get{}, 1s).value() == 0);
  CHECK(sys.ask<int>(b, get{}, 1s).value() == 1);
}

TEST_CASE("all-for-one reaches siblings on other shards", "[engine][supervision]") {
  troupe::system_options o;
  o.shards = 2;
  troupe::system sys(o);
  address p =
      sys.spawn<parent>(troupe::spawn_options{.shard = 0},
                        troupe::supervision_policy{.scope = troupe::supervision_scope::all_for_one,
                                                   .retry_once = false});
  address a = sys.ask<address>(p, spawn_worker{troupe::spawn_options{.shard = 0}}, 5s).value();
  address b = sys.ask<address>(p, spawn_worker{troupe::spawn_options{.shard = 1}}, 5s).value();
  sys.tell(a, add{3});
  sys.tell(b, add{4});
  REQUIRE(sys.ask<int>(a, get{}, 5s).value() == 3);
  REQUIRE(sys.ask<int>(b, get{}, 5s).value() == 4);
  sys.tell(a, fail{});
  int b_total = -1;
  for (int i = 0; i < 1000 && b_total != 0; ++i) {
    b_total = sys.ask<int>(b, get{}, 5s).value();
    if (b_total != 0) std::this_thread::sleep_for(1ms);
  }
  CHECK(b_total == 0);
  CHECK(sys.ask<int>(a, get{}, 5s).value() == 0);
}

TEST_CASE_METHOD(troupe::testing::fixture, "restart backoff waits, and doubles within the window",
                 "[engine][supervision]") {
  address p = spawn<parent>(troupe::supervision_policy{
      .retry_once = false, .within = std::chrono::seconds(60), .backoff = 40ms, .backoff_max = 1s});
  const address w = sys.ask<address>(p, spawn_worker{}, 1s).value();
  for (const auto wait : {40ms, 80ms}) {  // the second restart in the window waits twice as long
    inject(address{}, w, add{1});
    expect<add>().to(w);
    inject(address{}, w, fail{});
    expect<fail>().to(w);             // it fails; its restart waits
    inject(address{}, w, get{});      // and so does this, in the mailbox meanwhile
    CHECK_FALSE(dispatch_message());  // the failed actor takes nothing
    CHECK(mail_count(w) == 1);
    CHECK(advance_time(wait - 1ms) == 0);
    CHECK(mail_count(w) == 1);
    CHECK(advance_time(1ms) == 1);                   // the restart
    expect<get>().to(w);                             // the fresh instance takes what waited
    CHECK(sys.ask<int>(w, get{}, 1s).value() == 0);  // fresh: the add before is gone
  }
}

TEST_CASE("exit requests reach children first, and parents end after them",
          "[engine][supervision][lifecycle]") {
  struct log {
    std::vector<std::string> lines;
  };
  struct leaf : troupe::actor<leaf, troupe::exit_request> {
    log* out;
    std::string name;
    leaf(log* o, std::string n) : out(o), name(std::move(n)) {}
    void on(const troupe::exit_request&) { out->lines.push_back(name); }
  };
  struct node : troupe::actor<node, troupe::exit_request, get> {
    log* out;
    std::string name;
    int depth;
    node(log* o, std::string n, int d) : out(o), name(std::move(n)), depth(d) {}
    void on_start() {
      if (depth == 0) return;
      spawn<node>(out, name + ".a", depth - 1);
      spawn<leaf>(out, name + ".b");
    }
    void on(const troupe::exit_request&) { out->lines.push_back(name); }
    int on(const get&) { return depth; }
  };
  troupe::system sys(inline_options());
  log out;
  address root = sys.spawn<node>(&out, std::string("r"), 2);
  sys.run_until_idle();
  CHECK(sys.counters().actors_live == 5);
  sys.tell(root, troupe::exit_request{});
  sys.run_until_idle();
  CHECK(sys.counters().actors_live == 0);
  REQUIRE(out.lines.size() == 5);
  auto pos = [&](const std::string& n) {
    return std::find(out.lines.begin(), out.lines.end(), n) - out.lines.begin();
  };
  CHECK(pos("r.a.a") < pos("r.a"));
  CHECK(pos("r.a.b") < pos("r.a"));
  CHECK(pos("r.a") < pos("r"));
  CHECK(pos("r.b") < pos("r"));
  CHECK(out.lines.back() == "r");
}

TEST_CASE("a parent is told how each child ended", "[engine][supervision][lifecycle]") {
  struct quitter : troupe::actor<quitter, get> {
    int on(const get&) {
      stop();
      return 1;
    }
  };
  struct keeper : troupe::actor<keeper, spawn_worker, children_seen, troupe::child_exited> {
    std::vector<std::string> exits;
    address on(const spawn_worker& m) {
      if (m.where.shard == 9) return spawn<quitter>();
      return spawn<worker>(m.where);
    }
    std::vector<std::string> on(const children_seen&) { return exits; }
    void on(const troupe::child_exited& m) {
      exits.push_back(std::string(troupe::to_string(m.kind)) + " | " + m.reason);
    }
    troupe::supervision_policy supervision() const override {
      return {.on_failure = troupe::directive::stop};
    }
  };
  troupe::system sys(inline_options());
  address k = sys.spawn<keeper>();
  address q = sys.ask<address>(k, spawn_worker{troupe::spawn_options{.shard = 9}}, 1s).value();
  address r = sys.ask<address>(k, spawn_worker{}, 1s).value();
  address f = sys.ask<address>(k, spawn_worker{}, 1s).value();
  CHECK(sys.ask<int>(q, get{}, 1s).value() == 1);
  sys.tell(r, troupe::exit_request{});
  sys.tell(f, fail{});
  sys.run_until_idle();
  auto exits = sys.ask<std::vector<std::string>>(k, children_seen{}, 1s).value();
  REQUIRE(exits.size() == 3);
  CHECK(exits[0] == "normal | stopped");
  CHECK(exits[1] == "requested | exit requested");
  CHECK(exits[2] == "failed | failed: std::runtime_error: told to fail");
  sys.stop();
  auto st = sys.counters();
  CHECK(st.sent == st.delivered + st.dead_letters + st.poisoned);
}

TEST_CASE("a restart stops the children of the failed instance", "[engine][supervision]") {
  struct mid : troupe::actor<mid, spawn_worker, fail> {
    address on(const spawn_worker&) { return spawn<worker>(); }
    void on(const fail&) { throw std::runtime_error("mid fails"); }
  };
  troupe::system sys(inline_options());
  address m = sys.spawn<mid>();
  address w = sys.ask<address>(m, spawn_worker{}, 1s).value();
  REQUIRE(sys.ask<int>(w, get{}, 1s).value() == 0);
  sys.tell(m, fail{});
  sys.run_until_idle();
  CHECK(!sys.ask<int>(w, get{}, 1s));              // the old child is gone
  CHECK(sys.ask<address>(m, spawn_worker{}, 1s));  // the fresh parent works
  CHECK(sys.counters().actors_live == 2);
}

TEST_CASE("coroutine and stackful handlers that throw are restarted too", "[engine][supervision]") {
  struct co_worker : troupe::actor<co_worker, add, get> {
    int total = 0;
    troupe::task<int> on(const add& m) {
      co_await troupe::sleep_for{1ms};
      if (m.n < 0) throw std::runtime_error("negative");
      total += m.n;
      co_return total;
    }
    int on(const get&) { return total; }
  };
  struct fiber_worker : troupe::stackful_actor<fiber_worker, add, get> {
    int total = 0;
    int on(const add& m) {
      if (m.n < 0) throw std::runtime_error("negative on a fiber");
      return total += m.n;
    }
    int on(const get&) { return total; }
  };
  troupe::system sys(inline_options());
  address c = sys.spawn<co_worker>();
  address f = sys.spawn<fiber_worker>();
  for (address a : {c, f}) {
    REQUIRE(sys.ask<int>(a, add{4}, 1s).value() == 4);
    auto r = sys.ask<int>(a, add{-1}, 1s);
    REQUIRE(!r);
    CHECK(r.err().code() == troupe::errc::failed);
    CHECK(sys.ask<int>(a, get{}, 1s).value() == 0);
    CHECK(sys.ask<int>(a, add{2}, 1s).value() == 2);
  }
  CHECK(sys.counters().restarts == 4);
}

TEST_CASE("an actor made from arguments that cannot be copied is stopped, not restarted",
          "[engine][supervision]") {
  struct owner : troupe::actor<owner, fail, get> {
    std::unique_ptr<int> p;
    explicit owner(std::unique_ptr<int> q) : p(std::move(q)) {}
    void on(const fail&) { throw std::runtime_error("owner fails"); }
    int on(const get&) { return *p; }
  };
  troupe::system sys(inline_options());
  address o = sys.spawn<owner>(std::make_unique<int>(3));
  REQUIRE(sys.ask<int>(o, get{}, 1s).value() == 3);
  auto r = sys.ask<troupe::done>(o, fail{}, 1s);
  REQUIRE(!r);
  CHECK(!sys.ask<int>(o, get{}, 1s));
  CHECK(sys.counters().restarts == 0);
}

TEST_CASE("a registered dead-letter handler gets every dead letter", "[engine][dead-letters]") {
  struct sink : troupe::actor<sink, troupe::dead_letter, get> {
    std::vector<std::string> seen;
    void on(const troupe::dead_letter& d) {
      seen.push_back(std::string(troupe::to_string(d.reason)) + " " + d.message.type_name());
    }
    int on(const get&) { return static_cast<int>(seen.size()); }
  };
  troupe::system sys(inline_options());
  address s = sys.spawn<sink>();
  sys.set_dead_letter_handler(s);
  sys.run_until_idle();
  address w = sys.spawn<worker>();
  sys.tell(w, std::string("not a worker message"));
  sys.tell(address(1, 0, 777, 1), add{1});
  sys.run_until_idle();
  CHECK(sys.ask<int>(s, get{}, 1s).value() == 2);
  auto st = sys.counters();
  CHECK(st.dead(troupe::dead_reason::unhandled) == 1);
  CHECK(st.dead(troupe::dead_reason::no_such_actor) == 1);
  sys.set_dead_letter_handler(address{});
  sys.tell(w, std::string("again"));
  sys.run_until_idle();
  CHECK(sys.ask<int>(s, get{}, 1s).value() == 2);  // off again: counted, not forwarded
  CHECK(sys.counters().dead(troupe::dead_reason::unhandled) == 2);
}

TEST_CASE("a bounded mailbox refuses what does not fit, and says so", "[engine][mailbox]") {
  struct flood {
    address to;
    int n;
  };
  struct pusher : troupe::actor<pusher, flood, troupe::undelivered, get> {
    int refused = 0;
    void on(const flood& f) {
      for (int i = 0; i < f.n; ++i) tell(f.to, add{1});
    }
    void on(const troupe::undelivered& u) {
      if (u.reason == troupe::dead_reason::mailbox_full && u.message.is<add>()) ++refused;
    }
    int on(const get&) { return refused; }
  };
  troupe::system sys(inline_options());
  address w = sys.spawn<worker>(troupe::spawn_options{.mailbox_limit = 4});
  address p = sys.spawn<pusher>();
  sys.tell(p, flood{w, 10});  // all ten arrive while the worker has not run yet
  sys.run_until_idle();
  CHECK(sys.ask<int>(w, get{}, 1s).value() == 4);
  CHECK(sys.ask<int>(p, get{}, 1s).value() == 6);
  CHECK(sys.counters().dead(troupe::dead_reason::mailbox_full) == 6);
  // An ask that does not fit fails with that error.
  for (int i = 0; i < 4; ++i) sys.tell(w, add{1});
  sys.tell(w, add{1});
  auto r = sys.ask<int>(w, get{}, 1s);
  REQUIRE(!r);
  CHECK(r.err().code() == troupe::errc::mailbox_full);
  sys.stop();
  auto st = sys.counters();
  CHECK(st.sent == st.delivered + st.dead_letters + st.poisoned);
}

TEST_CASE("fail_with fails the actor without an exception, like a throw", "[engine][supervision]") {
  struct quitter : troupe::actor<quitter, add, get> {
    int total = 0;
    int on(const add& m) {
      if (m.n < 0) {
        fail_with("negative input " + std::to_string(m.n));
        return -1;  // not a reply: the ask fails with the reason
      }
      return total += m.n;
    }
    int on(const get&) { return total; }
  };
  troupe::system sys(inline_options());
  address q = sys.spawn<quitter>();
  REQUIRE(sys.ask<int>(q, add{5}, 1s).value() == 5);
  auto r = sys.ask<int>(q, add{-2}, 1s);
  REQUIRE(!r);
  CHECK(r.err().code() == troupe::errc::failed);
  CHECK(r.err().text().find("negative input -2") != std::string::npos);
  CHECK(sys.ask<int>(q, get{}, 1s).value() == 0);  // restarted
  auto st = sys.counters();
  CHECK(st.restarts == 2);  // the failure and its retry
  CHECK(st.poisoned == 1);
}
