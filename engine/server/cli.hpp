#pragma once
// The `troupe` binary's command line, one function per subcommand; main.cpp
// builds the CLI11 app from these and dispatches to the one chosen.
//
//   cli.cpp         what the subcommands share: the token and secret files
//   cli_serve.cpp   troupe serve (an engine until SIGINT/SIGTERM), troupe probe
//   cli_client.cpp  the admin client: status, metrics, spawn, members,
//                   capabilities, tell, ask, modules, stop

#include <CLI/CLI.hpp>

#include <string>

#include "server/config.hpp"

namespace troupe {

/// The admin token: the file's bytes less trailing line ends.
std::string read_token(const std::string& path, bool& ok);

/// The shared secret of the convention: the file's bytes, less one trailing
/// newline. Empty or unreadable is an error that names the file.
bool read_secret(const std::string& path, std::string& secret);

// --- troupe serve, troupe probe (cli_serve.cpp) ---------------------------

/// The flags of `troupe serve` that are not overrides of the configuration.
struct serve_flags {
  std::string config_path;
  bool print_config = false;
  std::string capabilities_text;
};

/// Adds `troupe serve` to `app`, its flags bound to `o` and `f` (which must
/// outlive the parse).
CLI::App* add_serve_command(CLI::App& app, serve_overrides& o, serve_flags& f);

/// Blocks SIGINT and SIGTERM in the calling thread and every thread it
/// starts from now on, so that `troupe serve` takes them with sigwait.
void block_stop_signals();

/// `troupe serve`, once parsed: the configuration file and the overrides,
/// then this engine (or, with workers, the parent that supervises them).
/// `argv` is the command line, which workers are started with again.
/// Returns the exit code.
int run_serve(serve_overrides o, const serve_flags& f, int argc, char** argv);

/// Adds `troupe probe` to `app`.
CLI::App* add_probe_command(CLI::App& app);

/// `troupe probe`: prints what the kernel offers for io_uring. Returns the
/// exit code (1: no io_uring).
int run_probe(const serve_overrides& o);

// --- the admin client (cli_client.cpp) ------------------------------------

struct client_flags {
  std::string admin = "127.0.0.1:7700";
  std::string token_file;
  bool as_json = false;
};

/// The admin client's subcommands and what their flags are parsed into.
/// CLI11 keeps pointers into it: it must not move once added.
struct client_commands {
  client_flags flags;
  CLI::App* status = nullptr;
  CLI::App* metrics = nullptr;
  CLI::App* spawn = nullptr;
  CLI::App* members = nullptr;
  CLI::App* capabilities = nullptr;
  CLI::App* tell = nullptr;
  CLI::App* ask = nullptr;
  CLI::App* modules = nullptr;
  CLI::App* module_list = nullptr;
  CLI::App* module_load = nullptr;
  CLI::App* module_unload = nullptr;
  CLI::App* stop = nullptr;

  std::string spawn_type, spawn_name, spawn_args = "null";
  int spawn_shard = -1;
  std::string spawn_requires;
  bool spawn_spread = false;
  std::string caps_arg;
  std::string target, message_type, message_body;
  unsigned timeout_ms = 5000;
  std::string module_arg;
  bool unload_stop = false;

  client_commands() = default;
  client_commands(const client_commands&) = delete;
  client_commands& operator=(const client_commands&) = delete;
};

/// Adds the admin client's subcommands to `app`, in the order `troupe
/// --help` lists them, their flags bound to `c`.
void add_client_commands(CLI::App& app, client_commands& c);

/// True if the subcommand parsed is one of the admin client's.
bool client_command_chosen(const client_commands& c);

/// Runs the admin client's subcommand that was parsed. Returns the exit code.
int run_client_command(const client_commands& c);

}  // namespace troupe
