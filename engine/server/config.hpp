#pragma once
// The configuration file of `troupe serve` (--config engine.json).
//
// One JSON object; every key is optional and every unknown key, wrong type
// or bad value is an error that names its key path:
//
//   {
//     "shards": 0, "io": "auto", "engine_id": 1, "workers": 0,
//     "listen": "0.0.0.0:7000", "peers": ["10.0.0.2:7000"],
//     "secret_file": "secret",
//     "convention": {"name": "troupe", "leader": "10.0.0.1:7000", "advertise": null,
//                    "capabilities": {"zone": "ams"}, "module_cache": null},
//     "heartbeat_ms": 500, "peer_timeout_ms": 3000, "log_level": "info",
//     "admin": "127.0.0.1:7700", "admin_token_file": null,
//     "modules": ["kv.so"],
//     "actors": [{"type": "kv.store", "name": "kv", "shard": 0, "args": {"port": 6379}}],
//     "limits": {"max_frame": 16777216, "mailbox_limit": 0}
//   }

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <memory>

#include "troupe/convention.hpp"
#include "troupe/remote.hpp"
#include "troupe/system.hpp"

namespace troupe {

/// An actor that `troupe serve` spawns at start, from a module's registered
/// type.
struct actor_spec {
  /// The registered actor type; never empty.
  std::string type;
  /// Spawn by name (one actor of that name in the convention); empty: unnamed.
  std::string name{};
  /// Exactly this shard; none: the engine places it.
  std::optional<unsigned> shard{};
  /// Handed to the actor type's factory as it is; null when not given.
  nlohmann::json args{};

  friend bool operator==(const actor_spec&, const actor_spec&) = default;
};

/// This engine's place in a convention of engines (troupe/convention.hpp).
struct convention_config {
  /// Engines link only within one convention of this name. 1..255 bytes.
  std::string name = "troupe";
  /// "host:port" of the leader's links: join it, or lead when it is this
  /// engine's listen address; empty: no convention.
  std::string leader{};
  /// "host:port" the other members dial to reach this engine; empty: listen's.
  std::string advertise{};
  /// What this engine offers placement; a JSON object.
  nlohmann::json capabilities = nlohmann::json::object();
  /// Where modules other members send are written; empty: a temporary one.
  std::string module_cache{};
  /// Lines actors log also go to the leader, which logs them with their origin.
  bool forward_logs = false;
  /// "etcd://HOST:PORT[,...]": membership kept in etcd, not by a leader.
  std::string membership{};

  friend bool operator==(const convention_config&, const convention_config&) = default;
};

/// Bounds on what an engine accepts and keeps.
struct serve_limits {
  /// The largest frame a link to another engine accepts, in bytes.
  std::size_t max_frame = 16u << 20;
  /// The mailbox bound of actors spawned without one; 0: unbounded.
  std::uint32_t mailbox_limit = 0;

  friend bool operator==(const serve_limits&, const serve_limits&) = default;
};

/// Everything `troupe serve` can be configured with: the file's keys, one
/// member each, with the defaults of the command-line flags. A value type:
/// any thread may hold and copy it.
struct serve_config {
  /// Shards (threads); 0: one per core. 0..4096.
  unsigned shards = 0;
  /// The reactor backend: "auto", "uring" or "epoll".
  std::string io = "auto";
  /// This engine's id, unique among linked engines. 1..0xFFFFFFFE.
  std::uint32_t engine_id = 1;
  /// Engine processes to run as one convention under a supervising parent
  /// (`--workers`, workers.hpp); 0: this process is the engine. 0..64.
  unsigned workers = 0;
  /// "host:port" to accept peer engines on (port 0: any free port); empty: none.
  std::string listen{};
  /// "host:port" of peer engines to link to.
  std::vector<std::string> peers{};
  /// A file holding the convention's shared secret; empty: none.
  std::string secret_file{};
  convention_config convention{};
  /// Quiet time before a link sends a heartbeat; >= 10 ms.
  unsigned heartbeat_ms = 500;
  /// Silence after which a peer engine is lost; more than heartbeat_ms.
  unsigned peer_timeout_ms = 3000;
  /// trace, debug, info, warn, error, critical or off.
  std::string log_level = "info";
  /// "host:port" of the admin endpoint (HTTP); empty: no admin endpoint.
  std::string admin = "127.0.0.1:7700";
  /// A file holding the token the admin endpoint asks for; empty: none.
  std::string admin_token_file{};
  /// Actor modules (.so) to load at start, in order.
  std::vector<std::string> modules{};
  /// Actors to spawn at start, in order, after the modules are loaded.
  std::vector<actor_spec> actors{};
  serve_limits limits{};

