#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "server/config.hpp"

using nlohmann::json;
using troupe::serve_config;

namespace {

/// What parse_config says of `text`: "" when it accepts it.
std::string error_of(const std::string& text) {
  std::string error;
  const auto c = troupe::parse_config(json::parse(text), error);
  CHECK(c.has_value() == error.empty());
  return error;
}

serve_config parsed(const std::string& text) {
  std::string error;
  auto c = troupe::parse_config(json::parse(text), error);
  INFO(error);
  REQUIRE(c);
  return *c;
}

/// A file in /tmp with a unique name, removed when this goes.
class temp_file {
 public:
  explicit temp_file(const std::string& contents) {
    std::string name = "/tmp/troupe-config-test-XXXXXX.json";
    const int fd = ::mkstemps(name.data(), 5);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size()));
    ::close(fd);
    path_ = name;
  }
  ~temp_file() { ::unlink(path_.c_str()); }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// What load_config_file says of a file holding `contents`, with the
/// file's name written as FILE.
std::string file_error_of(const std::string& contents) {
  temp_file f(contents);
  std::string error;
  const auto c = troupe::load_config_file(f.path(), error);
  CHECK(!c);
  std::string out = error;
  for (auto at = out.find(f.path()); at != std::string::npos; at = out.find(f.path())) {
    out.replace(at, f.path().size(), "FILE");
  }
  return out;
}

const std::string known_keys =
    "(known keys: shards, io, engine_id, workers, listen, peers, secret_file, convention, "
    "heartbeat_ms, "
    "peer_timeout_ms, log_level, admin, admin_token_file, modules, actors, limits)";

const char* const full_file = R"({
  // Comments are allowed: an operator says why.
  "shards": 4,
  "io": "epoll",
  "engine_id": 7,
  "listen": "0.0.0.0:7000",
  "peers": ["10.0.0.2:7000", "node-3.example.com:7000", "[::1]:7001"],
  "secret_file": "secret",
  "convention": {"name": "prod", "leader": "10.0.0.1:7000", "advertise": "10.0.0.7:7000",
                 "capabilities": {"zone": "ams", "cores": 16}, "module_cache": "cache"},
  "heartbeat_ms": 250,
  "peer_timeout_ms": 2000,
  "log_level": "debug",
  "admin": "127.0.0.1:7800",
  "admin_token_file": "/etc/troupe/admin.token",
  "modules": ["/usr/lib/troupe/kv.so", "modules/echo.so"],
  "actors": [
    {"type": "kv.store", "name": "kv", "shard": 1, "args": {"port": 6379, "dbs": [0, 1]}},
    {"type": "echo"}
  ],
  /* Bounds. */
  "limits": {"max_frame": 1048576, "mailbox_limit": 10000}
})";

}  // namespace

TEST_CASE("a full configuration file sets every key", "[config]") {
  temp_file f(full_file);
  std::string error = "stale";
  const auto c = troupe::load_config_file(f.path(), error);
  INFO(error);
  REQUIRE(c);
  CHECK(error.empty());
  CHECK(c->shards == 4);
  CHECK(c->io == "epoll");
  CHECK(c->engine_id == 7);
  CHECK(c->listen == "0.0.0.0:7000");
  CHECK(c->peers ==
        std::vector<std::string>{"10.0.0.2:7000", "node-3.example.com:7000", "[::1]:7001"});
  // Relative paths are relative to the file's directory, absolute ones stay.
  CHECK(c->secret_file == "/tmp/secret");
  CHECK(c->convention.name == "prod");
  CHECK(c->convention.leader == "10.0.0.1:7000");
  CHECK(c->convention.advertise == "10.0.0.7:7000");
  CHECK(c->convention.capabilities == nlohmann::json{{"zone", "ams"}, {"cores", 16}});
  CHECK(c->convention.module_cache == "/tmp/cache");
  CHECK(c->heartbeat_ms == 250);
  CHECK(c->peer_timeout_ms == 2000);
  CHECK(c->log_level == "debug");
  CHECK(c->admin == "127.0.0.1:7800");
  CHECK(c->admin_token_file == "/etc/troupe/admin.token");
  CHECK(c->modules == std::vector<std::string>{"/usr/lib/troupe/kv.so", "/tmp/modules/echo.so"});
  REQUIRE(c->actors.size() == 2);
  CHECK(c->actors[0].type == "kv.store");
  CHECK(c->actors[0].name == "kv");
  CHECK(c->actors[0].shard == 1u);
  CHECK(c->actors[0].args == json{{"port", 6379}, {"dbs", {0, 1}}});
  CHECK(c->actors[1].type == "echo");
  CHECK(c->actors[1].name.empty());
  CHECK(!c->actors[1].shard);
  CHECK(c->actors[1].args.is_null());
  CHECK(c->limits.max_frame == 1048576);
  CHECK(c->limits.mailbox_limit == 10000);
}

