// Membership kept in etcd (engine/etcd_membership.cpp), with a real etcd on
// 127.0.0.1 (tests/support/etcd.hpp), a `troupe serve` engine process, and
// this test process as one more member (a troupe::system).

#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "support/convention.hpp"
#include "support/etcd.hpp"
#include "troupe/convention.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::test::engine_process;
using troupe::test::eventually;
using troupe::test::member_ids;

TEST_CASE("with membership in etcd, troupe serve is listed only once its modules are loaded",
          "[convention][etcd][processes]") {
  troupe::test::etcd_cluster etcd(1);
  troupe::internal::etcd_client client(etcd.endpoints(), 5s);
  troupe::engine_options o = troupe::test::member_options(9, "", {{"zone", "test"}});
  o.convention->membership = etcd.url();
  troupe::system sys(o.core, o.layers());
  REQUIRE(troupe::test::wait_members(sys, {9}, 10s));

  // Engine 5 takes 1.5 s to load its module; it is watched from its start
  // (engine_process would wait until it has joined).
  troupe::test::child_process slow(engine_process::args(
      5, "127.0.0.1:0", etcd.url(), R"({"zone": "slow"})", {"--module", TEST_SLOW_MODULE}));
  const std::string key = "/troupe/troupe/members/5";
  auto listed = [&] {
    auto record = client.get(key);
    const std::vector<std::uint32_t> ids = member_ids(sys);
    return (record && record->has_value()) || std::find(ids.begin(), ids.end(), 5) != ids.end();
  };
  REQUIRE(eventually(listed, 15s, "engine 5 is listed, in etcd or as a member"));
  {
    // Its record in etcd, or this member's view of it, came after the module.
    const std::string out = slow.output();
    INFO(out);
    CHECK(out.find("loaded module 'test.slow'") != std::string::npos);
  }

  // Placed on as soon as it is a member (and linked): it has the type.
  REQUIRE(troupe::test::wait_members(sys, {5, 9}, 10s));
  REQUIRE(troupe::test::wait_linked(sys, {5, 9}, 10s));
  troupe::place_options where;
  where.requirements = {{"zone", "slow"}};
  where.timeout = 5s;
  auto placed = troupe::spawn_placed(sys, "slow.echo", nullptr, where);
  INFO((placed ? std::string() : placed.err().describe()));
  REQUIRE(placed);
  CHECK(placed.value().engine() == 5);

  // It leaves: its record goes with it.
  slow.signal(SIGTERM);
  CHECK(slow.wait_exit(10s));
  auto record = client.get(key);
  REQUIRE(record);
  CHECK_FALSE(record->has_value());
}
