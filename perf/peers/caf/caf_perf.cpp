// caf-perf: the Troupe comparison workloads written for CAF 0.17.
//
//   caf-perf --workload NAME --workers W [--n N] [--runs R] [--json]
//            [--max-throughput T] [--policy stealing|sharing]
//
// Workloads: pingpong, fanin-k1, fanin-k2, fanin-k8, ring, spawn, skynet,
// and, when built with CAF's io library, remote-pingpong and remote-pipeline
// (two processes on 127.0.0.1; see caf_remote.hpp). Each run prints one line
// "caf <workload> <value> <unit>" (or one JSON object with --json); spawn
// prints a second "spawn-bytes" line.
//
// All hot paths use event-based actors and asynchronous sends. The main
// thread owns a scoped_actor only to kick a workload off and to wait for its
// single completion message. Each run gets a fresh actor_system, and with
// --runs R > 1 each run happens in a forked child process, so runs share no
// actors, scheduler state or heap.
//
// Scheduler: the default work-stealing policy with scheduler.max-threads = W.
// scheduler.max-throughput (how many messages an actor may handle per resume
// before it yields its worker) is left at CAF 0.17's default, unlimited.
// Note that it counts messages, not bursts: a fan-in sender's `continue` only
// hands the worker back to the scheduler when the limit is 1, and a limit that
// low also throttles the receiver. Measured on the 2-core reference machine,
// limits of 1000 and 100 were within run-to-run noise of unlimited on every
// workload, and 1 or 10 cut fan-in throughput by up to half, so the default
// stays. --max-throughput T sets it anyway (0 = default). --policy sharing
// selects CAF's other scheduler, one shared job queue for all workers.
//
// The fan-in receiver's mailbox is not bounded: CAF has no back-pressure for
// plain sends, so when the senders outpace the receiver its mailbox grows.

#include <caf/all.hpp>

#ifdef CAF_PERF_REMOTE
#include "caf_remote.hpp"
#endif

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace caf;

namespace {

using start_atom = atom_constant<atom("start")>;
using done_atom = atom_constant<atom("done")>;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using msg_atom = atom_constant<atom("msg")>;
using continue_atom = atom_constant<atom("continue")>;
using init_atom = atom_constant<atom("init")>;
using hop_atom = atom_constant<atom("hop")>;
using stop_atom = atom_constant<atom("stop")>;
using value_atom = atom_constant<atom("value")>;

using clock_type = std::chrono::steady_clock;

constexpr int run_limit_seconds = 120;

// -- watchdog -----------------------------------------------------------------

// Kills the process if a run (including its shutdown) takes longer than the
// limit. Blocking receives and the actor_system destructor cannot be given a
// deadline themselves, so a separate thread enforces it.
class watchdog {
 public:
  watchdog() : thread_([this] { loop(); }) {}

  ~watchdog() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // With a child pid, the child process is killed on expiry as well.
  void arm(const std::string& what, pid_t child = 0) {
    std::lock_guard<std::mutex> guard{mtx_};
    what_ = what;
    child_ = child;
    deadline_ = clock_type::now() + std::chrono::seconds(run_limit_seconds);
    armed_ = true;
    cv_.notify_all();
  }

