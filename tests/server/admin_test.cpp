// The admin endpoint and the CLI, against a real `troupe serve` process.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "support/process.hpp"

using namespace std::chrono_literals;
using troupe::test::child_process;

namespace {

struct outcome {
  int code = -1;
  std::string out;
};

/// Runs the troupe CLI to its end (bounded) and returns its exit code and output.
outcome cli(std::vector<std::string> args) {
  args.insert(args.begin(), TROUPE_BINARY);
  child_process p(args);
  auto status = p.wait_exit(30s);
  outcome o;
  o.out = p.output();
  if (status && WIFEXITED(*status)) o.code = WEXITSTATUS(*status);
  return o;
}

/// A strict reading of the Prometheus text format (version 0.0.4): every
/// line a HELP, a TYPE (before its samples, once per family) or a sample
/// `name{label="value",...} number`. Returns the first problem, or "".
std::string prometheus_problem(const std::string& text) {
  static const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$)");
  static const std::regex type(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")*\})? ([^ ]+)$)");
  std::set<std::string> typed;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  if (text.empty() || text.back() != '\n') return "the text does not end with a newline";
  while (std::getline(in, line)) {
    ++n;
    std::smatch m;
    if (std::regex_match(line, m, help)) continue;
    if (std::regex_match(line, m, type)) {
      if (!typed.insert(m[1]).second) return "line " + std::to_string(n) + ": a second TYPE";
      continue;
    }
    if (!std::regex_match(line, m, sample)) return "line " + std::to_string(n) + ": " + line;
    if (!typed.contains(m[1])) return "line " + std::to_string(n) + ": a sample before its TYPE";
    char* end = nullptr;
    const std::string v = m[7];
    std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0') return "line " + std::to_string(n) + ": value " + v;
  }
  return n == 0 ? "no lines" : "";
}

/// Writes `request` to host:port and reads until the server closes (bounded).
std::string raw_http(const std::string& admin, const std::string& request) {
  const auto colon = admin.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::stoi(admin.substr(colon + 1))));
  ::inet_pton(AF_INET, admin.substr(0, colon).c_str(), &sa.sin_addr);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return "connect failed";
  }
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (int i = 0; i < 10000; ++i) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string admin_of(const child_process& p) {
  const std::string out = p.output();
  const std::string key = "admin endpoint on http://";
  const auto at = out.find(key);
  if (at == std::string::npos) return {};
  const auto start = at + key.size();
  return out.substr(start, out.find_first_of("\r\n", start) - start);
}

}  // namespace

TEST_CASE("the CLI spawns, tells, asks and manages modules through a running troupe serve",
          "[binary][admin]") {
  child_process serve({TROUPE_BINARY, "serve", "--shards", "2", "--admin", "127.0.0.1:0"});
  REQUIRE(serve.wait_for_output("admin endpoint on http://", 10s));
  const std::string admin = admin_of(serve);
  REQUIRE_FALSE(admin.empty());
  auto run = [&](std::vector<std::string> args) {
    args.push_back("--admin");
    args.push_back(admin);
    return cli(std::move(args));
  };

  auto loaded = run({"modules", "load", TEST_GOOD_MODULE});
  CHECK(loaded.code == 0);
  CHECK(loaded.out == "loaded test.good\n");
  auto spawned = run({"spawn", "good.shout", "--name", "loud", "--shard", "1"});
  CHECK(spawned.code == 0);
  CHECK(spawned.out.rfind("1:1:", 0) == 0);
  auto asked = run({"ask", "loud", "\"hello\"", "--type", "troupe.string"});
  CHECK(asked.code == 0);
  CHECK(asked.out == "\"HELLO\"\n");
  // By address too, and with the JSON as it came.
  const std::string addr = spawned.out.substr(0, spawned.out.find('\n'));
  auto by_addr = run({"ask", addr, "\"x\"", "--type", "troupe.string", "--json"});
  CHECK(by_addr.out == "{\"reply\":\"X\",\"type\":\"troupe.string\"}\n");
  auto told = run({"tell", "loud", "\"quiet\"", "--type", "troupe.string"});
  CHECK(told.code == 0);
  CHECK(told.out == "sent to " + addr + "\n");

  // Errors: exit code 1 and the engine's reason.
  auto unknown = run({"ask", "loud", "1", "--type", "no.such"});
  CHECK(unknown.code == 1);
  CHECK(unknown.out == "error 415: no message type is registered as 'no.such'\n");
  auto nobody = run({"ask", "nobody", "\"x\"", "--type", "troupe.string"});
  CHECK(nobody.code == 1);
  CHECK(nobody.out == "error 404: no actor is named 'nobody'\n");
  auto no_type = run({"spawn", "no.such.type"});
  CHECK(no_type.code == 1);
  CHECK(no_type.out == "error 404: no actor type named 'no.such.type'\n");
  auto bad_json = run({"tell", "loud", "{oops", "--type", "troupe.string"});
  CHECK(bad_json.code == 2);
  auto refused = run({"modules", "unload", "test.good"});
  CHECK(refused.code == 1);
  CHECK(refused.out ==
        "error 409: module 'test.good' has 1 live actors; unload with stop to end them first\n");
  auto unloaded = run({"modules", "unload", "test.good", "--stop"});
  CHECK(unloaded.code == 0);
  CHECK(run({"modules", "list"}).out == "(no modules)\n");

  auto status = run({"status"});
  CHECK(status.code == 0);
  CHECK(status.out.rfind("engine 1: 2 shards, ", 0) == 0);
  auto metrics = run({"metrics"});
  CHECK(metrics.code == 0);
  CHECK(prometheus_problem(metrics.out) == "");
  CHECK(metrics.out.find("troupe_messages_delivered_total{shard=\"1\"}") != std::string::npos);
  CHECK(metrics.out.find("troupe_dead_letters_total{reason=\"no_such_actor\"}") !=
        std::string::npos);

  CHECK(run({"stop"}).code == 0);
  auto ended = serve.wait_exit(20s);
  REQUIRE(ended);
  CHECK(WEXITSTATUS(*ended) == 0);
  // Nothing answers any more.
  CHECK(run({"status"}).code == 3);
}

