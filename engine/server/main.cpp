// The troupe binary: `troupe serve` runs an engine until SIGINT/SIGTERM,
// configured by a JSON file (--config) and flags that override it.

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/admin.hpp"
#include "server/config.hpp"
#include "server/workers.hpp"
#include "troupe/troupe.hpp"

namespace {

/// A file's bytes; nullopt if it cannot be read.
std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream all;
  all << in.rdbuf();
  return all.str();
}

/// The admin token: the file's bytes less trailing line ends.
std::string read_token(const std::string& path, bool& ok) {
  std::string t = read_file(path).value_or("");
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  ok = !t.empty();
  return t;
}

/// The shared secret of the convention: the file's bytes, less one trailing
/// newline. Empty or unreadable is an error that names the file.
bool read_secret(const std::string& path, std::string& secret) {
  auto bytes = read_file(path);
  if (!bytes) {
    spdlog::error("secret file {}: cannot be read", path);
    return false;
  }
  secret = std::move(*bytes);
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) {
    spdlog::error("secret file {}: the file is empty; a secret needs at least one byte", path);
    return false;
  }
  return true;
}

int serve(const troupe::serve_config& cfg) {
  troupe::engine_options options = troupe::to_engine_options(cfg);
  if (options.convention) options.convention->join_at_start = false;  // once the modules are loaded
  std::string secret;
  if (!cfg.secret_file.empty() && !read_secret(cfg.secret_file, secret)) return 2;
  if (options.links) options.links->secret = secret;
  // The stop signals are blocked (since start-up, in main) in every thread,
  // the shards inherit the mask, and sigwait below takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);

  std::unique_ptr<troupe::system> sys;
  try {
    sys = options.start();
  } catch (const std::exception& ex) {
    spdlog::error("cannot start the engine: {}", ex.what());
    return 1;
  }
  spdlog::info("troupe engine {} serving: {} shards, io {}", sys->engine_id(), sys->shard_count(),
               sys->io_description());
  spdlog::info("kernel offers: {}", troupe::io::probe().describe());
  if (!cfg.listen.empty())
    spdlog::info("listening for peer engines on port {}", troupe::listen_port(*sys));
  // A module that cannot be loaded, or an actor that cannot be spawned, is
  // reported; the engine serves on.
  for (const std::string& m : cfg.modules) {
    if (auto r = sys->load_module(m); !r) spdlog::error("{}", r.err().text());
  }
  troupe::join_convention(*sys);  // with its modules: placements may come at once
  for (const troupe::actor_spec& a : cfg.actors) {
    troupe::spawn_options o;
    if (a.shard) o.shard = static_cast<int>(*a.shard);
    o.mailbox_limit = cfg.limits.mailbox_limit;
    auto r = sys->spawn_type(a.type, a.args, o, a.name);
    if (r) {
      spdlog::info("spawned {}{} at {}", a.type, a.name.empty() ? "" : " '" + a.name + "'",
                   r.value().to_string());
    } else {
      spdlog::error("cannot spawn {}: {}", a.type, r.err().text());
    }
  }
  if (!cfg.admin.empty()) {
    std::string host;
    std::uint16_t port = 0;
    troupe::net::split_host_port(cfg.admin, host, port);  // validated with the configuration
    troupe::admin_options ao;
    if (!cfg.admin_token_file.empty()) {
      bool ok = false;
      ao.token = read_token(cfg.admin_token_file, ok);
      if (!ok) {
        spdlog::error("admin token file {}: cannot be read or is empty", cfg.admin_token_file);
        sys->stop();
        return 2;
      }
    }
    auto listener = troupe::net::listen(host, port);
    if (!listener) {
      // The engine serves on without it.
      spdlog::error("cannot serve the admin endpoint on {}: {}", cfg.admin, listener.err().text());
    } else {
      const std::uint16_t bound = listener->local_port();
      troupe::start_admin(*sys, std::move(*listener), std::move(ao));
      spdlog::info("admin endpoint on http://{}:{}", host, bound);
    }
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  sys->stop();
  const auto st = sys->counters();
  spdlog::info("totals: {} sent, {} delivered, {} dead letters, {} actors spawned", st.sent,
               st.delivered, st.dead_letters, st.actors_spawned);
  return 0;
}

// --- the admin client: troupe status, spawn, tell, ask, modules, stop -----

/// Exit codes a script can rely on.
constexpr int exit_ok = 0;
constexpr int exit_refused = 1;      ///< the engine answered with an error
constexpr int exit_usage = 2;        ///< bad arguments
constexpr int exit_unreachable = 3;  ///< no admin endpoint answered

struct http_answer {
  int status = 0;
  std::string body;
};

/// One request to the admin endpoint; nullopt (and `why`) if it cannot be
/// reached or answers something that is not HTTP.
std::optional<http_answer> admin_call(const std::string& admin, const std::string& token,
                                      const std::string& method, const std::string& path,
                                      const std::string& body, std::string& why) {
  std::string host;
  std::uint16_t port = 0;
  if (!troupe::net::split_host_port(admin, host, port)) {
    why = "--admin '" + admin + "' is not host:port";
    return std::nullopt;
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    why = "--admin host '" + host + "' is not an IPv4 address";
    return std::nullopt;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    why = "cannot reach the admin endpoint at " + admin + ": " + std::strerror(errno);
    ::close(fd);
    return std::nullopt;
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: " + admin +
                    "\r\nConnection: close\r\nContent-Type: application/json\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  for (std::size_t sent = 0; sent < req.size();) {
    const ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      why = std::string("sending to the admin endpoint failed: ") + std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto head_end = in.find("\r\n\r\n");
  if (in.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos || in.size() < 12) {
    why = "the admin endpoint at " + admin + " did not answer in HTTP";
    return std::nullopt;
  }
  http_answer a;
  a.status = static_cast<int>(std::strtol(in.c_str() + 9, nullptr, 10));
  a.body = in.substr(head_end + 4);
  return a;
}

struct client_flags {
  std::string admin = "127.0.0.1:7700";
  std::string token_file;
  bool as_json = false;
};

/// Runs one admin request and prints its answer: the JSON as it came with
/// --json, else `pick` of it (or the error). Returns the exit code.
int run_client(const client_flags& c, const std::string& method, const std::string& path,
               const std::string& body,
               const std::function<std::string(const nlohmann::json&)>& pick) {
  std::string token;
  if (!c.token_file.empty()) {
    bool ok = false;
    token = read_token(c.token_file, ok);
    if (!ok) {
      std::cerr << "--token-file " << c.token_file << ": cannot be read or is empty\n";
      return exit_usage;
    }
  }
  std::string why;
  auto a = admin_call(c.admin, token, method, path, body, why);
  if (!a) {
    std::cerr << why << "\n";
    return exit_unreachable;
  }
  const bool is_json = path != "/metrics";
  nlohmann::json j = is_json ? nlohmann::json::parse(a->body, nullptr, false) : nlohmann::json();
  if (a->status >= 400) {
    if (c.as_json) {
      std::cout << a->body;
    } else {
      std::cerr << "error " << a->status << ": "
                << (j.is_object() && j.contains("error") ? j["error"].get<std::string>() : a->body)
                << "\n";
    }
    return exit_refused;
  }
  if (c.as_json || !is_json || j.is_discarded()) {
    std::cout << a->body;
  } else {
    std::cout << pick(j) << "\n";
  }
  return exit_ok;
}

}  // namespace

// NOLINTNEXTLINE(bugprone-exception-escape): what escapes is a bug; terminate names it
int main(int argc, char** argv) {
  CLI::App app{"troupe: an actor engine"};
  app.require_subcommand(0, 1);  // none: print help; an unknown word is named as such
  troupe::serve_overrides o;
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  auto* serve_cmd = app.add_subcommand("serve", "run an engine until SIGINT or SIGTERM");
  std::string config_path;
  bool print_config = false;
  serve_cmd->add_option("--config", config_path, "JSON configuration file; flags override it")
      ->check(CLI::ExistingFile);
  serve_cmd->add_flag("--print-config", print_config,
                      "print the effective configuration as JSON and exit");
  serve_cmd->add_option("--shards", o.shards, "shards (threads); 0 = one per core")
      ->check(CLI::Range(0u, 4096u));
  serve_cmd->add_option("--io", o.io, "reactor backend: auto, uring or epoll")
      ->check(CLI::IsMember({"auto", "uring", "epoll"}));
  serve_cmd->add_option("--engine-id", o.engine_id,
                        "this engine's id, unique among linked engines (1 and up)");
  serve_cmd->add_option(
      "--listen", o.listen,
      "HOST:PORT (or PORT, on 127.0.0.1) to accept peer engines on; port 0: any free port");
  serve_cmd->add_option("--peer", o.peers, "HOST:PORT of a peer engine to link to (repeatable)");
  serve_cmd->add_option("--secret-file", o.secret_file,
                        "file holding the shared secret peers must prove they know");
  serve_cmd->add_option("--convention", o.convention,
                        "HOST:PORT of the convention's leader: join it (lead it when it is "
                        "--listen's address)");
  serve_cmd->add_option("--convention-name", o.convention_name,
                        "the convention's name; only engines of the same one link");
  std::string capabilities_text;
  serve_cmd
      ->add_option("--capabilities", capabilities_text,
                   "what this engine offers placement, a JSON object: '{\"gpu\": true}'")
      ->check([](const std::string& text) -> std::string {
        const auto j = nlohmann::json::parse(text, nullptr, false);
        if (j.is_discarded()) return "not JSON: " + text;
        if (!j.is_object()) return "not a JSON object: " + text;
        return {};
      });
  serve_cmd->add_option(
      "--advertise", o.advertise,
      "HOST:PORT the other members dial to reach this engine (default: --listen)");
  serve_cmd->add_option("--membership", o.membership,
                        "etcd://HOST:PORT[,HOST:PORT...]: keep the convention's membership in "
                        "etcd (leases, a watch) instead of by a leader");
  serve_cmd->add_flag("--forward-logs", o.forward_logs,
                      "lines actors log also go to the convention's leader");
  serve_cmd->add_option("--heartbeat", o.heartbeat_ms,
                        "ms of quiet before a link sends a heartbeat");
  serve_cmd->add_option("--peer-timeout", o.peer_timeout_ms,
                        "ms of silence after which a peer engine is declared lost");
  serve_cmd->add_option("--module", o.modules, "an actor module (.so) to load (repeatable)");
  serve_cmd->add_option("--admin", o.admin,
                        "HOST:PORT of the admin endpoint (HTTP); port 0: any free port");
  serve_cmd->add_option("--admin-token-file", o.admin_token_file,
                        "file holding a token every admin request must carry");
  serve_cmd->add_option("--mailbox-limit", o.mailbox_limit,
                        "mailbox bound of the actors spawned at start; 0 = unbounded");
  serve_cmd
      ->add_option("--workers", o.workers,
                   "run N engine processes as one convention under a parent that restarts "
                   "one that crashes; worker i gets --engine-id, --listen port and --admin "
                   "port + i (needs --listen HOST:PORT, port not 0)")
      ->check(CLI::Range(1u, 64u));

  auto* probe_cmd = app.add_subcommand("probe", "print what the kernel offers for io_uring");

  // The admin client.
  client_flags cf;
  auto client = [&](CLI::App* cmd) {
    cmd->add_option("--admin", cf.admin, "HOST:PORT of the engine's admin endpoint")
        ->capture_default_str();
    cmd->add_option("--token-file", cf.token_file, "file holding the admin token");
    cmd->add_flag("--json", cf.as_json, "print the endpoint's JSON as it is");
    return cmd;
  };
  auto* status_cmd = client(app.add_subcommand("status", "the engine's status"));
  auto* metrics_cmd = client(app.add_subcommand("metrics", "the engine's metrics (Prometheus)"));
  auto* spawn_cmd = client(app.add_subcommand("spawn", "spawn an actor of a registered type"));
  std::string spawn_type, spawn_name, spawn_args = "null";
  int spawn_shard = -1;
  spawn_cmd->add_option("type", spawn_type, "the registered actor type")->required();
  spawn_cmd->add_option("--name", spawn_name, "spawn by name: the one actor of that name");
  spawn_cmd->add_option("--shard", spawn_shard, "exactly this shard")->check(CLI::Range(0, 4095));
  spawn_cmd->add_option("--args", spawn_args, "the actor's arguments, as JSON");
  std::string spawn_requires;
  bool spawn_spread = false;
  spawn_cmd->add_option("--requires", spawn_requires,
                        "place it on a member of the convention whose capabilities fit this "
                        "predicate (JSON, e.g. '{\"gpu\": true}')");
  spawn_cmd->add_flag("--spread", spawn_spread,
                      "place it on the least loaded member that fits, not this engine first");
  auto* members_cmd = client(app.add_subcommand("members", "the engines of the convention"));
  auto* caps_cmd =
      client(app.add_subcommand("capabilities", "set this engine's capabilities (JSON object)"));
  std::string caps_arg;
  caps_cmd->add_option("capabilities", caps_arg, "a JSON object")->required();
  std::string target, message_type, message_body;
  unsigned timeout_ms = 5000;
  auto* tell_cmd = client(app.add_subcommand("tell", "send a message given as JSON"));
  auto* ask_cmd = client(app.add_subcommand("ask", "ask with a message given as JSON"));
  for (auto* cmd : {tell_cmd, ask_cmd}) {
    cmd->add_option("target", target, "an address (1:0:5.1) or an actor's name")->required();
    cmd->add_option("body", message_body, "the message, as JSON")->required();
    cmd->add_option("--type", message_type, "the message's registered wire name")->required();
  }
  ask_cmd->add_option("--timeout", timeout_ms, "ms to wait for the reply")->capture_default_str();
  auto* modules_cmd = app.add_subcommand("modules", "list, load or unload actor modules");
  modules_cmd->require_subcommand(1);
  auto* mod_list = client(modules_cmd->add_subcommand("list", "the loaded modules"));
  auto* mod_load = client(modules_cmd->add_subcommand("load", "load a module (.so)"));
  auto* mod_unload = client(modules_cmd->add_subcommand("unload", "unload a module"));
  std::string module_arg;
  bool unload_stop = false;
  mod_load->add_option("path", module_arg, "the module's file, as the engine sees it")->required();
  mod_unload->add_option("name", module_arg, "the module's name")->required();
  mod_unload->add_flag("--stop", unload_stop, "stop the module's actors first");
  auto* stop_cmd = client(app.add_subcommand("stop", "stop the engine gracefully"));

  CLI11_PARSE(app, argc, argv);
  if (*serve_cmd) {
    // As early as possible: a stop signal during start-up is then taken
    // by the engine's graceful stop, not by the default action.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  }
  if (app.get_subcommands().empty()) {
    std::cerr << app.help()
              << "a command is required: serve, probe, status, metrics, spawn, tell, ask, modules "
                 "or stop\n";
    return 2;
  }
  using nlohmann::json;
  auto parse_arg = [](const std::string& what, const std::string& text, json& out) {
    out = json::parse(text, nullptr, false);
    if (out.is_discarded()) {
      std::cerr << what << " is not valid JSON: " << text << "\n";
      return false;
    }
    return true;
  };
  if (*status_cmd) {
    return run_client(cf, "GET", "/status", "", [](const json& j) {
      std::ostringstream o;
      o << "engine " << j.value("engine", 0u) << ": " << j["shards"].size() << " shards, "
        << j.value("actors", 0u) << " actors, " << j.value("delivered", 0u) << " delivered, "
        << j.value("dead_letters", 0u) << " dead letters, " << j["peers"].size() << " peers, "
        << j["modules"].size() << " modules, up " << j.value("uptime_s", 0.0) << " s";
      return o.str();
    });
  }
  if (*metrics_cmd) return run_client(cf, "GET", "/metrics", "", nullptr);
  if (*spawn_cmd) {
    json args, body = {{"type", spawn_type}};
    if (!parse_arg("--args", spawn_args, args)) return exit_usage;
    body["args"] = args;
    if (!spawn_name.empty()) body["name"] = spawn_name;
    if (spawn_shard >= 0) body["shard"] = spawn_shard;
    if (!spawn_requires.empty() || spawn_spread) {
      json req;
      if (!spawn_requires.empty() && !parse_arg("--requires", spawn_requires, req)) {
        return exit_usage;
      }
      body["requirements"] = req;
      body["prefer_local"] = !spawn_spread;
    }
    return run_client(cf, "POST", "/spawn", body.dump(),
                      [](const json& j) { return j.value("address", std::string()); });
  }
  if (*members_cmd) {
    return run_client(cf, "GET", "/members", "", [](const json& j) {
      std::string out;
      for (const auto& m : j) {
        if (!out.empty()) out += "\n";
        out += "engine " + std::to_string(m.value("engine", 0u)) + "\t" +
               m.value("link_address", std::string()) + "\t" +
               (m.value("leader", false) ? "leader" : "member") + "\t" +
               std::to_string(m.value("actors", 0u)) + " actors\t" + m["capabilities"].dump();
      }
      return out;
    });
  }
  if (*caps_cmd) {
    json caps;
    if (!parse_arg("the capabilities", caps_arg, caps)) return exit_usage;
    if (!caps.is_object()) {
      std::cerr << "the capabilities must be a JSON object, got " << caps_arg << "\n";
      return exit_usage;
    }
    return run_client(cf, "POST", "/capabilities", json{{"capabilities", caps}}.dump(),
                      [](const json& j) { return "capabilities " + j["capabilities"].dump(); });
  }
  if (*tell_cmd || *ask_cmd) {
    json msg;
    if (!parse_arg("the message", message_body, msg)) return exit_usage;
    json body = {{"to", target}, {"type", message_type}, {"body", msg}};
    if (*ask_cmd) body["timeout_ms"] = timeout_ms;
    return run_client(cf, "POST", *ask_cmd ? "/ask" : "/tell", body.dump(), [&](const json& j) {
      return *ask_cmd ? j["reply"].dump() : "sent to " + j.value("sent", std::string());
    });
  }
  if (*mod_list) {
    return run_client(cf, "GET", "/modules", "", [](const json& j) {
      std::string out;
      for (const auto& m : j) {
        if (!out.empty()) out += "\n";
        out += m.value("name", std::string()) + "\t" + m.value("path", std::string());
      }
      return out.empty() ? std::string("(no modules)") : out;
    });
  }
  if (*mod_load) {
    return run_client(cf, "POST", "/modules/load", json{{"path", module_arg}}.dump(),
                      [](const json& j) { return "loaded " + j.value("name", std::string()); });
  }
  if (*mod_unload) {
    return run_client(
        cf, "POST", "/modules/unload", json{{"name", module_arg}, {"stop", unload_stop}}.dump(),
        [](const json& j) { return "unloaded " + j.value("unloaded", std::string()); });
  }
  if (*stop_cmd) {
    return run_client(cf, "POST", "/stop", "{}",
                      [](const json&) { return std::string("stopping"); });
  }
  if (*probe_cmd) {
    spdlog::set_level(spdlog::level::from_str(o.log_level.value_or("info")));
    auto p = troupe::io::probe();
    std::cout << p.describe() << "\n";
    return p.uring_available ? 0 : 1;
  }

  // A bare port listens on the loopback interface.
  if (o.listen && !o.listen->empty() && o.listen->find(':') == std::string::npos) {
    *o.listen = "127.0.0.1:" + *o.listen;
  }
  troupe::serve_config cfg;
  std::string error;
  if (!config_path.empty()) {
    auto file = troupe::load_config_file(config_path, error);
    if (!file) {
      std::cerr << error << "\n";
      return 2;
    }
    cfg = std::move(*file);
  }
  if (!capabilities_text.empty()) o.capabilities = nlohmann::json::parse(capabilities_text);
  troupe::apply_overrides(cfg, o);
  if (const std::string problems = troupe::validate_config(cfg); !problems.empty()) {
    std::cerr << problems << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << troupe::to_json(cfg).dump(2) << "\n";
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  // A worker reads the same configuration; it is the engine, not a parent.
  const bool is_worker = std::getenv("TROUPE_WORKER_INDEX") != nullptr;
  if (cfg.workers > 0 && !is_worker) {
    const unsigned workers = cfg.workers;
    // This process only supervises: each worker is `troupe serve` again,
    // with its own engine id and ports (workers.hpp).
    auto plan =
        troupe::plan_workers(cfg, std::vector<std::string>(argv, argv + argc), workers, error);
    if (!plan) {
      std::cerr << error << "\n";
      return 2;
    }
    // Files every worker reads: a problem with them is told once, here,
    // not by workers restarted over and over.
    std::string unused;
    if (!cfg.secret_file.empty() && !read_secret(cfg.secret_file, unused)) return 2;
    if (!cfg.admin_token_file.empty()) {
      bool ok = false;
      read_token(cfg.admin_token_file, ok);
      if (!ok) {
        spdlog::error("admin token file {}: cannot be read or is empty", cfg.admin_token_file);
        return 2;
      }
    }
    troupe::worker_supervisor supervisor(std::move(*plan));
    return supervisor.run();
  }
  troupe::setup_worker_process(argv[0]);  // when this engine is one of those workers
  return serve(cfg);
}