  void disarm() {
    std::lock_guard<std::mutex> guard{mtx_};
    armed_ = false;
    cv_.notify_all();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> guard{mtx_};
    while (!quit_) {
      if (!armed_) {
        cv_.wait(guard);
        continue;
      }
      if (cv_.wait_until(guard, deadline_) == std::cv_status::timeout && armed_ &&
          clock_type::now() >= deadline_) {
        std::fprintf(stderr, "caf-perf: workload %s did not finish within %d s\n", what_.c_str(),
                     run_limit_seconds);
        std::fflush(stderr);
        if (child_ > 0) kill(child_, SIGKILL);
        std::fflush(stdout);
        std::_Exit(1);
      }
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  bool quit_ = false;
  bool armed_ = false;
  std::string what_;
  pid_t child_ = 0;
  clock_type::time_point deadline_;
  std::thread thread_;
};

// -- helpers ------------------------------------------------------------------

// Resident set size of this process in bytes, from /proc/self/status.
long long read_rss_bytes() {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 6, "VmRSS:") == 0)
      return std::atoll(line.c_str() + 6) * 1024;  // value is in kB
  }
  return -1;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

struct options {
  std::string workload;
  int workers = 0;
  long long n = -1;  // -1: workload default
  int runs = 1;
  bool json = false;
  long long max_throughput = 0;  // 0: CAF default (unlimited)
  std::string policy;            // empty: CAF default (stealing)
  bool serve_remote = false;     // side B of a remote workload (internal)
};

void report(const options& opts, const std::string& workload, double value, const char* unit) {
  // Rates are printed as integers; bytes/actor with one decimal.
  char num[64];
  if (std::strcmp(unit, "bytes/actor") == 0)
    std::snprintf(num, sizeof(num), "%.1f", value);
  else
    std::snprintf(num, sizeof(num), "%.0f", value);
  if (opts.json)
    std::printf(
        "{\"system\":\"caf\",\"workload\":\"%s\",\"value\":%s,"
        "\"unit\":\"%s\"}\n",
        workload.c_str(), num, unit);
  else
    std::printf("caf %s %s %s\n", workload.c_str(), num, unit);
  std::fflush(stdout);
}

// Builds the configuration shared by all workloads.
void configure(actor_system_config& cfg, const options& opts) {
  cfg.set("scheduler.max-threads", static_cast<int>(opts.workers));
  if (opts.max_throughput > 0)
    cfg.set("scheduler.max-throughput", static_cast<int64_t>(opts.max_throughput));
  if (opts.policy == "sharing")
    cfg.set("scheduler.policy", atom("sharing"));
  else if (opts.policy == "stealing")
    cfg.set("scheduler.policy", atom("stealing"));
}

// -- pingpong -----------------------------------------------------------------

// Answers every ping with a pong; the handler's result goes back to the sender.
behavior pong_actor(event_based_actor*) {
  return {
      [](ping_atom) { return pong_atom::value; },
  };
}

class ping_actor : public event_based_actor {
 public:
  ping_actor(actor_config& cfg, actor pong, actor reporter, uint64_t n)
      : event_based_actor(cfg), pong_(std::move(pong)), reporter_(std::move(reporter)), n_(n) {}

  behavior make_behavior() override {
    return {
        [this](start_atom) { send(pong_, ping_atom::value); },
        [this](pong_atom) {
          if (++count_ == n_) {
            send(reporter_, done_atom::value);
            return;
          }
          send(pong_, ping_atom::value);
        },
    };
  }

 private:
  actor pong_;
  actor reporter_;
  uint64_t n_;
  uint64_t count_ = 0;
};

double run_pingpong(actor_system& sys, uint64_t n) {
  scoped_actor self{sys};
  auto pong = sys.spawn(pong_actor);
  auto ping = sys.spawn<ping_actor>(pong, actor{self}, n);
  auto t0 = clock_type::now();
  self->send(ping, start_atom::value);
  self->receive([](done_atom) {});
  auto elapsed = seconds_since(t0);
  anon_send_exit(ping, exit_reason::user_shutdown);
  anon_send_exit(pong, exit_reason::user_shutdown);
  return static_cast<double>(n) / elapsed;
}

// -- fan-in -------------------------------------------------------------------

class fanin_receiver : public event_based_actor {
 public:
  fanin_receiver(actor_config& cfg, actor reporter, uint64_t n)
      : event_based_actor(cfg), reporter_(std::move(reporter)), n_(n) {}

  behavior make_behavior() override {
    return {
        [this](msg_atom) {
          if (++count_ == n_) {
            send(reporter_, done_atom::value);
            quit();
          }
        },
    };
  }

 private:
  actor reporter_;
  uint64_t n_;
  uint64_t count_ = 0;
};

constexpr uint64_t fanin_burst = 1000;

// Sends its share in bursts; between bursts it re-queues itself through its
// own mailbox so other actors get to run.
class fanin_sender : public event_based_actor {
 public:
  fanin_sender(actor_config& cfg, actor receiver, uint64_t n)
      : event_based_actor(cfg), receiver_(std::move(receiver)), left_(n) {}

  behavior make_behavior() override {
    return {
        [this](continue_atom) {
          auto k = left_ < fanin_burst ? left_ : fanin_burst;
          for (uint64_t i = 0; i < k; ++i) send(receiver_, msg_atom::value);
          left_ -= k;
          if (left_ > 0)
            send(this, continue_atom::value);
          else
            quit();
        },
    };
  }