  friend bool operator==(const serve_config&, const serve_config&) = default;
};

/// Values given on the command line; each one that is set replaces the
/// configuration's (a list replaces the whole list). CLI11 binds to
/// std::optional members directly, leaving them empty when a flag is absent.
struct serve_overrides {
  std::optional<unsigned> shards;
  std::optional<unsigned> workers;
  std::optional<std::string> io;
  std::optional<std::uint32_t> engine_id;
  std::optional<std::string> listen;
  std::optional<std::vector<std::string>> peers;
  std::optional<std::string> secret_file;
  std::optional<std::string> convention;  ///< the leader's "host:port"
  std::optional<std::string> convention_name;
  std::optional<nlohmann::json> capabilities;  ///< a JSON object
  std::optional<std::string> advertise;
  std::optional<bool> forward_logs;
  std::optional<std::string> membership;
  std::optional<unsigned> heartbeat_ms;
  std::optional<unsigned> peer_timeout_ms;
  std::optional<std::string> log_level;
  std::optional<std::string> admin;
  std::optional<std::string> admin_token_file;
  std::optional<std::vector<std::string>> modules;
  std::optional<std::size_t> max_frame;
  std::optional<std::uint32_t> mailbox_limit;
};

// All functions below are pure (load_config_file reads its file) and may be
// called from any thread.

/// The configuration a JSON document describes: the defaults, with each key
/// the document has. On any problem: nullopt, and `error` holds one line per
/// problem, each naming the key path and what was expected, e.g.
/// `actors[2].shard: expected an integer between 0 and 4095, got "two"`.
std::optional<serve_config> parse_config(const nlohmann::json& doc, std::string& error);

/// The configuration in the file at `path`: JSON, where comments (// and
/// /* */) are allowed. Relative paths in it (secret_file, admin_token_file,
/// modules) are taken relative to the file's directory. On any problem:
/// nullopt, and `error` holds one line per problem, each starting with
/// `path: ` — an unreadable file, a JSON syntax error (with its byte, line
/// and column), a key given twice in one object, or what parse_config finds.
std::optional<serve_config> load_config_file(const std::string& path, std::string& error);

/// Checks a configuration made or changed in code (after apply_overrides)
/// by the rules of the file: the same messages as parse_config, one line per
/// problem; empty when the configuration is valid.
std::string validate_config(const serve_config& config);

/// Replaces each value of `config` that `flags` sets. Does not validate:
/// call validate_config after it.
void apply_overrides(serve_config& config, const serve_overrides& flags);

/// The configuration as a JSON document that parse_config reads back equal,
/// with every key in the file's order (for `troupe serve --print-config`).
/// Unset optional strings (listen, secret_file, admin, admin_token_file)
/// are null.
nlohmann::ordered_json to_json(const serve_config& config);

/// The engine's options from a valid configuration (see validate_config).
/// The secret is left empty: reading secret_file is the caller's job, so
/// that its errors name the file. mailbox_limit, modules, actors, admin and
/// log_level are not options of the engine; the caller applies them.
/// What an engine of `troupe serve` is made of: the core's options and,
/// when configured, its links and its convention.
struct engine_options {
  system_options core{};
  /// Set when listen, peers or a convention is configured.
  std::optional<link_options> links{};
  /// Set when a convention leader or a membership is configured.
  std::optional<troupe::convention_options> convention{};

  /// The layers these options ask for, in order, for system's constructor.
  std::vector<extension_ptr> layers() const;
  /// A system made of these, its layers in order. Throws as
  /// troupe::system's constructor does.
  std::unique_ptr<system> start() const;
};

engine_options to_engine_options(const serve_config& config);

}  // namespace troupe
