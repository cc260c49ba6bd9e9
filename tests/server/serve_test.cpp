#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
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

namespace {

/// The port a `troupe serve --listen HOST:0` engine logged.
std::string logged_port(const child_process& p) {
  const std::string out = p.output();
  const std::string key = "listening for peer engines on port ";
  const auto at = out.find(key);
  if (at == std::string::npos) return {};
  const auto start = at + key.size();
  return out.substr(start, out.find_first_not_of("0123456789", start) - start);
}

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = "/tmp/troupe-serve-test-" + std::to_string(getpid()) + "-" + name;
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(text.c_str(), f);
  std::fclose(f);
  return path;
}

}  // namespace

TEST_CASE("two troupe serve engines link with a shared secret; a third with another is refused",
          "[binary][serve][link]") {
  const std::string good = write_file("good", "correct horse battery staple\n");
  const std::string bad = write_file("bad", "something else\n");
  // Two shards each: two connections, each through the handshake and proof.
  child_process a({TROUPE_BINARY, "serve", "--shards", "2", "--engine-id", "1", "--listen", "0",
                   "--secret-file", good, "--heartbeat", "100", "--peer-timeout", "1000"});
  REQUIRE(a.wait_for_output("listening for peer engines on port", 10s));
  const std::string port = logged_port(a);
  REQUIRE_FALSE(port.empty());
  child_process b({TROUPE_BINARY, "serve", "--shards", "2", "--engine-id", "2", "--peer",
                   "127.0.0.1:" + port, "--secret-file", good, "--heartbeat", "100",
                   "--peer-timeout", "1000"});
  CHECK(b.wait_for_output("link to engine 1 (127.0.0.1:" + port + ") is up (2 connections)", 10s));
  CHECK(a.wait_for_output("link to engine 2 (accepted) is up (2 connections)", 10s));
  child_process c({TROUPE_BINARY, "serve", "--shards", "1", "--engine-id", "3", "--peer",
                   "127.0.0.1:" + port, "--secret-file", bad});
  CHECK(a.wait_for_output("wrong secret", 10s));
  // B is killed; A closes its link and keeps serving.
  b.signal(SIGKILL);
  CHECK(a.wait_for_output("link to engine 2 (accepted) closed", 10s));
  for (child_process* p : {&c, &a}) {
    p->signal(SIGTERM);
    auto status = p->wait_exit(20s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 0);
  }
  std::remove(good.c_str());
  std::remove(bad.c_str());
}

TEST_CASE("troupe serve names a bad peer flag and an empty secret file, and exits",
          "[binary][serve]") {
  {
    child_process p({TROUPE_BINARY, "serve", "--peer", "nowhere"});
    auto status = p.wait_exit(20s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) != 0);
    CHECK(p.output().find("peers[0]: expected \"host:port\", got \"nowhere\"") !=
          std::string::npos);
  }
  {
    const std::string empty = write_file("empty", "");
    child_process p({TROUPE_BINARY, "serve", "--secret-file", empty});
    auto status = p.wait_exit(20s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 2);
    CHECK(p.output().find("the file is empty") != std::string::npos);
    std::remove(empty.c_str());
  }
  {
    child_process p({TROUPE_BINARY, "serve", "--heartbeat", "500", "--peer-timeout", "400"});
    auto status = p.wait_exit(20s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 2);
    CHECK(p.output().find("peer_timeout_ms: expected more than heartbeat_ms (500), got 400") !=
          std::string::npos);
  }
}

TEST_CASE("troupe serve loads the modules it is given and names the ones it cannot load",
          "[binary][serve][module]") {
  child_process p({TROUPE_BINARY, "serve", "--shards", "1", "--module", TEST_GOOD_MODULE,
                   "--module", TEST_NOT_A_MODULE, "--module", TEST_NO_ENTRY_MODULE});
  REQUIRE(p.wait_for_output("serving", 10s));
  CHECK(p.wait_for_output("loaded module 'test.good'", 10s));
  CHECK(p.wait_for_output(
      std::string("module ") + TEST_NOT_A_MODULE + ": not a loadable shared object", 10s));
  CHECK(p.wait_for_output("no troupe_module_v1 entry point", 10s));
  p.signal(SIGTERM);
  auto status = p.wait_exit(20s);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE(
    "troupe serve --config loads modules and spawns actors; a bad file names its key and exits",
    "[binary][serve][config]") {
  const std::string good = write_file("config.json", std::string(R"({
    "shards": 2,
    "modules": [")") + TEST_GOOD_MODULE + R"("],
    "actors": [{"type": "good.shout", "name": "loud", "shard": 1},
               {"type": "good.shout", "args": {"unexpected": true}}]
  })");
  {
    child_process p({TROUPE_BINARY, "serve", "--config", good});
    REQUIRE(p.wait_for_output("serving", 10s));
    CHECK(p.wait_for_output("loaded module 'test.good'", 10s));
    CHECK(p.wait_for_output("spawned good.shout 'loud' at 1:1:", 10s));
    CHECK(
        p.wait_for_output("cannot spawn good.shout: cannot make a 'good.shout': it takes no "
                          "arguments",
                          10s));
    p.signal(SIGTERM);
    auto status = p.wait_exit(20s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 0);
  }
  {  // --print-config shows flags over the file
    child_process p({TROUPE_BINARY, "serve", "--config", good, "--shards", "3", "--print-config"});
    auto status = p.wait_exit(20s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK(p.output().find("\"shards\": 3") != std::string::npos);
  }
  const std::string bad = write_file("bad.json", R"({"shards": "two", "limits": {"mailbox": 1}})");
  child_process p({TROUPE_BINARY, "serve", "--config", bad});
  auto status = p.wait_exit(20s);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 2);
  CHECK(p.output().find(bad + ": shards: expected") != std::string::npos);
  CHECK(p.output().find(bad + ": limits: unknown key 'mailbox'") != std::string::npos);
  std::remove(good.c_str());
  std::remove(bad.c_str());
}
