// Actor modules: real .so files built by the project, loaded with dlopen.

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "troupe/troupe.hpp"

using namespace std::chrono_literals;

namespace {

troupe::system_options two_shards() {
  troupe::system_options o;
  o.shards = 2;
  return o;
}

}  // namespace

TEST_CASE(
    "a module loads, its actor type spawns by name, and it unloads only when asked to stop "
    "its actors",
    "[module]") {
  troupe::system sys(two_shards());
  auto info = sys.load_module(TEST_GOOD_MODULE);
  REQUIRE(info);
  CHECK(info.value().name == "test.good");
  CHECK(info.value().actor_types == std::vector<std::string>{"good.shout"});
  CHECK(info.value().message_types == std::vector<std::string>{"good.ping"});
  REQUIRE(troupe::system::modules().size() == 1);

  auto a = sys.spawn_on(sys.engine_id(), "good.shout", troupe::spawn_options{.shard = 1});
  REQUIRE(a);
  auto r = sys.ask<std::string>(a.value(), std::string("hello"), 5s);
  REQUIRE(r);
  CHECK(r.value() == "HELLO");

  auto refused = sys.unload_module("test.good");
  REQUIRE(!refused);
  CHECK(refused.err().text() ==
        "module 'test.good' has 1 live actors; unload with stop to end them first");
  // Still there and working.
  CHECK(sys.ask<std::string>(a.value(), std::string("again"), 5s).value() == "AGAIN");

  REQUIRE(sys.unload_module("test.good", true));
  CHECK(troupe::system::modules().empty());
  auto gone = sys.spawn_on(sys.engine_id(), "good.shout");
  REQUIRE(!gone);
  CHECK(gone.err().code() == troupe::errc::not_found);
  CHECK(!sys.ask<std::string>(a.value(), std::string("x"), 1s));  // its actor ended

  // Loaded again, it works again.
  REQUIRE(sys.load_module(TEST_GOOD_MODULE));
  auto b = sys.spawn_on(sys.engine_id(), "good.shout");
  REQUIRE(b);
  CHECK(sys.ask<std::string>(b.value(), std::string("back"), 5s).value() == "BACK");
  REQUIRE(sys.unload_module("test.good", true));
}

TEST_CASE("bad module files are refused with the file and the cause, and the engine goes on",
          "[module]") {
  troupe::system sys(two_shards());
  auto error_of = [&](const std::string& path) {
    auto r = sys.load_module(path);
    return r ? std::string("loaded") : r.err().text();
  };
  CHECK(error_of("/nonexistent/x.so") == "module /nonexistent/x.so: cannot be read: no such file");
  const std::string not_so = error_of(TEST_NOT_A_MODULE);
  CHECK(not_so.rfind(
            std::string("module ") + TEST_NOT_A_MODULE + ": not a loadable shared object: ", 0) ==
        0);
  CHECK(error_of(TEST_NO_ENTRY_MODULE)
            .find(": not a troupe module: it has no troupe_module_v1 entry point") !=
        std::string::npos);
  CHECK(error_of(TEST_BAD_ABI_MODULE).find(": built for module ABI 99, this engine loads ABI 2") !=
        std::string::npos);

  // A module whose type name is taken is refused whole: none of its types
  // is registered.
  REQUIRE(sys.load_module(TEST_GOOD_MODULE));
  CHECK(error_of(TEST_DUP_MODULE).find(": actor type name 'good.shout' is already registered") !=
        std::string::npos);
  CHECK(!sys.spawn_on(sys.engine_id(), "dup.other"));
  CHECK(error_of(TEST_GOOD_MODULE).find("already loaded as module 'test.good'") !=
        std::string::npos);
  CHECK(troupe::system::modules().size() == 1);
  // The engine still runs the module it has.
  auto a = sys.spawn_on(sys.engine_id(), "good.shout");
  REQUIRE(a);
  CHECK(sys.ask<std::string>(a.value(), std::string("fine"), 5s).value() == "FINE");
  REQUIRE(sys.unload_module("test.good", true));
  CHECK(sys.unload_module("test.good").err().text() == "no module named 'test.good' is loaded");
}
