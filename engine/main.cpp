// The troupe binary: `troupe serve` runs an engine until SIGINT/SIGTERM.

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>

#include "troupe/troupe.hpp"

namespace {

struct serve_flags {
  unsigned shards = 0;
  std::string io = "auto";
  std::uint32_t engine_id = 1;
  std::string listen;
  std::vector<std::string> peers;
  std::string secret_file;
  std::string convention = "troupe";
  unsigned heartbeat_ms = 500;
  unsigned peer_timeout_ms = 3000;
};

/// The shared secret of the convention: the file's bytes, less one trailing
/// newline. Empty or unreadable is an error that names the file.
bool read_secret(const std::string& path, std::string& secret) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    spdlog::error("--secret-file {}: cannot be read", path);
    return false;
  }
  std::ostringstream all;
  all << in.rdbuf();
  secret = all.str();
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) {
    spdlog::error("--secret-file {}: the file is empty; a secret needs at least one byte", path);
    return false;
  }
  return true;
}

int serve(const serve_flags& f) {
  auto io = troupe::io::parse_backend_choice(f.io);
  if (!io) {
    spdlog::error("--io must be auto, uring or epoll, not '{}'", f.io);
    return 2;
  }
  if (f.peer_timeout_ms <= f.heartbeat_ms) {
    spdlog::error("--peer-timeout ({} ms) must be longer than --heartbeat ({} ms)",
                  f.peer_timeout_ms, f.heartbeat_ms);
    return 2;
  }
  troupe::system_options options;
  options.shards = f.shards;
  options.io = *io;
  options.engine_id = f.engine_id;
  // A bare port listens on the loopback interface.
  options.listen = f.listen.empty() || f.listen.find(':') != std::string::npos
                       ? f.listen
                       : "127.0.0.1:" + f.listen;
  options.convention = f.convention;
  options.peers = f.peers;
  options.heartbeat = std::chrono::milliseconds(f.heartbeat_ms);
  options.peer_timeout = std::chrono::milliseconds(f.peer_timeout_ms);
  if (!f.secret_file.empty() && !read_secret(f.secret_file, options.secret)) return 2;
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
  if (!f.listen.empty()) spdlog::info("listening for peer engines on port {}", sys->listen_port());
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
  std::string level = "info";
  app.add_option("--log-level", level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  auto* serve_cmd = app.add_subcommand("serve", "run an engine until SIGINT or SIGTERM");
  serve_flags f;
  serve_cmd->add_option("--shards", f.shards, "shards (threads); 0 = one per core")
      ->check(CLI::Range(0u, 4096u));
  serve_cmd->add_option("--io", f.io, "reactor backend: auto, uring or epoll")
      ->check(CLI::IsMember({"auto", "uring", "epoll"}));
  serve_cmd
      ->add_option("--engine-id", f.engine_id,
                   "this engine's id, unique among linked engines (1 and up)")
      ->check(CLI::Range(1u, 0xFFFFFFFEu));
  serve_cmd->add_option(
      "--listen", f.listen,
      "HOST:PORT (or PORT, on 127.0.0.1) to accept peer engines on; port 0: any free port");
  serve_cmd->add_option("--convention", f.convention,
                        "the convention's name; only engines of the same one link");
  serve_cmd->add_option("--peer", f.peers, "HOST:PORT of a peer engine to link to (repeatable)");
  serve_cmd
      ->add_option("--secret-file", f.secret_file,
                   "file holding the shared secret peers must prove they know")
      ->check(CLI::ExistingFile);
  serve_cmd
      ->add_option("--heartbeat", f.heartbeat_ms, "ms of quiet before a link sends a heartbeat")
      ->check(CLI::Range(10u, 600000u));
  serve_cmd
      ->add_option("--peer-timeout", f.peer_timeout_ms,
                   "ms of silence after which a peer engine is declared lost")
      ->check(CLI::Range(20u, 3600000u));

  auto* probe_cmd = app.add_subcommand("probe", "print what the kernel offers for io_uring");

  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(level));
  if (app.get_subcommands().empty()) {
    std::cerr << app.help() << "a command is required: serve or probe\n";
    return 2;
  }

  if (*probe_cmd) {
    auto p = troupe::io::probe();
    std::cout << p.describe() << "\n";
    return p.uring_available ? 0 : 1;
  }
  return serve(f);
}
