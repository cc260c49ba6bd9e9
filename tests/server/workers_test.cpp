// Process isolation: `troupe serve --workers N` runs N engine processes as
// one convention under a supervising parent. A worker that dies by a native
// crash is restarted with the same engine id and ports and rejoins; the
// other workers and their actors carry on.

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/workers.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;

namespace {

/// Sockets bound on 127.0.0.1 to hold ports free while the test picks more.
class held_ports {
 public:
  held_ports() = default;
  held_ports(const held_ports&) = delete;
  held_ports& operator=(const held_ports&) = delete;
  ~held_ports() { release(); }

  /// Binds `port` (0: any); the port bound, or 0 if it was taken.
  std::uint16_t bind(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return 0;
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    fds_.push_back(fd);
    return ntohs(a.sin_port);
  }

  /// The first of `n` ports in a row that were free a moment ago (bound
  /// port 0, then the next n-1 by number); held until release(). 0 if
  /// several tries found none.
  std::uint16_t run_of(unsigned n) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      held_ports trial;
      const std::uint16_t first = trial.bind(0);
      if (first == 0 || first + n - 1 > 65535) continue;
      bool all = true;
      for (unsigned k = 1; k < n && all; ++k) {
        all = trial.bind(static_cast<std::uint16_t>(first + k)) != 0;
      }
      if (!all) continue;
      fds_.insert(fds_.end(), trial.fds_.begin(), trial.fds_.end());
      trial.fds_.clear();
      return first;
    }
    return 0;
  }

  void release() {
    for (int fd : fds_) ::close(fd);
    fds_.clear();
  }

 private:
  std::vector<int> fds_;
};

/// Runs the troupe CLI; returns its exit code and output.
std::pair<int, std::string> cli(std::vector<std::string> args) {
  args.insert(args.begin(), TROUPE_BINARY);
  troupe::test::child_process p(std::move(args));
  auto status = p.wait_exit(20s);
  return {status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.output()};
}

std::string admin_of(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

/// How many engines `troupe members` lists at `admin`; -1 if it fails.
int member_count(const std::string& admin) {
  auto [code, out] = cli({"members", "--admin", admin});
  if (code != 0) return -1;
  int n = 0;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("engine ", 0) == 0) ++n;
  }
  return n;
}

/// Waits (bounded) until `troupe members` at `admin` lists `want` engines.
bool wait_members(const std::string& admin, int want, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (member_count(admin) == want) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

/// The workers the supervisor said it started, in order: (index, pid).
std::vector<std::pair<unsigned, pid_t>> started_workers(const std::string& log) {
  static const std::regex started(R"(worker (\d+) \(engine \d+, pid (\d+)\) started)");
  std::vector<std::pair<unsigned, pid_t>> out;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), started);
       it != std::sregex_iterator(); ++it) {
    out.emplace_back(std::stoul((*it)[1]), static_cast<pid_t>(std::stol((*it)[2])));
  }
  return out;
}

/// Waits (bounded) until the supervisor has logged `n` worker starts.
bool wait_starts(const troupe::test::child_process& p, std::size_t n,
                 std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (started_workers(p.output()).size() >= n) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

/// Whether `pid` is a live process whose command line holds `marker` (so
/// that a PID the kernel gave to someone else since does not count).
bool alive_with(pid_t pid, const std::string& marker) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return cmdline.find(marker) != std::string::npos;
}

/// Asks a crash.bomb for its engine; the reply's JSON, or the error.
std::pair<int, std::string> ping(const std::string& admin, const std::string& bomb) {
  return cli({"ask", "--admin", admin, bomb, "{}", "--type", "crash.ping"});
}

/// Prints a process's output to stderr if the test ends by a failed REQUIRE
/// (Catch2's INFO would capture it before anything happened).
class output_on_failure {
 public:
  explicit output_on_failure(const troupe::test::child_process& p) : p_(p) {}
  output_on_failure(const output_on_failure&) = delete;
  output_on_failure& operator=(const output_on_failure&) = delete;
  ~output_on_failure() {
    if (std::uncaught_exceptions() > 0) {
      std::cerr << "--- output of the troupe serve --workers process tree ---\n"
                << p_.output() << "--- end of output ---\n";
    }
  }

