// troupe-kv: the key-value server as a program. Runs until SIGINT/SIGTERM.

#include <sys/resource.h>

#include <csignal>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <troupe/troupe.hpp>

#include "kv.hpp"

namespace {

/// A server of many clients needs a descriptor each: take the soft limit
/// up to the hard one.
void raise_descriptor_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &r) != 0) spdlog::warn("could not raise the descriptor limit");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"troupe-kv: a key-value server built from actors, speaking the Redis protocol"};
  troupe::kv::options o;
  unsigned shards = 0;
  std::string io = "auto";
  std::string level = "info";
  app.add_option("--host", o.host, "IPv4 address to listen on");
  app.add_option("--port", o.port, "TCP port; 0: any free port")->check(CLI::Range(0, 65535));
  app.add_option("--shards", shards, "shards (threads); 0 = one per core")
      ->check(CLI::Range(0u, 4096u));
  app.add_option("--io", io, "reactor backend: auto, uring or epoll")
      ->check(CLI::IsMember({"auto", "uring", "epoll"}));
  app.add_option("--log-level", level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(level));
  raise_descriptor_limit();

  troupe::system_options so;
  so.shards = shards;
  so.io = *troupe::io::parse_backend_choice(io);
  // Block the stop signals in every thread (the shards inherit the mask)
  // and take them with sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::unique_ptr<troupe::system> sys;
  troupe::kv::server kv;
  try {
    sys = std::make_unique<troupe::system>(so);
    kv = troupe::kv::start(*sys, o);
  } catch (const std::exception& ex) {
    spdlog::error("cannot start: {}", ex.what());
    return 1;
  }
  spdlog::info("{} shards, io {}", sys->shard_count(), sys->io_description());
  std::cout << "kv listening on " << o.host << ":" << kv.port << std::endl;
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  sys->stop();
  return 0;
}
