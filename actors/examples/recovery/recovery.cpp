#include <troupe/troupe.hpp>

#include <chrono>
#include <iostream>
#include <stdexcept>

using namespace std::chrono_literals;

struct parse {
  std::string text;
};
struct spawn_parser {};

// Throws on bad input; its state (`parsed`) starts again from zero when it is restarted.
struct parser : troupe::actor<parser, parse> {
  int parsed = 0;
  int on(const parse& m) {
    if (m.text.empty()) throw std::invalid_argument("empty input");
    return ++parsed;
  }
};

// The parent decides: restart a failed child, at most 3 times a second, 10 ms apart
// and doubling; past that the child ends and the parent is told why.
struct keeper : troupe::actor<keeper, spawn_parser, troupe::child_exited> {
  troupe::supervision_policy supervision() const override {
    return {.max_restarts = 3, .within = 1s, .backoff = 10ms, .backoff_max = 100ms};
  }
  troupe::address on(const spawn_parser&) { return spawn<parser>(); }
  void on(const troupe::child_exited& m) { std::cout << "child ended: " << m.reason << "\n"; }
};

int main() {
  troupe::system sys;
  troupe::address k = sys.spawn<keeper>();
  troupe::address p = sys.ask<troupe::address>(k, spawn_parser{}, 1s).value();
  std::cout << sys.ask<int>(p, parse{"a"}, 1s).value() << "\n";  // 1
  auto bad = sys.ask<int>(p, parse{""}, 1s);  // fails, is retried once, fails: poison
  std::cout << bad.err().describe()
            << "\n";  // failed: actor ... std::invalid_argument: empty input
  std::cout << sys.ask<int>(p, parse{"b"}, 1s).value() << "\n";  // 1: same address, fresh state
  std::cout << "restarts: " << sys.counters().restarts << "\n";  // 2
}