TEST_CASE("an empty object gives the defaults of troupe serve's flags", "[config]") {
  const serve_config c = parsed("{}");
  CHECK(c == serve_config{});
  CHECK(c.shards == 0);
  CHECK(c.io == "auto");
  CHECK(c.engine_id == 1);
  CHECK(c.listen.empty());
  CHECK(c.peers.empty());
  CHECK(c.secret_file.empty());
  CHECK(c.convention.name == "troupe");
  CHECK(c.convention.leader.empty());
  CHECK(c.heartbeat_ms == 500);
  CHECK(c.peer_timeout_ms == 3000);
  CHECK(c.log_level == "info");
  CHECK(c.admin == "127.0.0.1:7700");
  CHECK(c.admin_token_file.empty());
  CHECK(c.modules.empty());
  CHECK(c.actors.empty());
  CHECK(c.limits.max_frame == 16u << 20);
  CHECK(c.limits.mailbox_limit == 0);

  // The engine's own defaults, unchanged.
  const troupe::system_options engine_defaults;
  const troupe::engine_options o = troupe::to_engine_options(c);
  CHECK(o.core.shards == engine_defaults.shards);
  CHECK(o.core.io == engine_defaults.io);
  CHECK(o.core.engine_id == engine_defaults.engine_id);
  // No listen, peers or convention: no links and no convention layer.
  CHECK(!o.links);
  CHECK(!o.convention);
  // With links, the links' own defaults.
  const troupe::link_options link_defaults;
  const troupe::engine_options linked =
      troupe::to_engine_options(parsed(R"({"listen": "127.0.0.1:0"})"));
  REQUIRE(linked.links);
  CHECK(linked.links->convention == link_defaults.convention);
  CHECK(linked.links->heartbeat == link_defaults.heartbeat);
  CHECK(linked.links->peer_timeout == link_defaults.peer_timeout);
  CHECK(linked.links->max_frame == link_defaults.max_frame);
}

TEST_CASE("null turns off listen, admin and the optional files", "[config]") {
  const serve_config c =
      parsed(R"({"listen": null, "admin": null, "secret_file": null, "admin_token_file": null})");
  CHECK(c.listen.empty());
  CHECK(c.admin.empty());
  CHECK(c.secret_file.empty());
  CHECK(c.admin_token_file.empty());
}

