// troupe-test-peer: an engine process for the multi-engine tests. It links
// to the engines it is given, spawns a counter and an echo actor, prints
//   ready <listen port> <counter address> <echo address>
// and runs until SIGTERM or SIGINT.

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>

#include "peer_messages.hpp"

int main(int argc, char** argv) {
  CLI::App app{"troupe-test-peer: an engine for the multi-engine tests"};
  std::uint32_t engine = 2;
  unsigned shards = 2;
  std::string listen, secret;
  std::vector<std::string> peers;
  app.add_option("--engine-id", engine)->required();
  app.add_option("--shards", shards);
  app.add_option("--listen", listen);
  app.add_option("--peer", peers);
  app.add_option("--secret", secret);
  CLI11_PARSE(app, argc, argv);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  peer_test::register_messages();
  peer_test::register_actors();
  troupe::system_options o;
  o.engine_id = engine;
  o.shards = shards;
  o.listen = listen;
  o.peers = peers;
  o.secret = secret;
  troupe::system sys(o);
  auto c = sys.spawn<peer_test::counter>(troupe::spawn_options{.shard = 1});
  auto e = sys.spawn<peer_test::echo>(troupe::spawn_options{.shard = 0});
  std::printf("ready %u %s %s\n", sys.listen_port(), c.to_string().c_str(), e.to_string().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  sys.stop();
  return 0;
}