 private:
  const troupe::test::child_process& p_;
};

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("plan_workers gives each worker its own engine id and ports", "[workers]") {
  troupe::serve_config cfg;
  cfg.engine_id = 5;
  cfg.listen = "127.0.0.1:7000";
  cfg.admin = "127.0.0.1:7100";
  const std::vector<std::string> argv = {"troupe",
                                         "--log-level",
                                         "info",
                                         "serve",
                                         "--workers",
                                         "3",
                                         "--listen",
                                         "127.0.0.1:7000",
                                         "--admin=127.0.0.1:7100",
                                         "--engine-id",
                                         "5",
                                         "--module",
                                         "m.so"};
  std::string error;
  auto plan = troupe::plan_workers(cfg, argv, 3, error);
  REQUIRE(plan);
  REQUIRE(plan->size() == 3);
  const auto& w2 = (*plan)[2];
  CHECK(w2.index == 2);
  CHECK(w2.engine_id == 7);
  CHECK(w2.listen == "127.0.0.1:7002");
  CHECK(w2.admin == "127.0.0.1:7102");
  CHECK(w2.argv == std::vector<std::string>{"troupe", "--log-level", "info", "serve", "--module",
                                            "m.so", "--engine-id", "7", "--listen",
                                            "127.0.0.1:7002", "--admin", "127.0.0.1:7102",
                                            "--convention", "127.0.0.1:7000"});
  CHECK((*plan)[0].argv.back() == "127.0.0.1:7000");  // worker 0 leads: listen == convention

  SECTION("a given convention is joined by all, an admin port 0 stays 0") {
    cfg.convention.leader = "10.0.0.1:7000";
    cfg.admin = "127.0.0.1:0";
    plan = troupe::plan_workers(cfg, {"troupe", "serve", "--workers", "2"}, 2, error);
    REQUIRE(plan);
    for (const auto& w : *plan) {
      CHECK(w.admin == "127.0.0.1:0");
      CHECK(std::find(w.argv.begin(), w.argv.end(), "--convention") == w.argv.end());
    }
  }
  SECTION("no admin endpoint: none for the workers either") {
    cfg.admin.clear();
    plan = troupe::plan_workers(cfg, {"troupe", "serve"}, 2, error);
    REQUIRE(plan);
    CHECK((*plan)[1].admin.empty());
    CHECK(std::find((*plan)[1].argv.begin(), (*plan)[1].argv.end(), "--admin") ==
          (*plan)[1].argv.end());
  }
  SECTION("what cannot be split is refused with the flag to change") {
    cfg.listen.clear();
    CHECK_FALSE(troupe::plan_workers(cfg, argv, 3, error));
    CHECK(error.find("--workers needs --listen HOST:PORT") != std::string::npos);
    cfg.listen = "127.0.0.1:0";
    CHECK_FALSE(troupe::plan_workers(cfg, argv, 3, error));
    CHECK(error.find("(got '127.0.0.1:0')") != std::string::npos);
    cfg.listen = "127.0.0.1:65535";
    CHECK_FALSE(troupe::plan_workers(cfg, argv, 2, error));
    CHECK(error.find("would need port 65536") != std::string::npos);
    cfg.listen = "127.0.0.1:7099";
    CHECK_FALSE(troupe::plan_workers(cfg, argv, 3, error));
    CHECK(error.find("overlap") != std::string::npos);
    cfg.listen = "127.0.0.1:7000";
    cfg.engine_id = 0xFFFFFFFEu;
    CHECK_FALSE(troupe::plan_workers(cfg, argv, 2, error));
    CHECK(error.find("--engine-id") != std::string::npos);
  }
}

TEST_CASE("troupe serve --workers refuses bad combinations before it starts anything",
          "[workers][binary]") {
  {
    auto [code, out] = cli({"serve", "--workers", "2", "--shards", "1"});
    CHECK(code == 2);
    CHECK(out.find("--workers needs --listen HOST:PORT") != std::string::npos);
  }
  {
    auto [code, out] =
        cli({"serve", "--workers", "2", "--listen", "127.0.0.1:7000", "--admin", "127.0.0.1:7001"});
    CHECK(code == 2);
    CHECK(out.find("overlap") != std::string::npos);
  }
  {
    auto [code, out] = cli({"serve", "--workers", "0", "--listen", "127.0.0.1:7000"});
    CHECK(code != 0);
    CHECK(out.find("--workers") != std::string::npos);
  }
  {
    auto [code, out] = cli({"serve", "--workers", "65", "--listen", "127.0.0.1:7000"});
    CHECK(code != 0);
    CHECK(out.find("--workers") != std::string::npos);
  }
}

