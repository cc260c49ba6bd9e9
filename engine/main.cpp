// The troupe binary: `troupe serve` runs an engine until SIGINT/SIGTERM.

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "troupe/troupe.hpp"

namespace {

int serve(unsigned shards, const std::string& io_choice) {
  auto io = troupe::io::parse_backend_choice(io_choice);
  if (!io) {
    spdlog::error("--io must be auto, uring or epoll, not '{}'", io_choice);
    return 2;
  }
  // Block the stop signals in every thread (the shards inherit the mask)
  // and take them with sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  troupe::system_options options;
  options.shards = shards;
  options.io = *io;
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
  unsigned shards = 0;
  std::string io = "auto";
  serve_cmd->add_option("--shards", shards, "shards (threads); 0 = one per core")
      ->check(CLI::Range(0u, 4096u));
  serve_cmd->add_option("--io", io, "reactor backend: auto, uring or epoll")
      ->check(CLI::IsMember({"auto", "uring", "epoll"}));

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
  return serve(shards, io);
}
