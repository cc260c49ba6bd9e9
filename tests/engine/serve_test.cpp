#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <thread>

#include "support/process.hpp"
#include "support/seccomp.hpp"

using namespace std::chrono_literals;
using troupe::test::child_process;

TEST_CASE("troupe serve runs until SIGTERM, then stops cleanly and logs its totals",
          "[binary][serve]") {
  child_process p({TROUPE_BINARY, "serve", "--shards", "2"});
  REQUIRE(p.wait_for_output("serving", 10s));
  p.signal(SIGTERM);
  auto status = p.wait_exit(20s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(p.output().find("received SIGTERM") != std::string::npos);
  CHECK(p.output().find("totals:") != std::string::npos);
}

TEST_CASE("an idle troupe serve sleeps: its shards use no CPU", "[binary][serve][idle]") {
  child_process p({TROUPE_BINARY, "serve", "--shards", "2"});
  REQUIRE(p.wait_for_output("serving", 10s));
  std::this_thread::sleep_for(200ms);  // past start-up
  const long before = p.cpu_ticks();
  std::this_thread::sleep_for(2s);
  const long used = p.cpu_ticks() - before;
  const long ticks_per_s = sysconf(_SC_CLK_TCK);
  INFO("CPU ticks used in 2s idle: " << used << " (" << ticks_per_s << " ticks/s)");
  // 2 s of two spinning shards would be 4 s of CPU; a sleeping engine uses
  // none. Allow 2% of one core for scheduler noise on a shared machine.
  CHECK(used <= ticks_per_s * 2 / 50);
  p.signal(SIGINT);
  auto status = p.wait_exit(20s);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE("troupe serve --io=uring without io_uring fails with what failed and what to do",
          "[binary][serve][probe]") {
  child_process p({TROUPE_BINARY, "serve", "--io", "uring"},
                  [] { troupe::test::forbid_io_uring(); });
  auto status = p.wait_exit(20s);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 1);
  const std::string out = p.output();
  INFO(out);
  CHECK(out.find("cannot start the engine: io_uring_setup failed: Operation not permitted") !=
        std::string::npos);
  CHECK(out.find("--io=epoll") != std::string::npos);
}

TEST_CASE("troupe serve without io_uring falls back to epoll and says why",
          "[binary][serve][probe]") {
  child_process p({TROUPE_BINARY, "serve", "--shards", "1"},
                  [] { troupe::test::forbid_io_uring(); });
  REQUIRE(p.wait_for_output("serving", 10s));
  CHECK(p.output().find("io epoll (fallback: io_uring_setup failed") != std::string::npos);
  p.signal(SIGTERM);
  auto status = p.wait_exit(20s);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE("troupe rejects bad arguments with a message that names them", "[binary][cli]") {
  {
    child_process p({TROUPE_BINARY, "serve", "--shards", "lots"});
    auto status = p.wait_exit(10s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) != 0);
    CHECK(p.output().find("--shards") != std::string::npos);
  }
  {
    child_process p({TROUPE_BINARY, "serve", "--io", "kqueue"});
    auto status = p.wait_exit(10s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) != 0);
    CHECK(p.output().find("--io") != std::string::npos);
  }
  {
    child_process p({TROUPE_BINARY, "frobnicate"});
    auto status = p.wait_exit(10s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) != 0);
    CHECK(p.output().find("frobnicate") != std::string::npos);
  }
}
