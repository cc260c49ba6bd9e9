// The admin client (cli.hpp): `troupe status`, metrics, spawn, members,
// capabilities, tell, ask, modules and stop, each one HTTP request to an
// engine's admin endpoint (admin.hpp), its answer printed.

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/cli.hpp"
#include "troupe/net.hpp"
#include "troupe/troupe.hpp"

namespace troupe {

namespace {

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

using nlohmann::json;

/// `text`, the value of `what`, as JSON; false (and a line on stderr) if
/// it is not JSON.
bool parse_arg(const std::string& what, const std::string& text, json& out) {
  out = json::parse(text, nullptr, false);
  if (out.is_discarded()) {
    std::cerr << what << " is not valid JSON: " << text << "\n";
    return false;
  }
  return true;
}

int run_status(const client_commands& c) {
  return run_client(c.flags, "GET", "/status", "", [](const json& j) {
    std::ostringstream o;
    o << "engine " << j.value("engine", 0u) << ": " << j["shards"].size() << " shards, "
      << j.value("actors", 0u) << " actors, " << j.value("delivered", 0u) << " delivered, "
      << j.value("dead_letters", 0u) << " dead letters, " << j["peers"].size() << " peers, "
      << j["modules"].size() << " modules, up " << j.value("uptime_s", 0.0) << " s";
    return o.str();
  });
}

int run_metrics(const client_commands& c) {
  return run_client(c.flags, "GET", "/metrics", "", nullptr);
}

int run_spawn(const client_commands& c) {
  json args, body = {{"type", c.spawn_type}};
  if (!parse_arg("--args", c.spawn_args, args)) return exit_usage;
  body["args"] = args;
  if (!c.spawn_name.empty()) body["name"] = c.spawn_name;
  if (c.spawn_shard >= 0) body["shard"] = c.spawn_shard;
  if (!c.spawn_requires.empty() || c.spawn_spread) {
    json req;
    if (!c.spawn_requires.empty() && !parse_arg("--requires", c.spawn_requires, req)) {
      return exit_usage;
    }
    body["requirements"] = req;
    body["prefer_local"] = !c.spawn_spread;
  }
  return run_client(c.flags, "POST", "/spawn", body.dump(),
                    [](const json& j) { return j.value("address", std::string()); });
}

int run_members(const client_commands& c) {
  return run_client(c.flags, "GET", "/members", "", [](const json& j) {
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

int run_capabilities(const client_commands& c) {
  json caps;
  if (!parse_arg("the capabilities", c.caps_arg, caps)) return exit_usage;
  if (!caps.is_object()) {
    std::cerr << "the capabilities must be a JSON object, got " << c.caps_arg << "\n";
    return exit_usage;
  }
  return run_client(c.flags, "POST", "/capabilities", json{{"capabilities", caps}}.dump(),
                    [](const json& j) { return "capabilities " + j["capabilities"].dump(); });
}

/// `troupe tell`, or `troupe ask` if `ask`.
int run_tell_or_ask(const client_commands& c, bool ask) {
  json msg;
  if (!parse_arg("the message", c.message_body, msg)) return exit_usage;
  json body = {{"to", c.target}, {"type", c.message_type}, {"body", msg}};
  if (ask) body["timeout_ms"] = c.timeout_ms;
  return run_client(c.flags, "POST", ask ? "/ask" : "/tell", body.dump(), [&](const json& j) {
    return ask ? j["reply"].dump() : "sent to " + j.value("sent", std::string());
  });
}

int run_module_list(const client_commands& c) {
  return run_client(c.flags, "GET", "/modules", "", [](const json& j) {
    std::string out;
    for (const auto& m : j) {
      if (!out.empty()) out += "\n";
      out += m.value("name", std::string()) + "\t" + m.value("path", std::string());
    }
    return out.empty() ? std::string("(no modules)") : out;
  });
}

int run_module_load(const client_commands& c) {
  return run_client(c.flags, "POST", "/modules/load", json{{"path", c.module_arg}}.dump(),
                    [](const json& j) { return "loaded " + j.value("name", std::string()); });
}

int run_module_unload(const client_commands& c) {
  return run_client(c.flags, "POST", "/modules/unload",
                    json{{"name", c.module_arg}, {"stop", c.unload_stop}}.dump(),
                    [](const json& j) { return "unloaded " + j.value("unloaded", std::string()); });
}

int run_stop(const client_commands& c) {
  return run_client(c.flags, "POST", "/stop", "{}",
                    [](const json&) { return std::string("stopping"); });
}

}  // namespace

void add_client_commands(CLI::App& app, client_commands& c) {
  client_flags& cf = c.flags;
  auto client = [&](CLI::App* cmd) {
    cmd->add_option("--admin", cf.admin, "HOST:PORT of the engine's admin endpoint")
        ->capture_default_str();
    cmd->add_option("--token-file", cf.token_file, "file holding the admin token");
    cmd->add_flag("--json", cf.as_json, "print the endpoint's JSON as it is");
    return cmd;
  };
  c.status = client(app.add_subcommand("status", "the engine's status"));
  c.metrics = client(app.add_subcommand("metrics", "the engine's metrics (Prometheus)"));
  c.spawn = client(app.add_subcommand("spawn", "spawn an actor of a registered type"));
  c.spawn->add_option("type", c.spawn_type, "the registered actor type")->required();
  c.spawn->add_option("--name", c.spawn_name, "spawn by name: the one actor of that name");
  c.spawn->add_option("--shard", c.spawn_shard, "exactly this shard")->check(CLI::Range(0, 4095));
  c.spawn->add_option("--args", c.spawn_args, "the actor's arguments, as JSON");
  c.spawn->add_option("--requires", c.spawn_requires,
                      "place it on a member of the convention whose capabilities fit this "
                      "predicate (JSON, e.g. '{\"gpu\": true}')");
  c.spawn->add_flag("--spread", c.spawn_spread,
                    "place it on the least loaded member that fits, not this engine first");
  c.members = client(app.add_subcommand("members", "the engines of the convention"));
  c.capabilities =
      client(app.add_subcommand("capabilities", "set this engine's capabilities (JSON object)"));
  c.capabilities->add_option("capabilities", c.caps_arg, "a JSON object")->required();
  c.tell = client(app.add_subcommand("tell", "send a message given as JSON"));
  c.ask = client(app.add_subcommand("ask", "ask with a message given as JSON"));
  for (auto* cmd : {c.tell, c.ask}) {
    cmd->add_option("target", c.target, "an address (1:0:5.1) or an actor's name")->required();
    cmd->add_option("body", c.message_body, "the message, as JSON")->required();
    cmd->add_option("--type", c.message_type, "the message's registered wire name")->required();
  }
  c.ask->add_option("--timeout", c.timeout_ms, "ms to wait for the reply")->capture_default_str();
  c.modules = app.add_subcommand("modules", "list, load or unload actor modules");
  c.modules->require_subcommand(1);
  c.module_list = client(c.modules->add_subcommand("list", "the loaded modules"));
  c.module_load = client(c.modules->add_subcommand("load", "load a module (.so)"));
  c.module_unload = client(c.modules->add_subcommand("unload", "unload a module"));
  c.module_load->add_option("path", c.module_arg, "the module's file, as the engine sees it")
      ->required();
  c.module_unload->add_option("name", c.module_arg, "the module's name")->required();
  c.module_unload->add_flag("--stop", c.unload_stop, "stop the module's actors first");
  c.stop = client(app.add_subcommand("stop", "stop the engine gracefully"));
}

bool client_command_chosen(const client_commands& c) {
  return *c.status || *c.metrics || *c.spawn || *c.members || *c.capabilities || *c.tell ||
         *c.ask || *c.module_list || *c.module_load || *c.module_unload || *c.stop;
}

int run_client_command(const client_commands& c) {
  if (*c.status) return run_status(c);
  if (*c.metrics) return run_metrics(c);
  if (*c.spawn) return run_spawn(c);
  if (*c.members) return run_members(c);
  if (*c.capabilities) return run_capabilities(c);
  if (*c.tell || *c.ask) return run_tell_or_ask(c, static_cast<bool>(*c.ask));
  if (*c.module_list) return run_module_list(c);
  if (*c.module_load) return run_module_load(c);
  if (*c.module_unload) return run_module_unload(c);
  if (*c.stop) return run_stop(c);
  return exit_usage;
}

}  // namespace troupe
