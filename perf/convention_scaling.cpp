// Scaling over a convention: the same pool workload in 1, 2, 4, ... engine
// processes that form one convention on this host, each process's pool fed
// by its own generator. It shows what coordination (links, heartbeats, the
// leader's views, load reports between every pair) costs: the total rate
// of N processes against one process that has the whole machine.
//
//   troupe-convention-scaling --processes 1,2,4 --seconds 3
//
// Each N: N child processes (this binary with --child), shards per process
// = max(1, cores / N); all start their workload at one wall-clock instant
// once every one sees the whole convention, run it `seconds`, and print the
// jobs their pool handled. The parent prints the total rate and its ratio
// to N = 1.

#include <CLI/CLI.hpp>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "troupe/convention.hpp"
#include "troupe/remote.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;

namespace {

/// Jobs handled, per shard (each shard has its own pool and generator).
struct alignas(64) shard_count {
  std::atomic<std::uint64_t> n{0};
};
shard_count handled[256];
std::atomic<bool> running{false};

struct job {
  std::uint64_t n;
};
struct feed {};

/// A worker's job: a little arithmetic, then counted.
struct worker : troupe::actor<worker, job> {
  void on(const job& j) {
    std::uint64_t x = j.n;
    for (int i = 0; i < 64; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
    sink_ += x;
    handled[shard_index()].n.fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t sink_ = 0;
};

/// Keeps at most `window` jobs in flight to its shard's pool.
struct generator : troupe::actor<generator, feed> {
  generator(troupe::address pool, std::uint64_t window) : pool_(pool), window_(window) {}
  void on(const feed&) {
    if (!running.load(std::memory_order_relaxed)) return;
    const std::uint64_t done = handled[shard_index()].n.load(std::memory_order_relaxed);
    std::uint64_t sent_now = 0;
    if (sent_ - done < window_) {
      sent_now = 512;
      for (std::uint64_t i = 0; i < sent_now; ++i) tell(pool_, job{sent_ + i});
      sent_ += sent_now;
    }
    if (sent_now == 0) {
      wakeup_after(20us, feed{});
    } else {
      tell(self(), feed{});
    }
  }
  troupe::address pool_;
  std::uint64_t window_;
  std::uint64_t sent_ = 0;
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

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int child(std::uint32_t engine, const std::string& leader, unsigned processes, unsigned shards,
          double seconds, std::int64_t start_at) {
  troupe::system_options o;
  o.engine_id = engine;
  o.shards = shards;
  troupe::system sys(
      o, troupe::with_links({.listen = engine == 1 ? leader : "127.0.0.1:0"}),
      troupe::with_convention({.leader = leader, .capabilities = {{"index", engine}}}));
  // The whole convention first, then the workload at the agreed instant.
  for (int i = 0; i < 1000; ++i) {
    auto m = troupe::members(sys);
    if (m && m.value().size() >= processes && wall_ms() >= start_at) break;
    std::this_thread::sleep_for(10ms);
  }
  while (wall_ms() < start_at) std::this_thread::sleep_for(1ms);
  running = true;
  const auto t0 = std::chrono::steady_clock::now();
  for (unsigned s = 0; s < shards; ++s) {
    troupe::pool_options po;
    po.min_workers = 1;
    po.max_workers = 4;
    po.worker_placement = troupe::spawn_options{.shard = static_cast<int>(s)};
    const troupe::spawn_options here{.shard = static_cast<int>(s)};
    const troupe::address pool = sys.spawn<troupe::pool<worker, job>>(here, po);
    sys.tell(sys.spawn<generator>(here, pool, std::uint64_t{4096}), feed{});
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  std::uint64_t n = 0;
  for (unsigned s = 0; s < shards; ++s) n += handled[s].n.load();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  running = false;
  auto m = troupe::members(sys);
  std::printf("engine %u handled %llu in %.3f s, saw %zu members\n", engine,
              static_cast<unsigned long long>(n), took, m ? m.value().size() : 0);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"troupe-convention-scaling: one pool workload over 1, 2, 4... engine processes"};
  std::string counts = "1,2,4";
  double seconds = 3;
  bool as_child = false, json = false;
  std::uint32_t engine = 0;
  std::string leader;
  unsigned processes = 1, shards = 1;
  std::int64_t start_at = 0;
  app.add_option("--processes", counts, "process counts to run, comma-separated");
  app.add_option("--seconds", seconds, "how long each run lasts")->check(CLI::Range(0.5, 120.0));
  app.add_flag("--json", json, "one JSON object per process count");
  app.add_flag("--child", as_child, "(internal) one engine process of a run");
  app.add_option("--engine-id", engine);
  app.add_option("--leader", leader);
  app.add_option("--of", processes);
  app.add_option("--shards", shards);
  app.add_option("--start-at", start_at);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  if (as_child) {
    spdlog::set_level(spdlog::level::off);  // stdout is the result line
    return child(engine, leader, processes, shards, seconds, start_at);
  }

  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<unsigned> ns;
  {
    std::stringstream in(counts);
    std::string one;
    while (std::getline(in, one, ',')) ns.push_back(static_cast<unsigned>(std::stoul(one)));
  }
  double base = 0;
  for (unsigned n : ns) {
    const std::string lead = "127.0.0.1:" + std::to_string(free_port());
    const unsigned per = std::max(1u, cores / n);
    const std::int64_t at = wall_ms() + 1500 + 200 * static_cast<std::int64_t>(n);
    std::vector<std::pair<pid_t, std::string>> kids;
    for (unsigned i = 0; i < n; ++i) {
      char path[] = "/tmp/troupe-scaling-XXXXXX";
      const int fd = ::mkstemp(path);
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::dup2(fd, 1);
        std::vector<std::string> a = {"/proc/self/exe", "--child",
                                      "--engine-id",    std::to_string(i + 1),
                                      "--leader",       lead,
                                      "--of",           std::to_string(n),
                                      "--shards",       std::to_string(per),
                                      "--seconds",      std::to_string(seconds),
                                      "--start-at",     std::to_string(at)};
        std::vector<char*> args;
        for (auto& s : a) args.push_back(s.data());
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
      }
      ::close(fd);
      kids.emplace_back(pid, path);
    }
    double total = 0;
    bool ok = true;
    for (auto& [pid, path] : kids) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      std::ifstream in(path);
      std::string word;
      unsigned e = 0;
      unsigned long long count = 0;
      double took = 0;
      std::string line;
      while (std::getline(in, line) && line.rfind("engine ", 0) != 0) {
      }
      if (std::sscanf(line.c_str(), "engine %u handled %llu in %lf s", &e, &count, &took) == 3 &&
          took > 0) {
        total += static_cast<double>(count) / took;
      } else {
        ok = false;
        std::fprintf(stderr, "process %d gave no result: %s\n", pid, line.c_str());
      }
      std::remove(path.c_str());
    }
    if (n == ns.front()) base = total;
    const double ratio = base > 0 ? total / base : 0;
    if (json) {
      std::printf(
          "{\"processes\": %u, \"shards_each\": %u, \"jobs_per_s\": %.0f, \"of_first\": %.3f}\n", n,
          per, total, ratio);
    } else {
      std::printf(
          "troupe convention-scaling %u processes (%u shards each): %.0f jobs/s, %.2f of %u\n", n,
          per, total, ratio, ns.front());
    }
    std::fflush(stdout);
    if (!ok) return 1;
  }
  return 0;
}