 private:
  actor receiver_;
  uint64_t left_;
};

double run_fanin(actor_system& sys, uint64_t n, uint64_t k) {
  scoped_actor self{sys};
  // The first n % k senders take one extra message so the total is exactly n.
  auto receiver = sys.spawn<fanin_receiver>(actor{self}, n);
  std::vector<actor> senders;
  for (uint64_t i = 0; i < k; ++i)
    senders.push_back(sys.spawn<fanin_sender>(receiver, n / k + (i < n % k ? 1 : 0)));
  auto t0 = clock_type::now();
  for (auto& s : senders) self->send(s, continue_atom::value);
  self->receive([](done_atom) {});
  return static_cast<double>(n) / seconds_since(t0);
}

// -- ring ---------------------------------------------------------------------

constexpr size_t ring_size = 503;

class ring_node : public event_based_actor {
 public:
  ring_node(actor_config& cfg, actor reporter, uint64_t hops)
      : event_based_actor(cfg), reporter_(std::move(reporter)), hops_(hops) {}

  behavior make_behavior() override {
    return {
        [this](init_atom, actor& next) { next_ = std::move(next); },
        [this](hop_atom, uint64_t count) {
          if (count >= hops_)
            send(reporter_, done_atom::value);
          else
            send(next_, hop_atom::value, count + 1);
        },
    };
  }

 private:
  actor reporter_;
  actor next_;
  uint64_t hops_;
};

double run_ring(actor_system& sys, uint64_t hops) {
  scoped_actor self{sys};
  std::vector<actor> nodes;
  nodes.reserve(ring_size);
  for (size_t i = 0; i < ring_size; ++i) nodes.push_back(sys.spawn<ring_node>(actor{self}, hops));
  for (size_t i = 0; i < ring_size; ++i)
    self->send(nodes[i], init_atom::value, nodes[(i + 1) % ring_size]);
  auto t0 = clock_type::now();
  self->send(nodes[0], hop_atom::value, uint64_t{0});
  self->receive([](done_atom) {});
  auto elapsed = seconds_since(t0);
  // The nodes reference each other in a cycle; stop them explicitly.
  for (auto& node : nodes) anon_send_exit(node, exit_reason::user_shutdown);
  return static_cast<double>(hops) / elapsed;
}

// -- spawn --------------------------------------------------------------------

behavior idle_actor(event_based_actor* self) {
  return {
      [=](stop_atom) { self->quit(); },
  };
}

// Spawns the idle actors with lazy_init: CAF then creates each actor without
// scheduling it, and runs its initialization when the first message arrives.
// This is CAF's intended way to create many actors that sit idle. Spawning
// them eagerly from one actor instead puts one initialization job per actor
// into the spawner's worker queue, and in CAF 0.17 each steal from that queue
// by the other worker walks the whole list (double_ended_queue::take_tail is
// O(length)), which makes 1M spawns take minutes (200k did not finish within
// the 120 s limit on the 2-core reference machine).
//
// So the idle actors measured here have never run; an eagerly initialized
// idle actor measured about 70 bytes more (about 1220 instead of 1150 bytes
// per actor at 30k actors).
//
// The handles go into a vector owned by the caller, sized up front so that it
// is already resident when the "before" RSS is taken: bytes/actor then counts
// the actors only.
class spawner : public event_based_actor {
 public:
  spawner(actor_config& cfg, actor reporter, std::vector<actor>* children)
      : event_based_actor(cfg), reporter_(std::move(reporter)), children_(children) {}

  behavior make_behavior() override {
    return {
        [this](start_atom) {
          for (auto& child : *children_) child = spawn<lazy_init>(idle_actor);
          send(reporter_, done_atom::value);
          quit();
        },
    };
  }

 private:
  actor reporter_;
  std::vector<actor>* children_;
};

struct spawn_result {
  double rate;
  double bytes_per_actor;
};

spawn_result run_spawn(actor_system& sys, uint64_t n) {
  scoped_actor self{sys};
  std::vector<actor> children(n);
  auto sp = sys.spawn<spawner>(actor{self}, &children);
  auto rss_before = read_rss_bytes();
  auto t0 = clock_type::now();
  self->send(sp, start_atom::value);
  self->receive([](done_atom) {});
  auto elapsed = seconds_since(t0);
  auto rss_after = read_rss_bytes();
  // Stop them from this (non-worker) thread: CAF spreads the wake-ups of the
  // stopped actors round-robin over the workers.
  for (auto& child : children) anon_send(child, stop_atom::value);
  children.clear();
  return {static_cast<double>(n) / elapsed,
          static_cast<double>(rss_after - rss_before) / static_cast<double>(n)};
}

// -- skynet -------------------------------------------------------------------

constexpr int64_t skynet_fanout = 10;

class skynet_node : public event_based_actor {
 public:
  skynet_node(actor_config& cfg, actor parent, int64_t num, int64_t size)
      : event_based_actor(cfg), parent_(std::move(parent)), num_(num), size_(size) {}