TEST_CASE("to_json prints every key in the file's order and reads back equal", "[config]") {
  temp_file f(full_file);
  std::string error;
  const auto full = troupe::load_config_file(f.path(), error);
  REQUIRE(full);
  for (const serve_config& c : {serve_config{}, *full}) {
    const nlohmann::ordered_json printed = troupe::to_json(c);
    std::vector<std::string> keys;
    for (const auto& item : printed.items()) keys.push_back(item.key());
    CHECK(keys == std::vector<std::string>{"shards", "io", "engine_id", "workers", "listen",
                                           "peers", "secret_file", "convention", "heartbeat_ms",
                                           "peer_timeout_ms", "log_level", "admin",
                                           "admin_token_file", "modules", "actors", "limits"});
    // Through text, as `troupe serve --print-config > engine.json` would.
    CHECK(parsed(printed.dump(2)) == c);
  }
  CHECK(
      troupe::to_json(serve_config{}).dump() ==
      R"({"shards":0,"io":"auto","engine_id":1,"workers":0,"listen":null,"peers":[],"secret_file":null,)"
      R"("convention":{"name":"troupe","leader":null,"advertise":null,"capabilities":{},)"
      R"("module_cache":null,"forward_logs":false,"membership":null},"heartbeat_ms":500,"peer_timeout_ms":3000,"log_level":"info",)"
      R"("admin":"127.0.0.1:7700","admin_token_file":null,"modules":[],"actors":[],)"
      R"("limits":{"max_frame":16777216,"mailbox_limit":0}})");
  // An actor prints only what it was given.
  CHECK(troupe::to_json(*full)["actors"].dump() ==
        R"([{"type":"kv.store","name":"kv","shard":1,"args":{"dbs":[0,1],"port":6379}},)"
        R"({"type":"echo"}])");
}

TEST_CASE("an unknown key is named, with the keys that are known", "[config]") {
  CHECK(error_of(R"({"shardz": 2})") ==
        "unknown key 'shardz', did you mean 'shards'? " + known_keys);
  CHECK(error_of(R"({"colour": "blue"})") == "unknown key 'colour' " + known_keys);
  CHECK(error_of(R"({"Shards": 2})") ==
        "unknown key 'Shards', did you mean 'shards'? " + known_keys);
  CHECK(error_of(R"({"actors": [{"type": "a"}, {"type": "b", "nmae": "x"}]})") ==
        "actors[1]: unknown key 'nmae', did you mean 'name'? "
        "(known keys: type, name, shard, args)");
  CHECK(error_of(R"({"limits": {"max_frames": 4096}})") ==
        "limits: unknown key 'max_frames', did you mean 'max_frame'? "
        "(known keys: max_frame, mailbox_limit)");
  CHECK(error_of(R"({"limits": {"queue": 4096}})") ==
        "limits: unknown key 'queue' (known keys: max_frame, mailbox_limit)");
}

