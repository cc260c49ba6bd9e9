#include <troupe/troupe.hpp>

#include <chrono>
#include <iostream>

struct add {
  int n;
};
struct get {};

// An actor: typed handlers, no locks; its state is its own.
struct counter : troupe::actor<counter, add, get> {
  int total = 0;
  void on(const add& m) { total += m.n; }
  int on(const get&) { return total; }  // the reply to an ask
};

int main() {
  troupe::system sys;  // one shard per core
  troupe::address c = sys.spawn<counter>();
  for (int i = 1; i <= 100; ++i) sys.tell(c, add{i});
  auto total = sys.ask<int>(c, get{}, std::chrono::seconds(1));
  std::cout << "total = " << total.value() << "\n";  // 5050
}