  behavior make_behavior() override {
    if (size_ == 1) {
      send(parent_, value_atom::value, num_);
      quit();
      return {};
    }
    auto sub = size_ / skynet_fanout;
    for (int64_t i = 0; i < skynet_fanout; ++i)
      spawn<skynet_node>(actor_cast<actor>(this), num_ + i * sub, sub);
    return {
        [this](value_atom, int64_t value) {
          sum_ += value;
          if (++replies_ == skynet_fanout) {
            send(parent_, value_atom::value, sum_);
            quit();
          }
        },
    };
  }

 private:
  actor parent_;
  int64_t num_;
  int64_t size_;
  int64_t sum_ = 0;
  int64_t replies_ = 0;
};

struct skynet_result {
  double rate;
  int64_t sum;
  int64_t expected;
};

// `leaves` must be a power of 10.
skynet_result run_skynet(actor_system& sys, int64_t leaves) {
  int64_t actors = 0;
  for (int64_t level = 1; level <= leaves; level *= skynet_fanout) actors += level;
  scoped_actor self{sys};
  int64_t sum = -1;
  auto t0 = clock_type::now();
  sys.spawn<skynet_node>(actor{self}, int64_t{0}, leaves);
  self->receive([&](value_atom, int64_t value) { sum = value; });
  auto elapsed = seconds_since(t0);
  return {static_cast<double>(actors) / elapsed, sum, leaves * (leaves - 1) / 2};
}

// -- command line -------------------------------------------------------------

[[noreturn]] void usage(const char* msg) {
  if (msg) std::fprintf(stderr, "caf-perf: %s\n", msg);
  std::fprintf(stderr,
               "usage: caf-perf --workload NAME --workers W [--n N] [--runs R]"
               " [--json] [--max-throughput T] [--policy stealing|sharing]\n"
               "workloads: pingpong fanin-k1 fanin-k2 fanin-k8 ring spawn"
               " skynet"
#ifdef CAF_PERF_REMOTE
               " remote-pingpong remote-pipeline"
#endif
               "\n");
  std::exit(2);
}

long long parse_number(const char* flag, const char* text) {
  char* end = nullptr;
  auto value = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || value < 0) {
    std::fprintf(stderr, "caf-perf: bad value for %s: %s\n", flag, text);
    std::exit(2);
  }
  return value;
}

options parse_args(int argc, char** argv) {
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(("missing value for " + arg).c_str());
      return argv[++i];
    };
    if (arg == "--workload")
      opts.workload = value();
    else if (arg == "--workers")
      opts.workers = static_cast<int>(parse_number("--workers", value()));
    else if (arg == "--n")
      opts.n = parse_number("--n", value());
    else if (arg == "--runs")
      opts.runs = static_cast<int>(parse_number("--runs", value()));
    else if (arg == "--json")
      opts.json = true;
    else if (arg == "--max-throughput")
      opts.max_throughput = parse_number("--max-throughput", value());
    else if (arg == "--policy")
      opts.policy = value();
    else if (arg == "--serve-remote")
      opts.serve_remote = true;
    else if (arg == "--help" || arg == "-h")
      usage(nullptr);
    else
      usage(("unknown argument " + arg).c_str());
  }
  if (opts.workload.empty()) usage("--workload is required");
  if (opts.workers < 1) usage("--workers must be at least 1");
  if (opts.runs < 1) usage("--runs must be at least 1");
  if (opts.n == 0) usage("--n must be positive");
  if (!opts.policy.empty() && opts.policy != "stealing" && opts.policy != "sharing")
    usage("--policy must be stealing or sharing");
  return opts;
}

uint64_t n_or(const options& opts, uint64_t fallback) {
  return opts.n > 0 ? static_cast<uint64_t>(opts.n) : fallback;
}