TEST_CASE("a value of the wrong type names its key and what was expected", "[config]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"shards": "4"})", R"(shards: expected an integer between 0 and 4096, got "4")"},
      {R"({"shards": 2.0})", R"(shards: expected an integer between 0 and 4096, got 2.0)"},
      {R"({"shards": true})", R"(shards: expected an integer between 0 and 4096, got true)"},
      {R"({"io": 1})", R"(io: expected one of auto, uring, epoll, got 1)"},
      {R"({"engine_id": "1"})",
       R"(engine_id: expected an integer between 1 and 4294967294, got "1")"},
      {R"({"listen": 7000})", R"(listen: expected "host:port", got 7000)"},
      {R"({"peers": "10.0.0.1:7000"})", R"(peers: expected an array, got "10.0.0.1:7000")"},
      {R"({"peers": [7000]})", R"(peers[0]: expected "host:port", got 7000)"},
      {R"({"secret_file": 5})", R"(secret_file: expected a file path or null, got 5)"},
      {R"({"secret_file": ""})", R"(secret_file: expected a file path or null, got "")"},
      {R"({"convention": 7})",
       R"(convention: expected an object such as {"name": "troupe", "leader": "host:port"}, got 7)"},
      {R"({"convention": {"name": ""}})",
       R"(convention.name: expected a string of 1 to 255 bytes, got "")"},
      {R"({"convention": {"leader": "nowhere"}})",
       R"(convention.leader: expected "host:port", got "nowhere")"},
      {R"({"convention": {"capabilities": [1]}})",
       R"(convention.capabilities: expected an object, got [1])"},
      {R"({"convention": {"leader": "127.0.0.1:7000"}})",
       R"(convention.leader: a member of a convention listens for its peers: set listen)"},
      {R"({"listen": "0.0.0.0:7001", "convention": {"leader": "127.0.0.1:7000"}})",
       R"(convention.advertise: needed when listen is "0.0.0.0:7001": the address the other members dial to reach this engine)"},
      {R"({"convention": {"lead": "127.0.0.1:7000"}})",
       R"(convention: unknown key 'lead', did you mean 'leader'? (known keys: name, leader, advertise, capabilities, module_cache, forward_logs, membership))"},
      {R"({"listen": "127.0.0.1:7001", "convention": {"membership": "http://x:1"}})",
       R"(convention.membership: expected "etcd://host:port[,host:port...]", got "http://x:1")"},
      {R"({"heartbeat_ms": "500ms"})",
       R"(heartbeat_ms: expected an integer between 10 and 600000, got "500ms")"},
      {R"({"peer_timeout_ms": null})",
       R"(peer_timeout_ms: expected an integer between 20 and 3600000, got null)"},
      {R"({"log_level": 3})",
       R"(log_level: expected one of trace, debug, info, warn, error, critical, off, got 3)"},
      {R"({"admin": true})", R"(admin: expected "host:port", got true)"},
      {R"({"admin_token_file": []})", R"(admin_token_file: expected a file path or null, got [])"},
      {R"({"modules": "kv.so"})", R"(modules: expected an array, got "kv.so")"},
      {R"({"modules": ["kv.so", ""]})", R"(modules[1]: expected a non-empty string, got "")"},
      {R"({"modules": [{"path": "kv.so"}]})",
       R"(modules[0]: expected a non-empty string, got {"path":"kv.so"})"},
      {R"({"actors": {}})", R"(actors: expected an array, got {})"},
      {R"({"actors": ["kv.store"]})", R"(actors[0]: expected an object, got "kv.store")"},
      {R"({"actors": [{"type": 1}]})", R"(actors[0].type: expected a non-empty string, got 1)"},
      {R"({"actors": [{"type": ""}]})", R"(actors[0].type: expected a non-empty string, got "")"},
      {R"({"actors": [{"type": "a", "name": 2}]})",
       R"(actors[0].name: expected a non-empty string, got 2)"},
      {R"({"actors": [{"type": "a"}, {"type": "a"}, {"type": "a", "shard": "two"}]})",
       R"(actors[2].shard: expected an integer between 0 and 4095, got "two")"},
      {R"({"limits": []})", R"(limits: expected an object, got [])"},
      {R"({"limits": {"max_frame": "16M"}})",
       R"(limits.max_frame: expected an integer between 1024 and 1073741824, got "16M")"},
      {R"({"limits": {"mailbox_limit": false}})",
       R"(limits.mailbox_limit: expected an integer between 0 and 4294967295, got false)"},
  };
  for (const auto& [text, expected] : cases) {
    INFO(text);
    CHECK(error_of(text) == expected);
  }
}

