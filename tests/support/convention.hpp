#pragma once
// Test helper: a convention of engines on 127.0.0.1 — `troupe serve`
// processes (ended by their PID), the troupe CLI against their admin
// endpoints, and what a troupe::system in the test process sees of its
// convention. For the tests built into troupe_tests (TROUPE_BINARY).

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "server/config.hpp"
#include "support/eventually.hpp"
#include "support/ports.hpp"
#include "support/process.hpp"
#include "troupe/convention.hpp"
#include "troupe/remote.hpp"
#include "troupe/troupe.hpp"

namespace troupe::test {

/// A `troupe serve` engine of a convention (one shard, heartbeats every
/// 100 ms, peers lost after 1 s), and its admin endpoint. `leader` is the
/// leader's "host:port", or an etcd URL (etcd://...) to keep the
/// membership there; `extra` flags follow (a --peer-timeout among them
/// replaces the 1 s). The constructor returns once the engine says it
/// joins the convention (with etcd, its record follows a moment later).
struct engine_process {
  child_process proc;
  std::string admin;  ///< "127.0.0.1:PORT"

  engine_process(std::uint32_t id, const std::string& listen, const std::string& leader,
                 const std::string& capabilities, std::vector<std::string> extra = {})
      : proc(args(id, listen, leader, capabilities, std::move(extra))) {
    using namespace std::chrono_literals;
    REQUIRE(proc.wait_for_output("admin endpoint on http://", 10s));
    REQUIRE(proc.wait_for_output("the convention", 10s));
    std::smatch m;
    const std::string out = proc.output();
    REQUIRE(std::regex_search(out, m, std::regex("admin endpoint on http://([0-9.]+:[0-9]+)")));
    admin = m[1];
  }

  static std::vector<std::string> args(std::uint32_t id, const std::string& listen,
                                       const std::string& leader, const std::string& caps,
                                       std::vector<std::string> extra) {
    const std::string flag = leader.starts_with("etcd://") ? "--membership" : "--convention";
    std::vector<std::string> a = {
        TROUPE_BINARY, "serve",       "--shards",    "1",    "--engine-id",    std::to_string(id),
        "--listen",    listen,        flag,          leader, "--capabilities", caps,
        "--admin",     "127.0.0.1:0", "--heartbeat", "100"};
    if (std::find(extra.begin(), extra.end(), "--peer-timeout") == extra.end()) {
      a.insert(a.end(), {"--peer-timeout", "1000"});
    }
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

/// Runs the troupe CLI (bounded: 20 s); its exit code (-1: it did not end)
/// and its output.
inline std::pair<int, std::string> cli(std::vector<std::string> args) {
  args.insert(args.begin(), TROUPE_BINARY);
  child_process p(std::move(args));
  auto status = p.wait_exit(std::chrono::seconds(20));
  return {status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.output()};
}

/// The engines the engine behind `admin` ("host:port") has links up to,
/// sorted (its `troupe status --json`); empty if it cannot tell.
inline std::vector<std::uint32_t> peers_of(const std::string& admin) {
  auto [code, out] = cli({"status", "--admin", admin, "--json"});
  std::vector<std::uint32_t> ids;
  if (code != 0) return ids;
  const auto j = nlohmann::json::parse(out, nullptr, false);
  if (!j.is_object() || !j.contains("peers") || !j["peers"].is_array()) return ids;
  for (const auto& e : j["peers"]) {
    if (e.is_number_unsigned()) ids.push_back(e.get<std::uint32_t>());
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

/// Options for a troupe::system that is one more member of the convention
/// led at `leader`: two shards, links on a free port, the timings of
/// engine_process, and its load told every 100 ms. For a convention kept
/// in etcd, pass an empty leader and set `membership`.
/// Start it with `troupe::system sys(o.core, o.layers());`.
inline engine_options member_options(std::uint32_t id, const std::string& leader,
                                     nlohmann::json caps) {
  using namespace std::chrono_literals;
  engine_options o;
  o.core.engine_id = id;
  o.core.shards = 2;
  o.links = link_options{.listen = "127.0.0.1:0", .heartbeat = 100ms, .peer_timeout = 1s};
  o.convention =
      convention_options{.leader = leader, .capabilities = std::move(caps), .load_every = 100ms};
  return o;
}

/// The engines `sys` counts as members (itself too), sorted; empty if it
/// cannot tell.
inline std::vector<std::uint32_t> member_ids(troupe::system& sys) {
  std::vector<std::uint32_t> ids;
  if (auto m = troupe::members(sys); m) {
    for (const auto& one : m.value()) ids.push_back(one.engine);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

/// "{1, 2, 9}": engine ids for a failure's text.
inline std::string ids_text(const std::vector<std::uint32_t>& ids) {
  std::string s = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "}";
}

/// Waits (bounded) until `sys` counts exactly `want` as members.
inline bool wait_members(troupe::system& sys, const std::vector<std::uint32_t>& want,
                         std::chrono::milliseconds limit) {
  return eventually(
      [&] { return member_ids(sys) == want; }, limit,
      "engine " + std::to_string(sys.engine_id()) + " counts the members " + ids_text(want));
}

/// Waits (bounded) until `sys` has links up to exactly these engines (and
/// itself, which `want` lists too).
inline bool wait_linked(troupe::system& sys, const std::vector<std::uint32_t>& want,
                        std::chrono::milliseconds limit) {
  return eventually(
      [&] { return sys.engines() == want; }, limit,
      "engine " + std::to_string(sys.engine_id()) + " is linked to " + ids_text(want));
}

/// Waits (bounded) until `sys` counts exactly `want` as members and has
/// links up to each of them.
inline bool wait_members_linked(troupe::system& sys, const std::vector<std::uint32_t>& want,
                                std::chrono::milliseconds limit) {
  return eventually(
      [&] { return member_ids(sys) == want && sys.engines() == want; }, limit,
      "engine " + std::to_string(sys.engine_id()) + " counts and is linked to " + ids_text(want));
}

}  // namespace troupe::test
