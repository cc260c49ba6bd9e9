#include <catch2/catch.hpp>

#include <unordered_set>

#include "troupe/address.hpp"

using troupe::address;

TEST_CASE("address round-trips through text and bytes", "[engine][address]") {
  const address a(7, 3, 123456, 42);
  CHECK(a.to_string() == "7:3:123456.42");
  auto parsed = address::parse(a.to_string());
  REQUIRE(parsed);
  CHECK(*parsed == a);
  CHECK(address::from_bytes(a.to_bytes()) == a);
}

TEST_CASE("address parsing rejects malformed text", "[engine][address]") {
  for (const char* bad : {"", "1:2:3", "1:2:3.", "a:2:3.4", "1:2:3.4x", "1:70000:3.4", ":2:3.4"}) {
    INFO(bad);
    CHECK_FALSE(address::parse(bad));
  }
}

TEST_CASE("addresses compare and hash by every field", "[engine][address]") {
  const address a(1, 0, 5, 1), b(1, 0, 5, 2), c(1, 1, 5, 1), d(2, 0, 5, 1);
  CHECK(a != b);
  CHECK(a != c);
  CHECK(a != d);
  CHECK(a < b);
  std::unordered_set<address> set{a, b, c, d, a};
  CHECK(set.size() == 4);
  CHECK_FALSE(address{});
  CHECK(a);
}