TEST_CASE("a value out of range names the range", "[config]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"shards": 4097})", "shards: expected an integer between 0 and 4096, got 4097"},
      {R"({"shards": -1})", "shards: expected an integer between 0 and 4096, got -1"},
      {R"({"workers": 65})", "workers: expected an integer between 0 and 64, got 65"},
      {R"({"io": "kqueue"})", R"(io: expected one of auto, uring, epoll, got "kqueue")"},
      {R"({"engine_id": 0})", "engine_id: expected an integer between 1 and 4294967294, got 0"},
      {R"({"engine_id": 4294967295})",
       "engine_id: expected an integer between 1 and 4294967294, got 4294967295"},
      {R"({"heartbeat_ms": 9})", "heartbeat_ms: expected an integer between 10 and 600000, got 9"},
      {R"({"peer_timeout_ms": 19})",
       "peer_timeout_ms: expected an integer between 20 and 3600000, got 19"},
      {R"({"peer_timeout_ms": 500})",
       "peer_timeout_ms: expected more than heartbeat_ms (500), "
       "got 500"},
      {R"({"heartbeat_ms": 4000})",
       "peer_timeout_ms: expected more than heartbeat_ms (4000), "
       "got 3000"},
      {R"({"limits": {"max_frame": 12}})",
       "limits.max_frame: expected an integer between 1024 and 1073741824, got 12"},
      {R"({"limits": {"max_frame": 1073741825}})",
       "limits.max_frame: expected an integer between 1024 and 1073741824, got 1073741825"},
      {R"({"limits": {"mailbox_limit": 4294967296}})",
       "limits.mailbox_limit: expected an integer between 0 and 4294967295, got 4294967296"},
      {R"({"actors": [{"type": "a", "shard": -1}]})",
       "actors[0].shard: expected an integer between 0 and 4095, got -1"},
      {R"({"actors": [{"type": "a", "shard": 4096}]})",
       "actors[0].shard: expected an integer between 0 and 4095, got 4096"},
      {R"({"shards": 2, "actors": [{"type": "a", "shard": 1}, {"type": "b", "shard": 2}]})",
       "actors[1].shard: expected a shard below shards (2), got 2"},
      {
          R"({"convention": {"name": ")" + std::string(256, 'c') + R"("}})",
          R"(convention.name: expected a string of 1 to 255 bytes, got ")" + std::string(56, 'c') +
              "...",
      },
  };
  for (const auto& [text, expected] : cases) {
    INFO(text);
    CHECK(error_of(text) == expected);
  }
  // The bounds themselves are valid.
  CHECK(error_of(R"({"shards": 4096, "engine_id": 4294967294, "heartbeat_ms": 10,
                     "peer_timeout_ms": 20, "limits": {"max_frame": 1024,
                     "mailbox_limit": 4294967295}, "actors": [{"type": "a", "shard": 4095}]})")
            .empty());
  CHECK(error_of(R"({"heartbeat_ms": 600000, "peer_timeout_ms": 3600000,
                     "limits": {"max_frame": 1073741824}})")
            .empty());
  // With one shard per core, the engine takes a shard number modulo the count.
  CHECK(error_of(R"({"actors": [{"type": "a", "shard": 100}]})").empty());
}

TEST_CASE("addresses are host:port with a port in range", "[config]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"peers": ["10.0.0.1:7000", "nowhere"]})",
       R"(peers[1]: expected "host:port", got "nowhere")"},
      {R"({"peers": ["node:"]})", R"(peers[0]: expected "host:port", got "node:")"},
      {R"({"peers": [":7000"]})", R"(peers[0]: expected "host:port", got ":7000")"},
      {R"({"peers": ["my host:7000"]})", R"(peers[0]: expected "host:port", got "my host:7000")"},
      {R"({"peers": ["-node:7000"]})", R"(peers[0]: expected "host:port", got "-node:7000")"},
      {R"({"peers": ["node..local:7000"]})",
       R"(peers[0]: expected "host:port", got "node..local:7000")"},
      {R"({"peers": ["10.0.0.300:7000"]})",
       R"(peers[0]: expected "host:port", got "10.0.0.300:7000")"},
      {R"({"peers": ["::1:7000"]})", R"(peers[0]: expected "host:port", got "::1:7000")"},
      {R"({"peers": ["[::g]:7000"]})", R"(peers[0]: expected "host:port", got "[::g]:7000")"},
      {R"({"peers": ["node:+7000"]})", R"(peers[0]: expected "host:port", got "node:+7000")"},
      {R"({"peers": ["node:70000"]})",
       R"(peers[0]: expected a port between 1 and 65535 in "host:port", got "node:70000")"},
      {R"({"peers": ["node:99999999999999999999"]})",
       R"(peers[0]: expected a port between 1 and 65535 in "host:port", )"
       R"(got "node:99999999999999999999")"},
      {R"({"peers": ["node:0"]})",
       R"(peers[0]: expected a port between 1 and 65535 in "host:port", got "node:0")"},
      {R"({"listen": "7000"})", R"(listen: expected "host:port", got "7000")"},
      {R"({"listen": ""})", R"(listen: expected "host:port", got "")"},
      {R"({"listen": "0.0.0.0:65536"})",
       R"(listen: expected a port between 0 and 65535 in "host:port", got "0.0.0.0:65536")"},
      {R"({"admin": "localhost"})", R"(admin: expected "host:port", got "localhost")"},
      {R"({"listen": "127.0.0.1:7700"})",
       R"(admin: "127.0.0.1:7700" takes the port of listen ("127.0.0.1:7700"))"},
      {R"({"listen": "0.0.0.0:7000", "admin": "127.0.0.1:7000"})",
       R"(admin: "127.0.0.1:7000" takes the port of listen ("0.0.0.0:7000"))"},
  };
  for (const auto& [text, expected] : cases) {
    INFO(text);
    CHECK(error_of(text) == expected);
  }
  // Port 0 (any free port) is fine where the engine binds, and twice.
  CHECK(error_of(R"({"listen": "127.0.0.1:0", "admin": "127.0.0.1:0"})").empty());
  CHECK(error_of(R"({"listen": "10.0.0.1:7700"})").empty());
  CHECK(error_of(R"({"peers": ["localhost:1", "a-b.c:65535", "[fe80::1]:7000", "1.2.3.4:80"]})")
            .empty());
}