#ifdef CAF_PERF_REMOTE
// The command line of side B: this program in serve mode with the same
// scheduler settings.
std::vector<std::string> serve_args(const options& opts) {
  std::vector<std::string> args{"--serve-remote", "--workload", opts.workload, "--workers",
                                std::to_string(opts.workers)};
  if (opts.max_throughput > 0) {
    args.emplace_back("--max-throughput");
    args.push_back(std::to_string(opts.max_throughput));
  }
  if (!opts.policy.empty()) {
    args.emplace_back("--policy");
    args.push_back(opts.policy);
  }
  return args;
}

bool run_remote_once(const options& opts) {
  actor_system_config cfg;
  configure(cfg, opts);
  const auto& w = opts.workload;
  try {
    auto n = n_or(opts, caf_perf::remote_default_n(w));
    auto rate = caf_perf::run_remote(cfg, w, n, serve_args(opts));
    report(opts, w, rate, w == "remote-pingpong" ? "rt/s" : "msg/s");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "caf-perf: %s: %s\n", w.c_str(), e.what());
    return false;
  }
  return true;
}
#endif

// Runs one repetition of the selected workload; returns false on failure.
bool run_once(const options& opts) {
#ifdef CAF_PERF_REMOTE
  if (caf_perf::is_remote_workload(opts.workload)) return run_remote_once(opts);
#endif
  actor_system_config cfg;
  configure(cfg, opts);
  actor_system sys{cfg};
  const auto& w = opts.workload;
  if (w == "pingpong") {
    report(opts, w, run_pingpong(sys, n_or(opts, 2000000)), "rt/s");
  } else if (w == "fanin-k1" || w == "fanin-k2" || w == "fanin-k8") {
    uint64_t k = static_cast<uint64_t>(w.back() - '0');
    report(opts, w, run_fanin(sys, n_or(opts, 8000000), k), "msg/s");
  } else if (w == "ring") {
    report(opts, w, run_ring(sys, n_or(opts, 10000000)), "hops/s");
  } else if (w == "spawn") {
    auto res = run_spawn(sys, n_or(opts, 1000000));
    report(opts, w, res.rate, "spawn/s");
    report(opts, "spawn-bytes", res.bytes_per_actor, "bytes/actor");
  } else if (w == "skynet") {
    auto leaves = static_cast<int64_t>(n_or(opts, 1000000));
    auto res = run_skynet(sys, leaves);
    if (res.sum != res.expected) {
      std::fprintf(stderr, "caf-perf: skynet sum %lld, expected %lld\n",
                   static_cast<long long>(res.sum), static_cast<long long>(res.expected));
      return false;
    }
    report(opts, w, res.rate, "actors/s");
  } else {
    usage(("unknown workload " + w).c_str());
  }
  return true;  // ~actor_system waits for all actors to terminate
}

}  // namespace

int main(int argc, char** argv) {
  auto opts = parse_args(argc, argv);
  if (opts.workload == "skynet" && opts.n > 0) {
    long long p = 1;
    while (p < opts.n) p *= skynet_fanout;
    if (p != opts.n || opts.n < skynet_fanout)
      usage("skynet --n (number of leaves) must be a power of 10, >= 10");
  }
  watchdog dog;
  if (opts.serve_remote) {
#ifdef CAF_PERF_REMOTE
    if (!caf_perf::is_remote_workload(opts.workload))
      usage("--serve-remote needs a remote workload");
    // Bounded like a run; normally the measuring process ends it much sooner.
    dog.arm("serving " + opts.workload);
    actor_system_config cfg;
    configure(cfg, opts);
    caf_perf::serve_remote(cfg, opts.workload);
    return 1;  // serve_remote returns only on failure
#else
    usage("built without CAF's io library: no remote workloads");
#endif
  }
  if (opts.runs == 1) {
    dog.arm(opts.workload);
    bool ok = run_once(opts);
    dog.disarm();
    return ok ? 0 : 1;
  }
  // Several runs: each in a forked child, so that every run starts from a
  // fresh heap. Otherwise a later spawn run reuses the memory the previous
  // one freed, and both its RSS delta and its speed are meaningless.
  for (int run = 0; run < opts.runs; ++run) {
    std::fflush(stdout);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("caf-perf: fork");
      return 1;
    }
    if (pid == 0) {
      // The run dies with this process, even when it is killed outright.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) std::_Exit(1);
      bool ok = run_once(opts);
      std::fflush(stdout);
      std::_Exit(ok ? 0 : 1);
    }
    dog.arm(opts.workload, pid);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) {
        std::perror("caf-perf: waitpid");
        return 1;
      }
    }
    dog.disarm();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  return 0;
}
