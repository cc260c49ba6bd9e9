// The troupe binary: `troupe serve` runs an engine until SIGINT/SIGTERM,
// configured by a JSON file (--config) and flags that override it; the
// other subcommands are probe and the admin client (cli.hpp).

#include <CLI/CLI.hpp>

#include <iostream>

#include "server/cli.hpp"
#include "server/config.hpp"

// NOLINTNEXTLINE(bugprone-exception-escape): what escapes is a bug; terminate names it
int main(int argc, char** argv) {
  CLI::App app{"troupe: an actor engine"};
  app.require_subcommand(0, 1);  // none: print help; an unknown word is named as such
  troupe::serve_overrides o;
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  troupe::serve_flags serve_flags;
  CLI::App* serve_cmd = troupe::add_serve_command(app, o, serve_flags);
  CLI::App* probe_cmd = troupe::add_probe_command(app);
  // The admin client.
  troupe::client_commands client;
  troupe::add_client_commands(app, client);

  CLI11_PARSE(app, argc, argv);
  if (*serve_cmd) {
    // As early as possible: a stop signal during start-up is then taken
    // by the engine's graceful stop, not by the default action.
    troupe::block_stop_signals();
  }
  if (app.get_subcommands().empty()) {
    std::cerr << app.help()
              << "a command is required: serve, probe, status, metrics, spawn, tell, ask, modules "
                 "or stop\n";
    return 2;
  }
  if (troupe::client_command_chosen(client)) return troupe::run_client_command(client);
  if (*probe_cmd) return troupe::run_probe(o);
  return troupe::run_serve(o, serve_flags, argc, argv);
}