TEST_CASE("log_level is one of the levels of the logger", "[config]") {
  CHECK(error_of(R"({"log_level": "loud"})") ==
        R"(log_level: expected one of trace, debug, info, warn, error, critical, off, got "loud")");
  CHECK(error_of(R"({"log_level": "INFO"})") ==
        R"(log_level: expected one of trace, debug, info, warn, error, critical, off, got "INFO")");
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    CHECK(parsed(json{{"log_level", level}}.dump()).log_level == level);
  }
}

TEST_CASE("an actor entry needs a type", "[config]") {
  CHECK(error_of(R"({"actors": [{"name": "kv"}]})") == "actors[0]: missing required key 'type'");
  CHECK(error_of(R"({"actors": [{"type": "a"}, {}]})") == "actors[1]: missing required key 'type'");
  // args may be any JSON value, null included.
  const serve_config c = parsed(R"({"actors": [{"type": "a", "args": [1, "two", null]},
                                               {"type": "b", "args": "text"},
                                               {"type": "c", "args": null}]})");
  CHECK(c.actors[0].args == json::array({1, "two", nullptr}));
  CHECK(c.actors[1].args == "text");
  CHECK(c.actors[2].args.is_null());
}

TEST_CASE("a name, a peer or a module listed twice is an error", "[config]") {
  CHECK(error_of(R"({"actors": [{"type": "a", "name": "cache"}, {"type": "b"},
                                {"type": "c", "name": "cache"}]})") ==
        R"(actors[2].name: "cache" is already the name of actors[0])");
  CHECK(error_of(R"({"peers": ["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.1:7000"]})") ==
        R"(peers[2]: "10.0.0.1:7000" is already listed as peers[0])");
  // The index is the file's, even after an element that failed.
  CHECK(error_of(R"({"modules": ["", "a.so", "a.so"]})") ==
        "modules[0]: expected a non-empty string, got \"\"\n"
        R"(modules[2]: "a.so" is already listed as modules[1])");
  // Unnamed actors of one type are many, not duplicates.
  CHECK(error_of(R"({"actors": [{"type": "a"}, {"type": "a"}]})").empty());
}

TEST_CASE("the top level must be an object", "[config]") {
  CHECK(error_of("[]") == "expected a JSON object at the top level, got []");
  CHECK(error_of(R"("engine")") == R"(expected a JSON object at the top level, got "engine")");
  CHECK(error_of("null") == "expected a JSON object at the top level, got null");
  CHECK(error_of("5") == "expected a JSON object at the top level, got 5");
}

