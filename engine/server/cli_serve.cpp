// `troupe serve` runs an engine until SIGINT/SIGTERM, configured by a JSON
// file (--config) and flags that override it; `troupe probe` prints what
// the kernel offers for io_uring (cli.hpp).

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "server/admin.hpp"
#include "server/cli.hpp"
#include "server/config.hpp"
#include "server/workers.hpp"
#include "troupe/troupe.hpp"

namespace troupe {

namespace {

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

}  // namespace

CLI::App* add_serve_command(CLI::App& app, troupe::serve_overrides& o, serve_flags& f) {
  auto* serve_cmd = app.add_subcommand("serve", "run an engine until SIGINT or SIGTERM");
  serve_cmd->add_option("--config", f.config_path, "JSON configuration file; flags override it")
      ->check(CLI::ExistingFile);
  serve_cmd->add_flag("--print-config", f.print_config,
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
  serve_cmd
      ->add_option("--capabilities", f.capabilities_text,
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
  return serve_cmd;
}

void block_stop_signals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
}

int run_serve(troupe::serve_overrides o, const serve_flags& f, int argc, char** argv) {
  // A bare port listens on the loopback interface.
  if (o.listen && !o.listen->empty() && o.listen->find(':') == std::string::npos) {
    *o.listen = "127.0.0.1:" + *o.listen;
  }
  troupe::serve_config cfg;
  std::string error;
  if (!f.config_path.empty()) {
    auto file = troupe::load_config_file(f.config_path, error);
    if (!file) {
      std::cerr << error << "\n";
      return 2;
    }
    cfg = std::move(*file);
  }
  if (!f.capabilities_text.empty()) o.capabilities = nlohmann::json::parse(f.capabilities_text);
  troupe::apply_overrides(cfg, o);
  if (const std::string problems = troupe::validate_config(cfg); !problems.empty()) {
    std::cerr << problems << "\n";
    return 2;
  }
  if (f.print_config) {
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

CLI::App* add_probe_command(CLI::App& app) {
  return app.add_subcommand("probe", "print what the kernel offers for io_uring");
}

int run_probe(const troupe::serve_overrides& o) {
  spdlog::set_level(spdlog::level::from_str(o.log_level.value_or("info")));
  auto p = troupe::io::probe();
  std::cout << p.describe() << "\n";
  return p.uring_available ? 0 : 1;
}

}  // namespace troupe
