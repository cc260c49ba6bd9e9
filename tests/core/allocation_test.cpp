#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>

#include "troupe/troupe.hpp"

using namespace std::chrono_literals;

// Counts every global allocation made by this test binary (not under
// AddressSanitizer, which must own operator new to check it).
namespace {
std::atomic<long> global_news{0};
}

#if !defined(__SANITIZE_ADDRESS__)
void* operator new(std::size_t n) {
  global_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

struct bump {
  int n;
};
struct total {};

struct summer : troupe::actor<summer, bump, total> {
  long sum = 0;
  void on(const bump& b) { sum += b.n; }
  long on(const total&) { return sum; }
};
struct set_peer {
  troupe::address peer;
};
struct relay : troupe::actor<relay, bump, set_peer> {
  troupe::address to;
  void on(const set_peer& m) { to = m.peer; }
  void on(const bump& b) { tell(to, bump{b.n}); }
};

}  // namespace

TEST_CASE("plain handlers allocate nothing per message once warm", "[engine][alloc]") {
#if defined(__SANITIZE_ADDRESS__)
  WARN(
      "AddressSanitizer build: the envelope pool hands every object to operator new here, "
      "so this build checks only that the messages arrive; the plain build checks the count");
#endif
  troupe::system_options o;
  o.shards = 1;
  troupe::system sys(o);
  troupe::address s = sys.spawn<summer>();
  troupe::address r = sys.spawn<relay>();
  sys.tell(r, set_peer{s});
  struct kick {
    troupe::address r;
    int count;
  };
  struct kicker : troupe::actor<kicker, kick> {
    long on(const kick& k) {
      for (int i = 0; i < k.count; ++i) tell(k.r, bump{1});
      return k.count;
    }
  };
  troupe::address k = sys.spawn<kicker>();
  // The relay's forwards and our ask to the summer come from different
  // senders: wait (bounded) until the summer has seen them all.
  long asks_made = 0;
  auto wait_total = [&](long want) {  // no Catch macro inside: they allocate
    long got = 0;
    for (int i = 0; i < 5000 && got != want; ++i, ++asks_made) {
      got = sys.ask<long>(s, total{}, 5s).value();
    }
    return got;
  };
  // Warm up: the pool fills its magazines, the slot table and queues grow.
  for (long round = 1; round <= 3; ++round) {
    REQUIRE(sys.ask<long>(k, kick{r, 20000}, 5s).value() == 20000);
    REQUIRE(wait_total(20000 * round) == 20000 * round);
  }
  asks_made = 0;
  const long before = global_news.load();
  const long kicked = sys.ask<long>(k, kick{r, 20000}, 5s).value();  // 40,000 handled messages
  const long summed = wait_total(80000);
  const long during = global_news.load() - before;
  REQUIRE(kicked == 20000);
  REQUIRE(summed == 80000);
#if !defined(__SANITIZE_ADDRESS__)
  // The two outside asks and their replies may allocate (waiter table,
  // error strings); 40,000 plain-handler messages may not.
  INFO("global allocations while handling 40,000 messages: " << during);
  CHECK(during < 20);
#else
  CHECK(during >= 0);
#endif
}