TEST_CASE("every problem is reported, one line each", "[config]") {
  CHECK(error_of(R"({"shardz": 1, "io": "fast", "peers": ["a:1", "b"],
                     "actors": [{"name": "x", "shard": "two"}], "limits": {"max_frame": 1}})") ==
        "unknown key 'shardz', did you mean 'shards'? " + known_keys +
            "\n"
            R"(io: expected one of auto, uring, epoll, got "fast")"
            "\n"
            R"(peers[1]: expected "host:port", got "b")"
            "\n"
            "actors[0]: missing required key 'type'\n"
            R"(actors[0].shard: expected an integer between 0 and 4095, got "two")"
            "\n"
            "limits.max_frame: expected an integer between 1024 and 1073741824, got 1");
}

TEST_CASE("load_config_file names the file on every line", "[config]") {
  CHECK(file_error_of(R"({"shards": 2, "engine_id": 0, "nope": 1})") ==
        "FILE: unknown key 'nope' " + known_keys +
            "\n"
            "FILE: engine_id: expected an integer between 1 and 4294967294, got 0");
  CHECK(file_error_of(
            R"({"actors": [{"type": "a"}, {"type": "b"}, {"type": "c", "shard": "two"}]})") ==
        R"(FILE: actors[2].shard: expected an integer between 0 and 4095, got "two")");
  CHECK(file_error_of("[1, 2]") == "FILE: expected a JSON object at the top level, got [1,2]");
}

TEST_CASE("a JSON syntax error gives the file, byte, line and column", "[config]") {
  CHECK(file_error_of("{\n  \"shards\": 2,\n  \"io\" \"epoll\"\n}\n") ==
        "FILE: invalid JSON at byte 31, line 3, column 14: syntax error while parsing object "
        "separator - unexpected string literal; expected ':'");
  CHECK(file_error_of("{\"shards\": 2,}") ==
        "FILE: invalid JSON at byte 14, line 1, column 14: syntax error while parsing object key "
        "- unexpected '}'; expected string literal");
  CHECK(file_error_of("") ==
        "FILE: invalid JSON at byte 1, line 1, column 1: syntax error while parsing value - "
        "unexpected end of input; expected '[', '{', or a literal");
}

TEST_CASE("a key given twice in one object is an error", "[config]") {
  CHECK(file_error_of(R"({"shards": 2, "shards": 3})") == "FILE: duplicate key 'shards'");
  CHECK(file_error_of(R"({"actors": [{"type": "a"}, {"type": "b", "type": "c"}]})") ==
        "FILE: actors[1]: duplicate key 'type'");
  CHECK(file_error_of(R"({"limits": {"max_frame": 2048, "max_frame": 4096}, "x": 1})") ==
        "FILE: limits: duplicate key 'max_frame'\nFILE: unknown key 'x' " + known_keys);
  // The same key in different objects is no duplicate.
  temp_file f(R"({"actors": [{"type": "a"}, {"type": "b", "args": {"type": 1}}]})");
  std::string error;
  CHECK(troupe::load_config_file(f.path(), error));
  CHECK(error.empty());
}

TEST_CASE("an unreadable configuration file is named with the reason", "[config]") {
  std::string error;
  const std::string missing = "/tmp/troupe-config-test-" + std::to_string(::getpid()) + "-absent";
  CHECK(!troupe::load_config_file(missing, error));
  CHECK(error == missing + ": cannot be read: No such file or directory");
  CHECK(!troupe::load_config_file("/tmp", error));
  CHECK(error == "/tmp: cannot be read: it is a directory");
}

