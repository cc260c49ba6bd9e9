// The cluster demo (scripts/cluster-demo.sh): a local convention of engine
// processes — a leader and two members — with this program as one more
// member that keeps workers placed over it and sends them jobs. Midway it
// kills a member (kill -9) and later adds one, and prints a timeline:
// when the loss was detected, when the lost workers ran again elsewhere,
// when the new member took work, and what became of every job sent.
//
//   troupe-cluster-demo --troupe build-release/engine/troupe --module build-release/.../demo.so

#include <CLI/CLI.hpp>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "messages.hpp"
#include "troupe/convention.hpp"
#include "troupe/convention_supervisor.hpp"
#include "troupe/remote.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

clk::time_point t_start;
double ms_since_start(clk::time_point t = clk::now()) {
  return std::chrono::duration<double, std::milli>(t - t_start).count();
}

void say(const std::string& what) { std::printf("%9.1f ms  %s\n", ms_since_start(), what.c_str()); }

/// An engine process (`troupe serve`), its output in a file; ended by PID.
struct engine_process {
  pid_t pid = -1;
  std::uint32_t id = 0;

  engine_process(const std::string& troupe, std::uint32_t engine, const std::string& listen,
                 const std::string& leader, const std::string& caps, const std::string& module,
                 const std::string& log) {
    id = engine;
    std::vector<std::string> argv = {
        troupe,     "serve",       "--shards",     "1",    "--engine-id",    std::to_string(engine),
        "--listen", listen,        "--convention", leader, "--capabilities", caps,
        "--admin",  "127.0.0.1:0", "--heartbeat",  "100",  "--peer-timeout", "1000",
        "--module", module};
    pid = ::fork();
    if (pid == 0) {
      std::FILE* out = std::fopen(log.c_str(), "w");
      if (out) {
        ::dup2(::fileno(out), 1);
        ::dup2(::fileno(out), 2);
      }
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  void kill_now() {
    if (pid > 0) ::kill(pid, SIGKILL);
  }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 400; ++i) {  // 20 s at most
      if (::waitpid(pid, nullptr, WNOHANG) == pid) {
        pid = -1;
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
  ~engine_process() { stop(); }
};

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// Convention updates, timestamped as they arrive.
struct update_log {
  std::mutex lock;
  std::vector<std::pair<double, troupe::convention_update>> all;
  std::optional<double> first(troupe::convention_update::change what, std::uint32_t engine) {
    std::lock_guard g(lock);
    for (auto& [t, u] : all) {
      if (u.what == what && u.who.engine == engine) return t;
    }
    return std::nullopt;
  }
};
update_log updates;

struct update_printer : troupe::actor<update_printer, troupe::convention_update> {
  void on(const troupe::convention_update& u) {
    {
      std::lock_guard g(updates.lock);
      updates.all.emplace_back(ms_since_start(), u);
    }
    say("convention: engine " + std::to_string(u.who.engine) + " " + troupe::to_string(u.what) +
        (u.why.empty() ? "" : " (" + u.why + ")"));
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"troupe-cluster-demo: a local convention that loses a member and gains one"};
  std::string troupe_binary, module, logs = "/tmp";
  unsigned workers = 6;
  double seconds = 9;
  app.add_option("--troupe", troupe_binary, "the troupe binary")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--module", module, "the demo module (demo.so)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--workers", workers, "workers kept placed over the members")
      ->check(CLI::Range(1u, 64u));
  app.add_option("--seconds", seconds, "how long the workload runs")->check(CLI::Range(6.0, 600.0));
  app.add_option("--logs", logs, "where the engines' logs go")->check(CLI::ExistingDirectory);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  troupe::register_message<demo::job>("demo.job");
  troupe::register_message<demo::job_done>("demo.job_done");

  t_start = clk::now();
  const std::string leader = "127.0.0.1:" + std::to_string(free_port());
  const std::string worker_caps = R"({"role": "worker"})";
  std::map<std::uint32_t, std::unique_ptr<engine_process>> engines;
  auto start = [&](std::uint32_t id, const std::string& listen, const std::string& caps) {
    engines[id] = std::make_unique<engine_process>(
        troupe_binary, id, listen, leader, caps, module,
        logs + "/troupe-cluster-demo-engine-" + std::to_string(id) + ".log");
    say("started engine " + std::to_string(id) + " (pid " + std::to_string(engines[id]->pid) + ")");
  };
  start(1, leader, R"({"role": "leader"})");
  start(2, "127.0.0.1:0", worker_caps);
  start(3, "127.0.0.1:0", worker_caps);

  troupe::system_options o;
  o.engine_id = 10;
  o.shards = 1;
  troupe::system sys(
      o, troupe::with_links({.listen = "127.0.0.1:0", .heartbeat = 100ms, .peer_timeout = 1s}),
      troupe::with_convention(
          {.leader = leader, .capabilities = {{"role", "driver"}}, .load_every = 200ms}));
  troupe::subscribe_convention(sys, sys.spawn<update_printer>());

  auto members_up = [&](std::size_t n, std::chrono::milliseconds limit) {
    const auto end = clk::now() + limit;
    while (clk::now() < end) {
      auto m = troupe::members(sys);
      if (m && m.value().size() >= n) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  if (!members_up(4, 15s)) {
    std::fprintf(stderr,
                 "the convention did not form within 15 s; see %s/troupe-cluster-demo-*.log\n",
                 logs.c_str());
    return 1;
  }
  say("convention formed: engines 1 (leader), 2, 3 and this driver (10)");

  troupe::place_options spread;
  spread.requirements = {{"role", "worker"}};
  spread.prefer_local = false;
  std::vector<troupe::placed_child> specs(workers,
                                          troupe::placed_child{"demo.worker", nullptr, spread});
  const troupe::address sup = sys.spawn<troupe::convention_supervisor>(specs);
  auto children = [&] {
    auto r = sys.ask<troupe::placed_children>(sup, troupe::placed_children_query{}, 2s);
    return r ? r.value() : troupe::placed_children{};
  };
  auto where_they_are = [&](const troupe::placed_children& c) {
    std::map<std::uint32_t, int> on;
    for (const auto& a : c.children) {
      if (!a.is_null()) ++on[a.engine()];
    }
    std::string s;
    for (auto [e, n] : on)
      s += (s.empty() ? "" : ", ") + std::to_string(n) + " on engine " + std::to_string(e);
    return s;
  };
  for (int i = 0; i < 500; ++i) {
    auto c = children();
    if (!c.children.empty() && std::none_of(c.children.begin(), c.children.end(),
                                            [](const troupe::address& a) { return a.is_null(); })) {
      say("workers placed: " + where_they_are(c));
      break;
    }
    std::this_thread::sleep_for(10ms);
  }

  // The workload: jobs asked of the workers in turn, from this thread.
  std::uint64_t sent = 0, answered = 0, failed = 0, wrong = 0;
  std::map<std::uint32_t, std::uint64_t> by_engine;
  std::map<std::string, std::uint64_t> failures;
  const auto work_start = clk::now();
  const auto kill_at = work_start + std::chrono::duration<double>(seconds * 0.3);
  const auto add_at = work_start + std::chrono::duration<double>(seconds * 0.55);
  const auto work_end = work_start + std::chrono::duration<double>(seconds);
  bool killed = false, added = false, recovered = false, new_used = false;
  double killed_ms = 0, recovered_ms = 0, added_ms = 0, new_used_ms = 0;
  troupe::placed_children current = children();
  auto last_refresh = clk::now();
  std::size_t next = 0;
  troupe::address more_sup;
  while (clk::now() < work_end) {
    if (clk::now() - last_refresh > 20ms) {
      current = children();
      if (new_used) {  // the later workers take jobs too
        auto r = sys.ask<troupe::placed_children>(more_sup, troupe::placed_children_query{}, 2s);
        if (r) {
          for (const auto& b : r.value().children) {
            if (!b.is_null()) current.children.push_back(b);
          }
        }
      }
      last_refresh = clk::now();
      if (killed && !recovered && !current.children.empty() &&
          std::all_of(current.children.begin(), current.children.end(),
                      [](const troupe::address& a) { return !a.is_null() && a.engine() != 2; })) {
        recovered = true;
        recovered_ms = ms_since_start();
        say("all workers run again: " + where_they_are(current));
      }
    }
    if (!killed && clk::now() >= kill_at) {
      engines[2]->kill_now();
      killed = true;
      killed_ms = ms_since_start();
      say("killed engine 2 (kill -9 pid " + std::to_string(engines[2]->pid) + ")");
    }
    if (!added && clk::now() >= add_at) {
      start(4, "127.0.0.1:0", worker_caps);
      added = true;
      added_ms = ms_since_start();
    }
    auto linked_to_four = [&] {
      const auto e = sys.engines();
      return std::find(e.begin(), e.end(), 4u) != e.end();
    };
    if (added && more_sup.is_null() &&
        updates.first(troupe::convention_update::change::joined, 4) && linked_to_four()) {
      // More work arrives once it has joined: three more workers, spread by load.
      more_sup = sys.spawn<troupe::convention_supervisor>(std::vector<troupe::placed_child>(
          3, troupe::placed_child{"demo.worker", nullptr, spread}));
    }
    if (added && !new_used && !more_sup.is_null()) {
      auto r = sys.ask<troupe::placed_children>(more_sup, troupe::placed_children_query{}, 2s);
      if (r) {
        for (const auto& a : r.value().children) {
          if (!a.is_null() && a.engine() == 4) {
            new_used = true;
            new_used_ms = ms_since_start();
            say("engine 4 took work: " + where_they_are(r.value()));
            break;
          }
        }
      }
    }
    if (current.children.empty()) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    const troupe::address to = current.children[next++ % current.children.size()];
    if (to.is_null()) continue;
    ++sent;
    auto r = sys.ask<demo::job_done>(to, demo::job{sent}, 500ms);
    if (r) {
      ++answered;
      ++by_engine[r.value().engine];
      if (r.value().twice != 2 * sent) ++wrong;
    } else {
      ++failed;
      ++failures[troupe::to_string(r.err().code())];
    }
  }
  const double work_s = std::chrono::duration<double>(clk::now() - work_start).count();

  std::printf("\ntimeline\n");
  const auto lost = updates.first(troupe::convention_update::change::lost, 2);
  const auto joined4 = updates.first(troupe::convention_update::change::joined, 4);
  if (lost)
    std::printf("  detection: engine 2's loss seen %.1f ms after the kill\n", *lost - killed_ms);
  else
    std::printf("  detection: engine 2's loss was not seen\n");
  if (recovered)
    std::printf("  restart:   its workers ran elsewhere %.1f ms after the kill\n",
                recovered_ms - killed_ms);
  else
    std::printf("  restart:   its workers were not placed again\n");
  if (joined4)
    std::printf("  join:      engine 4 joined %.1f ms after it was started\n", *joined4 - added_ms);
  if (new_used) {
    std::printf("  new work:  engine 4 had workers %.1f ms after it was started\n",
                new_used_ms - added_ms);
  } else if (!more_sup.is_null()) {
    auto r = sys.ask<troupe::placed_children>(more_sup, troupe::placed_children_query{}, 2s);
    std::printf("  new work:  not on engine 4: %s\n", r ? where_they_are(r.value()).c_str() : "?");
  } else {
    std::printf("  new work:  engine 4 was never linked to this engine\n");
  }
  std::printf("\njobs (%.1f s)\n", work_s);
  std::printf(
      "  sent %llu, answered %llu, failed %llu (dead-lettered or lost with engine 2), %.0f "
      "jobs/s\n",
      static_cast<unsigned long long>(sent), static_cast<unsigned long long>(answered),
      static_cast<unsigned long long>(failed), static_cast<double>(answered) / work_s);
  for (const auto& [why, n] : failures)
    std::printf("    %llu failed: %s\n", static_cast<unsigned long long>(n), why.c_str());
  for (const auto& [e, n] : by_engine)
    std::printf("    %llu answered by engine %u\n", static_cast<unsigned long long>(n), e);
  const troupe::stats st = sys.counters();
  std::printf("  this engine: %llu messages sent, %llu delivered, %llu dead letters\n",
              static_cast<unsigned long long>(st.sent),
              static_cast<unsigned long long>(st.delivered),
              static_cast<unsigned long long>(st.dead_letters));

  sys.stop();  // the driver leaves first: its supervisors place nothing more
  for (auto& [id, e] : engines) e->stop();
  const bool ok = sent == answered + failed && wrong == 0 && lost && recovered && new_used;
  if (!ok)
    std::printf("\nFAILED: the demo did not go as it should (see the logs in %s)\n", logs.c_str());
  return ok ? 0 : 1;
}
