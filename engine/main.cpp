// The troupe binary: `troupe serve` runs an engine until SIGINT/SIGTERM,
// configured by a JSON file (--config) and flags that override it.

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>

#include "config.hpp"
#include "troupe/troupe.hpp"

namespace {

/// The shared secret of the convention: the file's bytes, less one trailing
/// newline. Empty or unreadable is an error that names the file.
bool read_secret(const std::string& path, std::string& secret) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    spdlog::error("secret file {}: cannot be read", path);
    return false;
  }
  std::ostringstream all;
  all << in.rdbuf();
  secret = all.str();
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) {
    spdlog::error("secret file {}: the file is empty; a secret needs at least one byte", path);
    return false;
  }
  return true;
}

int serve(const troupe::serve_config& cfg) {
  troupe::system_options options = troupe::to_system_options(cfg);
  if (!cfg.secret_file.empty() && !read_secret(cfg.secret_file, options.secret)) return 2;
  // Block the stop signals in every thread (the shards inherit the mask)
  // and take them with sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::unique_ptr<troupe::system> sys;
  try {
    sys = std::make_unique<troupe::system>(options);
  } catch (const std::exception& ex) {
    spdlog::error("cannot start the engine: {}", ex.what());
    return 1;
  }
  spdlog::info("troupe engine {} serving: {} shards, io {}", sys->engine_id(), sys->shard_count(),
               sys->io_description());
  spdlog::info("kernel offers: {}", troupe::io::probe().describe());
  if (!cfg.listen.empty())
    spdlog::info("listening for peer engines on port {}", sys->listen_port());
  // A module that cannot be loaded, or an actor that cannot be spawned, is
  // reported; the engine serves on.
  for (const std::string& m : cfg.modules) {
    if (auto r = sys->load_module(m); !r) spdlog::error("{}", r.err().text());
  }
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
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  sys->stop();
  const auto st = sys->counters();
  spdlog::info("totals: {} sent, {} delivered, {} dead letters, {} actors spawned", st.sent,
               st.delivered, st.dead_letters, st.actors_spawned);
  return 0;
}

}  // namespace

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
                        "the convention's name; only engines of the same one link");
  serve_cmd->add_option("--heartbeat", o.heartbeat_ms,
                        "ms of quiet before a link sends a heartbeat");
  serve_cmd->add_option("--peer-timeout", o.peer_timeout_ms,
                        "ms of silence after which a peer engine is declared lost");
  serve_cmd->add_option("--module", o.modules, "an actor module (.so) to load (repeatable)");
  serve_cmd->add_option("--mailbox-limit", o.mailbox_limit,
                        "mailbox bound of the actors spawned at start; 0 = unbounded");

  auto* probe_cmd = app.add_subcommand("probe", "print what the kernel offers for io_uring");

  CLI11_PARSE(app, argc, argv);
  if (app.get_subcommands().empty()) {
    std::cerr << app.help() << "a command is required: serve or probe\n";
    return 2;
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
  return serve(cfg);
}
