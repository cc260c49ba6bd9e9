// The key-value server as an actor module, loaded by `troupe serve` from its
// configuration file and driven by redis-cli.

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "kv_client.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;
using troupe::test::child_process;

namespace {

std::string cli_output(const std::string& cli, const std::string& port,
                       std::vector<std::string> args) {
  args.insert(args.begin(), {cli, "-p", port});
  child_process p(args);
  auto status = p.wait_exit(20s);
  return status ? p.output() : "(redis-cli did not end)";
}

}  // namespace

TEST_CASE("troupe serve runs the kv module from its configuration and redis-cli talks to it",
          "[kv][module]") {
  const std::string cli = troupe::kv::test::redis_cli_path();
  if (cli.empty()) FAIL("redis-cli is not installed: run scripts/setup.sh (redis-tools)");
  const std::string config = "/tmp/troupe-kv-module-" + std::to_string(getpid()) + ".json";
  std::ofstream(config) << R"({"shards": 2, "admin": null, "modules": [")" << KV_MODULE
                        << R"("], "actors": [{"type": "kv.server", "name": "kv",
                                              "args": {"port": 0}}]})";
  child_process serve({TROUPE_BINARY, "serve", "--config", config});
  REQUIRE(serve.wait_for_output("kv listening on 127.0.0.1:", 10s));
  const std::string out = serve.output();
  const auto at = out.find("kv listening on 127.0.0.1:") + 26;
  const std::string port = out.substr(at, out.find_first_not_of("0123456789", at) - at);
  CHECK(cli_output(cli, port, {"ping"}) == "PONG\n");
  CHECK(cli_output(cli, port, {"set", "greeting", "hello"}) == "OK\n");
  CHECK(cli_output(cli, port, {"get", "greeting"}) == "hello\n");
  CHECK(cli_output(cli, port, {"incrby", "n", "41"}) == "41\n");
  CHECK(cli_output(cli, port, {"dbsize"}) == "2\n");
  serve.signal(SIGTERM);
  auto status = serve.wait_exit(20s);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);
  std::remove(config.c_str());

  // Bad arguments for the actor are named, and the engine serves on.
  std::ofstream(config) << R"({"shards": 1, "admin": null, "modules": [")" << KV_MODULE
                        << R"("], "actors": [{"type": "kv.server", "args": {"port": "six"}}]})";
  child_process bad({TROUPE_BINARY, "serve", "--config", config});
  CHECK(bad.wait_for_output(
      "cannot spawn kv.server: cannot make a 'kv.server': kv.server: args.port: expected", 10s));
  bad.signal(SIGTERM);
  auto bad_status = bad.wait_exit(20s);
  REQUIRE(bad_status);
  CHECK(WEXITSTATUS(*bad_status) == 0);
  std::remove(config.c_str());
}