TEST_CASE("flags override the file, and a list given by flags replaces the file's", "[config]") {
  serve_config c = parsed(R"({"shards": 4, "io": "epoll", "peers": ["10.0.0.2:7000"],
                              "modules": ["a.so", "b.so"], "heartbeat_ms": 250,
                              "limits": {"mailbox_limit": 100}})");
  troupe::serve_overrides flags;
  flags.shards = 2;
  flags.peers = std::vector<std::string>{"10.0.0.3:7000", "10.0.0.4:7000"};
  flags.modules = std::vector<std::string>{"c.so"};
  flags.max_frame = 4096;
  flags.log_level = "warn";
  flags.admin = "";  // an empty flag turns the admin endpoint off
  troupe::apply_overrides(c, flags);
  CHECK(c.shards == 2);
  CHECK(c.io == "epoll");  // not given: the file's
  CHECK(c.heartbeat_ms == 250);
  CHECK(c.peers == std::vector<std::string>{"10.0.0.3:7000", "10.0.0.4:7000"});
  CHECK(c.modules == std::vector<std::string>{"c.so"});
  CHECK(c.limits.max_frame == 4096);
  CHECK(c.limits.mailbox_limit == 100);
  CHECK(c.log_level == "warn");
  CHECK(c.admin.empty());
  CHECK(troupe::validate_config(c).empty());

  // No flags: nothing changes.
  const serve_config before = c;
  troupe::apply_overrides(c, troupe::serve_overrides{});
  CHECK(c == before);
}

TEST_CASE("validate_config checks values set in code with the file's messages", "[config]") {
  CHECK(troupe::validate_config(serve_config{}).empty());

  serve_config c;
  troupe::serve_overrides flags;
  flags.heartbeat_ms = 5000;  // each flag fine alone, not with the file's peer timeout
  troupe::apply_overrides(c, flags);
  CHECK(troupe::validate_config(c) ==
        "peer_timeout_ms: expected more than heartbeat_ms (5000), "
        "got 3000");

  c = serve_config{};
  c.io = "fast";
  c.shards = 5000;
  c.listen = "7000";
  c.actors.push_back({"", "", std::nullopt, {}});
  CHECK(troupe::validate_config(c) ==
        "shards: expected an integer between 0 and 4096, got 5000\n"
        R"(io: expected one of auto, uring, epoll, got "fast")"
        "\n"
        R"(listen: expected "host:port", got "7000")"
        "\n"
        R"(actors[0].type: expected a non-empty string, got "")");
}

TEST_CASE("to_engine_options carries the engine's settings to each layer", "[config]") {
  const serve_config c = parsed(R"({"shards": 3, "io": "uring", "engine_id": 9,
                                    "listen": "127.0.0.1:0", "peers": ["127.0.0.1:7001"],
                                    "convention": {"name": "test", "leader": "127.0.0.1:7000",
                                                   "capabilities": {"gpu": true}},
                                    "heartbeat_ms": 100,
                                    "peer_timeout_ms": 900, "secret_file": "/etc/secret",
                                    "limits": {"max_frame": 65536}})");
  const troupe::engine_options o = troupe::to_engine_options(c);
  CHECK(o.core.shards == 3);
  CHECK(o.core.io == troupe::io::backend_choice::uring);
  CHECK(o.core.engine_id == 9);
  REQUIRE(o.links);
  CHECK(o.links->listen == "127.0.0.1:0");
  CHECK(o.links->peers == std::vector<std::string>{"127.0.0.1:7001"});
  CHECK(o.links->convention == "test");
  CHECK(o.links->heartbeat == std::chrono::milliseconds(100));
  CHECK(o.links->peer_timeout == std::chrono::milliseconds(900));
  CHECK(o.links->max_frame == 65536);
  CHECK(o.links->secret.empty());  // the caller reads secret_file
  REQUIRE(o.convention);
  CHECK(o.convention->leader == "127.0.0.1:7000");
  CHECK(o.convention->capabilities == nlohmann::json{{"gpu", true}});
  CHECK(o.layers().size() == 2);
  CHECK(troupe::to_engine_options(parsed(R"({"io": "epoll"})")).core.io ==
        troupe::io::backend_choice::epoll);
}