TEST_CASE("a native crash in one worker kills only its process, and the parent restarts it",
          "[workers][processes]") {
  held_ports hold;
  const std::uint16_t link = hold.run_of(3);
  const std::uint16_t admin = hold.run_of(3);
  REQUIRE(link != 0);
  REQUIRE(admin != 0);
  hold.release();
  const std::string admin0 = admin_of(admin), admin1 = admin_of(admin + 1),
                    admin2 = admin_of(admin + 2);
  const std::string listen = "127.0.0.1:" + std::to_string(link);

  troupe::test::child_process parent(
      {TROUPE_BINARY, "serve", "--workers", "3", "--listen", listen, "--admin", admin0, "--module",
       TEST_CRASH_MODULE, "--heartbeat", "100", "--peer-timeout", "1000", "--shards", "1"});
  const output_on_failure show(parent);
  REQUIRE(wait_starts(parent, 3, 10s));
  std::map<unsigned, pid_t> first;
  for (auto [index, pid] : started_workers(parent.output())) first.emplace(index, pid);
  REQUIRE(first.size() == 3);
  CHECK(parent.output().find("pid " + std::to_string(parent.pid()) + ", 3 workers") !=
        std::string::npos);

  // One convention: worker 0 leads, and every worker serves its own admin.
  REQUIRE(wait_members(admin0, 3, 20s));
  REQUIRE(wait_members(admin2, 3, 10s));

  // Idle, the supervisor sleeps in sigtimedwait: no CPU at all.
  {
    const long before = parent.cpu_ticks();
    std::this_thread::sleep_for(1s);
    CHECK(parent.cpu_ticks() - before <= 1);
  }

  auto [code1, bomb1] = cli({"spawn", "crash.bomb", "--admin", admin1});
  REQUIRE(code1 == 0);
  bomb1 = trimmed(bomb1);
  CHECK(bomb1.rfind("2:", 0) == 0);  // on worker 1, engine 2
  auto [code2, bomb2] = cli({"spawn", "crash.bomb", "--admin", admin2});
  REQUIRE(code2 == 0);
  bomb2 = trimmed(bomb2);
  CHECK(bomb2.rfind("3:", 0) == 0);
  {
    auto [code, out] = ping(admin2, bomb2);
    REQUIRE(code == 0);
    CHECK(out.find(R"({"engine":3})") != std::string::npos);
    // and through worker 0, over the link between the two engines
    auto [code0, out0] = ping(admin0, bomb2);
    CHECK(code0 == 0);
    CHECK(out0.find(R"({"engine":3})") != std::string::npos);
  }

  // The tell is accepted (202) and the handler aborts: the answer may or may
  // not leave before the process ends.
  {
    auto [code, out] = cli({"tell", "--admin", admin1, bomb1, "{}", "--type", "crash.boom"});
    CHECK((code == 0 || code == 3));
  }
  const std::string died = "worker 1 (engine 2, pid " + std::to_string(first[1]) +
                           ") died: signal 6 (Aborted); restarting in 100 ms";
  REQUIRE(parent.wait_for_output(died, 10s));
  CHECK_FALSE(alive_with(first[1], listen));  // reaped, not a zombie
  REQUIRE(wait_starts(parent, 4, 10s));
  const auto restarted = started_workers(parent.output()).back();
  CHECK(restarted.first == 1);
  CHECK(restarted.second != first[1]);

  // It rejoins under the same engine id and ports; the others never left.
  REQUIRE(wait_members(admin0, 3, 30s));
  REQUIRE(wait_members(admin1, 3, 30s));
  {
    auto [code, out] = cli({"status", "--admin", admin1});
    CHECK(code == 0);
    CHECK(out.find("engine 2:") != std::string::npos);
  }
  {
    auto [code, out] = ping(admin2, bomb2);
    CHECK(code == 0);
    CHECK(out.find(R"({"engine":3})") != std::string::npos);
  }
  CHECK(alive_with(first[0], listen));
  CHECK(alive_with(first[2], listen));
  CHECK(started_workers(parent.output()).size() == 4);  // only worker 1 started again

  // SIGTERM to the parent stops every worker, and the parent exits 0.
  parent.signal(SIGTERM);
  const auto status = parent.wait_exit(30s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(parent.output().find("supervisor: all workers stopped; restarts: 1") != std::string::npos);
  for (auto [index, pid] : started_workers(parent.output())) {
    INFO("worker " << index << ", pid " << pid);
    CHECK_FALSE(alive_with(pid, listen));
  }
}

TEST_CASE("the configuration's workers key runs that many workers, each an engine of its own",
          "[workers][processes]") {
  held_ports hold;
  const std::uint16_t link = hold.run_of(2);
  const std::uint16_t admin = hold.run_of(2);
  REQUIRE(link != 0);
  REQUIRE(admin != 0);
  hold.release();
  const std::string listen = "127.0.0.1:" + std::to_string(link);
  char dir_template[] = "/tmp/troupe-workers-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string config = std::string(dir_template) + "/engine.json";
  {
    std::ofstream out(config);
    out << R"({"workers": 2, "shards": 1, "listen": ")" << listen << R"(", "admin": ")"
        << admin_of(admin) << R"(", "heartbeat_ms": 100, "peer_timeout_ms": 1000})";
  }
  troupe::test::child_process parent({TROUPE_BINARY, "serve", "--config", config});
  const output_on_failure show(parent);
  REQUIRE(wait_starts(parent, 2, 10s));
  CHECK(parent.output().find(", 2 workers") != std::string::npos);
  // The workers read the same file and run engines, not parents of their own.
  REQUIRE(wait_members(admin_of(admin), 2, 20s));
  REQUIRE(wait_members(admin_of(admin + 1), 2, 10s));
  CHECK(started_workers(parent.output()).size() == 2);

  parent.signal(SIGTERM);
  const auto status = parent.wait_exit(30s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  for (auto [index, pid] : started_workers(parent.output())) {
    INFO("worker " << index << ", pid " << pid);
    CHECK_FALSE(alive_with(pid, config));
  }
  std::remove(config.c_str());
  ::rmdir(dir_template);
}