TEST_CASE("the admin endpoint answers bad requests with 4xx and a reason, and asks for its token",
          "[binary][admin]") {
  const std::string token_file = "/tmp/troupe-admin-token-" + std::to_string(getpid());
  {
    FILE* f = std::fopen(token_file.c_str(), "w");
    std::fputs("let-me-in\n", f);
    std::fclose(f);
  }
  child_process serve({TROUPE_BINARY, "serve", "--shards", "1", "--admin", "127.0.0.1:0",
                       "--admin-token-file", token_file});
  REQUIRE(serve.wait_for_output("admin endpoint on http://", 10s));
  const std::string admin = admin_of(serve);
  auto without = cli({"status", "--admin", admin});
  CHECK(without.code == 1);
  CHECK(without.out == "error 401: a valid 'Authorization: Bearer <token>' header is required\n");
  auto with = cli({"status", "--admin", admin, "--token-file", token_file});
  CHECK(with.code == 0);
  CHECK(cli({"metrics", "--admin", admin, "--token-file", token_file}).code == 0);
  const std::string auth = "Authorization: Bearer let-me-in\r\n";
  CHECK(raw_http(admin, "NOT HTTP AT ALL\r\n\r\n").rfind("HTTP/1.1 400 Bad Request", 0) == 0);
  const std::string big =
      raw_http(admin, "POST /spawn HTTP/1.1\r\n" + auth + "Content-Length: 2000000\r\n\r\n" +
                          std::string(1200000, 'x'));
  CHECK(big.rfind("HTTP/1.1 413 Payload Too Large", 0) == 0);
  CHECK(raw_http(admin, "DELETE /status HTTP/1.1\r\n" + auth + "Connection: close\r\n\r\n")
            .rfind("HTTP/1.1 405", 0) == 0);
  const std::string bad_body =
      raw_http(admin, "POST /spawn HTTP/1.1\r\n" + auth +
                          "Connection: close\r\nContent-Length: 5\r\n\r\n{bad}");
  CHECK(bad_body.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(bad_body.find("{\"error\":\"the body is not valid JSON\"}") != std::string::npos);
  const std::string no_type =
      raw_http(admin, "POST /spawn HTTP/1.1\r\n" + auth +
                          "Connection: close\r\nContent-Length: 2\r\n\r\n{}");
  CHECK(no_type.find("'type' (a string) is required") != std::string::npos);
  // Two requests in one write: two answers, in order.
  const std::string two =
      raw_http(admin, "GET /modules HTTP/1.1\r\n" + auth + "\r\nGET /nowhere HTTP/1.1\r\n" + auth +
                          "Connection: close\r\n\r\n");
  const auto second = two.find("HTTP/1.1 404");
  CHECK(two.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(second != std::string::npos);
  // The engine is still up after all of it.
  CHECK(cli({"stop", "--admin", admin, "--token-file", token_file}).code == 0);
  auto ended = serve.wait_exit(20s);
  REQUIRE(ended);
  CHECK(WEXITSTATUS(*ended) == 0);
  std::remove(token_file.c_str());
}
