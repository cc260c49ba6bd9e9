// troupe-perf: the engine's side of the comparison workloads. The same
// workloads, with the same definitions, are in perf/peers/caf and
// perf/peers/erlang; perf/compare.sh runs them all in one go.
//
//   troupe-perf --workload NAME --shards S [--n N] [--runs R] [--json]
//
// Each run prints `troupe <workload> <value> <unit>` (or a JSON object);
// with several runs a closing `# ... median min max` comment line follows.

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "troupe/remote.hpp"
#include "troupe/troupe.hpp"

using namespace std::chrono_literals;
using troupe::address;
using clock_type = std::chrono::steady_clock;

namespace {

template <class T>
void do_not_optimize(T& value) {
  asm volatile("" : "+m"(value) : : "memory");
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

long rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kb = 0;
      in >> kb;
      return kb * 1024;
    }
    in.ignore(4096, '\n');
  }
  return 0;
}

/// How a workload tells the measuring thread it is done.
struct finish_line {
  std::promise<std::int64_t> done;
};

struct measurement {
  std::string workload;
  double value;
  std::string unit;
};

bool pin_shards = true;

troupe::system_options shards(unsigned n) {
  troupe::system_options o;
  o.shards = n;
  o.pin_shards = pin_shards;
  return o;
}

// -- pingpong ----------------------------------------------------------------

struct ping {};
struct pong {};
struct start {};

struct pong_actor : troupe::actor<pong_actor, ping> {
  void on(const ping&) { tell(sender(), pong{}); }
};

struct ping_actor : troupe::actor<ping_actor, start, pong> {
  address peer;
  std::uint64_t left;
  finish_line* finish;
  ping_actor(address p, std::uint64_t n, finish_line* f) : peer(p), left(n), finish(f) {}
  void on(const start&) { tell(peer, ping{}); }
  void on(const pong&) {
    if (--left == 0) {
      finish->done.set_value(0);
      return;
    }
    tell(peer, ping{});
  }
};

measurement run_pingpong(unsigned n_shards, bool cross, std::uint64_t n) {
  troupe::system sys(shards(n_shards));
  finish_line fin;
  auto done = fin.done.get_future();
  address po = sys.spawn<pong_actor>(troupe::spawn_options{.shard = cross ? 1 : 0});
  address pi = sys.spawn<ping_actor>(troupe::spawn_options{.shard = 0}, po, n, &fin);
  auto t0 = clock_type::now();
  sys.tell(pi, start{});
  done.wait();
  double rate = static_cast<double>(n) / seconds_since(t0);
  return {cross ? "pingpong-cross" : "pingpong", rate, "rt/s"};
}

// -- fan-in --------------------------------------------------------------------

struct hit {};
struct go_on {};
constexpr std::uint64_t fanin_burst = 1000;

struct fanin_receiver : troupe::actor<fanin_receiver, hit> {
  std::uint64_t left;
  finish_line* finish;
  fanin_receiver(std::uint64_t n, finish_line* f) : left(n), finish(f) {}
  void on(const hit&) {
    if (--left == 0) finish->done.set_value(0);
  }
};

struct fanin_sender : troupe::actor<fanin_sender, go_on> {
  address receiver;
  std::uint64_t left;
  fanin_sender(address r, std::uint64_t n) : receiver(r), left(n) {}
  void on(const go_on&) {
    const std::uint64_t k = std::min(left, fanin_burst);
    for (std::uint64_t i = 0; i < k; ++i) tell(receiver, hit{});
    left -= k;
    if (left > 0) {
      tell(self(), go_on{});
    } else {
      stop();
    }
  }
};

measurement run_fanin(unsigned n_shards, std::uint64_t k, std::uint64_t n) {
  troupe::system sys(shards(n_shards));
  finish_line fin;
  auto done = fin.done.get_future();
  address r = sys.spawn<fanin_receiver>(troupe::spawn_options{.shard = 0}, n, &fin);
  std::vector<address> senders;
  for (std::uint64_t i = 0; i < k; ++i) {
    // The receiver has shard 0 to itself; the senders share the others.
    const int shard = n_shards > 1 ? static_cast<int>(1 + i % (n_shards - 1)) : 0;
    senders.push_back(sys.spawn<fanin_sender>(troupe::spawn_options{.shard = shard}, r,
                                              n / k + (i < n % k ? 1 : 0)));
  }
  auto t0 = clock_type::now();
  for (auto& s : senders) sys.tell(s, go_on{});
  done.wait();
  return {"fanin-k" + std::to_string(k), static_cast<double>(n) / seconds_since(t0), "msg/s"};
}

// -- ring ----------------------------------------------------------------------

constexpr std::size_t ring_size = 503;
struct token {
  std::uint64_t count;
};
struct next_is {
  address next;
};

struct ring_node : troupe::actor<ring_node, next_is, token> {
  address next;
  std::uint64_t hops;
  finish_line* finish;
  ring_node(std::uint64_t h, finish_line* f) : hops(h), finish(f) {}
  void on(const next_is& m) { next = m.next; }
  void on(const token& t) {
    if (t.count >= hops) {
      finish->done.set_value(0);
      return;
    }
    tell(next, token{t.count + 1});
  }
};

measurement run_ring(unsigned n_shards, std::uint64_t hops) {
  troupe::system sys(shards(n_shards));
  finish_line fin;
  auto done = fin.done.get_future();
  std::vector<address> nodes;
  for (std::size_t i = 0; i < ring_size; ++i) {
    nodes.push_back(sys.spawn<ring_node>(troupe::spawn_options{.shard = 0}, hops, &fin));
  }
  for (std::size_t i = 0; i < ring_size; ++i)
    sys.tell(nodes[i], next_is{nodes[(i + 1) % ring_size]});
  auto t0 = clock_type::now();
  sys.tell(nodes[0], token{0});
  done.wait();
  return {"ring", static_cast<double>(hops) / seconds_since(t0), "hops/s"};
}

// -- spawn ---------------------------------------------------------------------

struct idle_actor : troupe::actor<idle_actor, start> {
  void on(const start&) { stop(); }
};

struct spawner : troupe::actor<spawner, start, ping> {
  std::vector<address>* children;
  finish_line* finish;
  spawner(std::vector<address>* c, finish_line* f) : children(c), finish(f) {}
  void on(const ping&) {}
  void on(const start&) {
    for (auto& child : *children) child = spawn<idle_actor>();
    finish->done.set_value(0);
  }
};

std::vector<measurement> run_spawn(unsigned n_shards, std::uint64_t n) {
  troupe::system sys(shards(n_shards));
  finish_line fin;
  auto done = fin.done.get_future();
  // Sized (and touched) up front so that "before" already counts it.
  std::vector<address> children(n);
  address s = sys.spawn<spawner>(troupe::spawn_options{.shard = 0}, &children, &fin);
  sys.ask<troupe::done>(s, ping{}, 5s).value();  // installed and idle
  const long before = rss_bytes();
  auto t0 = clock_type::now();
  sys.tell(s, start{});
  done.wait();
  const double elapsed = seconds_since(t0);
  const long after = rss_bytes();
  do_not_optimize(children);
  for (auto& c : children) sys.tell(c, start{});
  return {
      {"spawn", static_cast<double>(n) / elapsed, "spawn/s"},
      {"spawn-bytes", static_cast<double>(after - before) / static_cast<double>(n), "bytes/actor"}};
}

// -- skynet --------------------------------------------------------------------

constexpr std::int64_t skynet_fanout = 10;
struct value {
  std::int64_t v;
};

struct skynet_node : troupe::actor<skynet_node, value> {
  address parent;
  std::int64_t num, size;
  std::int64_t sum = 0;
  int replies = 0;
  skynet_node(address p, std::int64_t n, std::int64_t s) : parent(p), num(n), size(s) {}
  void on_start() {
    if (size == 1) {
      tell(parent, value{num});
      stop();
      return;
    }
    // Below the root's children, every subtree stays on its shard.
    const std::int64_t sub = size / skynet_fanout;
    for (std::int64_t i = 0; i < skynet_fanout; ++i) spawn<skynet_node>(self(), num + i * sub, sub);
  }
  void on(const value& m) {
    sum += m.v;
    if (++replies == skynet_fanout) {
      tell(parent, value{sum});
      stop();
    }
  }
};

// Spreads its ten subtrees over the shards round-robin.
struct skynet_root : troupe::actor<skynet_root, start, value> {
  std::int64_t leaves;
  finish_line* finish;
  skynet_root(std::int64_t l, finish_line* f) : leaves(l), finish(f) {}
  void on(const start&) {
    const std::int64_t sub = leaves / skynet_fanout;
    for (std::int64_t i = 0; i < skynet_fanout; ++i) {
      spawn<skynet_node>(troupe::spawn_options{.where = troupe::placement::round_robin}, self(),
                         i * sub, sub);
    }
  }
  std::int64_t sum = 0;
  int replies = 0;
  void on(const value& m) {
    sum += m.v;
    if (++replies == skynet_fanout) finish->done.set_value(sum);
  }
};

measurement run_skynet(unsigned n_shards, std::int64_t leaves) {
  troupe::system sys(shards(n_shards));
  finish_line fin;
  auto done = fin.done.get_future();
  std::int64_t actors = 0;
  for (std::int64_t level = 1; level <= leaves; level *= skynet_fanout) actors += level;
  address root = sys.spawn<skynet_root>(troupe::spawn_options{.shard = 0}, leaves, &fin);
  auto t0 = clock_type::now();
  sys.tell(root, start{});
  const std::int64_t sum = done.get();
  const double elapsed = seconds_since(t0);
  const std::int64_t expected = leaves * (leaves - 1) / 2;
  if (sum != expected) {
    std::fprintf(stderr, "troupe-perf: skynet sum %lld, expected %lld\n",
                 static_cast<long long>(sum), static_cast<long long>(expected));
    std::exit(1);
  }
  return {"skynet", static_cast<double>(actors) / elapsed, "actors/s"};
}

// -- restart --------------------------------------------------------------------
//
// A supervisor (one-for-one, no retry of the failing message) with one child
// that throws on `crash`; the fresh instance says `up` to the driver from
// on_start. fresh: a new supervisor per 100 restarts (started and stopped
// inside the timing); sustained: one supervisor for all; latency: from
// sending `crash` to the restarted child answering an ask.

struct crash {};
struct up {};
struct round_over {};
constexpr std::uint64_t restarts_per_supervisor = 100;

/// How the child crashes: a C++ exception, or fail_with() (Erlang's
/// exit(Reason): no unwinding).
bool crash_by_throw = true;

struct crashing_child : troupe::actor<crashing_child, crash, ping> {
  address driver;
  explicit crashing_child(address d) : driver(d) {}
  void on_start() {
    if (driver) tell(driver, up{});
  }
  void on(const crash&) {
    if (crash_by_throw) throw std::runtime_error("crash");
    fail_with("crash");
  }
  int on(const ping&) { return 1; }
};

struct supervisor_actor : troupe::actor<supervisor_actor, start> {
  troupe::supervision_policy policy;
  address driver;
  supervisor_actor(troupe::supervision_policy p, address d) : policy(p), driver(d) {}
  troupe::supervision_policy supervision() const override { return policy; }
  address on(const start&) { return spawn<crashing_child>(driver); }
};

troupe::supervision_policy restart_policy(std::uint32_t max_restarts, std::chrono::seconds within) {
  return {.retry_once = false,
          .max_restarts = max_restarts,
          .within = std::chrono::duration_cast<std::chrono::milliseconds>(within)};
}

/// Crashes its child and waits for it to be up again, `per_round` times per
/// supervisor, for `total` restarts in all.
struct restart_driver : troupe::actor<restart_driver, start, up, address> {
  std::uint64_t total, per_round, done = 0, in_round = 0;
  troupe::supervision_policy policy;
  finish_line* finish;
  address sup, child;
  restart_driver(std::uint64_t n, std::uint64_t per, troupe::supervision_policy p, finish_line* f)
      : total(n), per_round(per), policy(p), finish(f) {}
  void on(const start&) { new_round(); }
  void new_round() {
    if (sup) tell(sup, troupe::exit_request{});
    sup = spawn<supervisor_actor>(policy, self());
    in_round = 0;
    child = address{};
    tell(sup, start{});  // its child says up once installed
  }
  void on(const up&) {
    if (!child) {
      child = sender();  // the first instance: nothing crashed yet
    } else {
      ++done;
      if (done == total) {
        finish->done.set_value(0);
        return;
      }
      if (++in_round == per_round) {
        new_round();
        return;
      }
    }
    tell(child, crash{});
  }
  void on(const address&) {}
};

measurement run_restart(unsigned n_shards, std::uint64_t n, bool fresh, const std::string& name) {
  troupe::system sys(shards(n_shards));
  finish_line fin;
  auto done = fin.done.get_future();
  const auto policy =
      fresh ? restart_policy(1000, 1s)
            : restart_policy(
                  static_cast<std::uint32_t>(std::min<std::uint64_t>(10 * n, UINT32_MAX)), 60s);
  address d = sys.spawn<restart_driver>(troupe::spawn_options{.shard = 0}, n,
                                        fresh ? restarts_per_supervisor : n, policy, &fin);
  auto t0 = clock_type::now();
  sys.tell(d, start{});
  done.wait();
  const double rate = static_cast<double>(n) / seconds_since(t0);
  if (sys.counters().restarts < n) {
    std::fprintf(stderr, "troupe-perf: %llu restarts counted, expected %llu\n",
                 static_cast<unsigned long long>(sys.counters().restarts),
                 static_cast<unsigned long long>(n));
    std::exit(1);
  }
  return {name, rate, "restarts/s"};
}

/// Each sample: crash the child, then ask it; the ask waits in the mailbox
/// until the fresh instance answers.
struct latency_driver : troupe::actor<latency_driver, start> {
  address child;
  std::uint64_t n;
  std::vector<double>* samples_us;
  finish_line* finish;
  latency_driver(address c, std::uint64_t count, std::vector<double>* s, finish_line* f)
      : child(c), n(count), samples_us(s), finish(f) {}
  troupe::task<void> on(const start&) {
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto t0 = clock_type::now();
      tell(child, crash{});
      auto r = co_await ask<int>(child, ping{}, 5s);
      samples_us->push_back(
          std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
      if (!r) {
        std::fprintf(stderr, "troupe-perf: restart-latency ask failed: %s\n",
                     r.err().describe().c_str());
        std::exit(1);
      }
    }
    finish->done.set_value(0);
  }
};

struct latency_parent : troupe::actor<latency_parent, start> {
  troupe::supervision_policy policy;
  explicit latency_parent(troupe::supervision_policy p) : policy(p) {}
  troupe::supervision_policy supervision() const override { return policy; }
  address on(const start&) { return spawn<crashing_child>(address{}); }
};

std::vector<measurement> run_restart_latency(unsigned n_shards, std::uint64_t n,
                                             const std::string& name) {
  troupe::system sys(shards(n_shards));
  address p = sys.spawn<latency_parent>(
      troupe::spawn_options{.shard = 0},
      restart_policy(static_cast<std::uint32_t>(std::min<std::uint64_t>(10 * n, UINT32_MAX)), 60s));
  address child = sys.ask<address>(p, start{}, 5s).value();
  std::vector<double> samples;
  samples.reserve(n);
  finish_line fin;
  auto done = fin.done.get_future();
  address d =
      sys.spawn<latency_driver>(troupe::spawn_options{.shard = 0}, child, n, &samples, &fin);
  sys.tell(d, start{});
  done.wait();
  const std::size_t skip = n > 2000 ? 1000 : 0;  // warm-up
  std::vector<double> v(samples.begin() + static_cast<std::ptrdiff_t>(skip), samples.end());
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) {
    const auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
    return v[std::min(i, v.size() - 1)];
  };
  return {{name, rank(0.50), "us-p50"}, {name, rank(0.99), "us-p99"}};
}

// -- remote ----------------------------------------------------------------------
//
// Two engine processes on 127.0.0.1: this one (engine 1) and a copy of this
// binary started with --serve-peer (engine 2), linked over TCP. Shards are
// left unpinned: two processes share the machine's cores.
// remote-pingpong: ping here, pong there, one round trip outstanding.
// remote-pipeline: N one-way 16-byte messages to a sink there, then a mark
// that the sink answers once it has them all (order per pair keeps it last).

struct blob {
  std::uint64_t a, b;
};
struct mark {};
struct mark_seen {
  std::uint64_t count;
};

void register_remote_messages() {
  troupe::register_message<ping>("perf.ping");
  troupe::register_message<pong>("perf.pong");
  troupe::register_message<blob>("perf.blob");
  troupe::register_message<mark>("perf.mark");
  troupe::register_message<mark_seen>("perf.mark_seen");
}

struct sink_actor : troupe::actor<sink_actor, blob, mark> {
  std::uint64_t count = 0;
  void on(const blob& b) { count += (b.a == b.b); }
  void on(const mark&) { tell(sender(), mark_seen{count}); }
};

struct pipeline_sender : troupe::actor<pipeline_sender, start, go_on, mark_seen> {
  address sink;
  std::uint64_t left, total;
  finish_line* finish;
  pipeline_sender(address s, std::uint64_t n, finish_line* f)
      : sink(s), left(n), total(n), finish(f) {}
  void on(const start&) { on(go_on{}); }
  void on(const go_on&) {
    // A chunk per turn, so that the shard flushes the link between chunks.
    for (int i = 0; i < 4096 && left > 0; ++i, --left) tell(sink, blob{left, left});
    if (left > 0) {
      tell(self(), go_on{});
    } else {
      tell(sink, mark{});
    }
  }
  void on(const mark_seen& m) {
    if (m.count != total) {
      std::fprintf(stderr, "troupe-perf: the sink saw %llu of %llu messages\n",
                   static_cast<unsigned long long>(m.count),
                   static_cast<unsigned long long>(total));
      std::exit(1);
    }
    finish->done.set_value(0);
  }
};

/// The other engine: prints "ready PORT PONG SINK" and runs until SIGTERM.
int serve_peer(unsigned n_shards) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  register_remote_messages();
  troupe::system_options o = shards(n_shards);
  o.pin_shards = false;
  o.engine_id = 2;
  troupe::system sys(o, troupe::with_links({.listen = "127.0.0.1:0"}));
  address po = sys.spawn<pong_actor>(troupe::spawn_options{.shard = 0});
  address si = sys.spawn<sink_actor>(troupe::spawn_options{.shard = 0});
  std::printf("ready %u %s %s\n", troupe::listen_port(sys), po.to_string().c_str(),
              si.to_string().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  return 0;
}

/// The peer process, ended by its PID when this object ends.
struct peer_process {
  pid_t pid = -1;
  std::uint16_t port = 0;
  address pong, sink;
  explicit peer_process(unsigned n_shards) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid = ::fork();
    if (pid == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      const std::string s = std::to_string(n_shards);
      ::execl("/proc/self/exe", "troupe-perf", "--serve-peer", "--workload", "remote-pingpong",
              "--shards", s.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char c;
    while (line.find('\n') == std::string::npos && ::read(out[0], &c, 1) == 1) line.push_back(c);
    ::close(out[0]);
    std::istringstream in(line);
    std::string word, po, si;
    unsigned p = 0;
    in >> word >> p >> po >> si;
    if (word != "ready") throw std::runtime_error("the peer engine did not start: " + line);
    port = static_cast<std::uint16_t>(p);
    pong = address::parse(po).value();
    sink = address::parse(si).value();
  }
  ~peer_process() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

measurement run_remote(unsigned n_shards, std::uint64_t n, bool pipeline) {
  register_remote_messages();
  peer_process peer(n_shards);
  troupe::system_options o = shards(n_shards);
  o.pin_shards = false;
  o.engine_id = 1;
  troupe::system sys(o, troupe::with_links({.peers = {"127.0.0.1:" + std::to_string(peer.port)}}));
  bool linked = false;
  for (int i = 0; i < 500 && !linked; ++i) {
    linked = static_cast<bool>(sys.ask<troupe::done>(peer.pong, ping{}, 1s));
    if (!linked) std::this_thread::sleep_for(10ms);
  }
  if (!linked) throw std::runtime_error("no link to the peer engine");
  finish_line fin;
  auto done = fin.done.get_future();
  address a =
      pipeline ? sys.spawn<pipeline_sender>(troupe::spawn_options{.shard = 0}, peer.sink, n, &fin)
               : sys.spawn<ping_actor>(troupe::spawn_options{.shard = 0}, peer.pong, n, &fin);
  auto t0 = clock_type::now();
  sys.tell(a, start{});
  if (done.wait_for(120s) != std::future_status::ready) {
    throw std::runtime_error("the remote workload did not finish within 120 s");
  }
  const double rate = static_cast<double>(n) / seconds_since(t0);
  return pipeline ? measurement{"remote-pipeline", rate, "msg/s"}
                  : measurement{"remote-pingpong", rate, "rt/s"};
}

// -- the cost of a C++ throw -------------------------------------------------------
//
// No engine in it: a std::runtime_error thrown one call deep and caught, as
// a crashing child's handler does. Its rate bounds restart-*-throw on one
// shard, whatever the engine does around it.

__attribute__((noinline)) void throw_crash(std::uint64_t i) {
  if (i != UINT64_MAX) throw std::runtime_error("crash");
}

// The catching frame is small, as the shard's is: the personality routine
// reads each frame's call-site table from its start.
__attribute__((noinline)) bool catch_crash(std::uint64_t i) {
  try {
    throw_crash(i);
  } catch (const std::exception& e) {
    return e.what()[0] == 'c';
  }
  return false;
}

measurement run_throw_floor(std::uint64_t n) {
  std::uint64_t caught = 0;
  auto t0 = clock_type::now();
  for (std::uint64_t i = 0; i < n; ++i) caught += catch_crash(i);
  const double rate = static_cast<double>(n) / seconds_since(t0);
  if (caught != n) throw std::runtime_error("throw-floor: not every throw was caught");
  return {"throw-floor", rate, "throws/s"};
}

// -- harness ---------------------------------------------------------------------

const std::vector<std::string> workloads = {"pingpong",
                                            "pingpong-cross",
                                            "fanin-k1",
                                            "fanin-k2",
                                            "fanin-k8",
                                            "ring",
                                            "spawn",
                                            "skynet",
                                            "restart-fresh",
                                            "restart-sustained",
                                            "restart-latency",
                                            "restart-fresh-exit",
                                            "restart-sustained-exit",
                                            "restart-latency-exit",
                                            "remote-pingpong",
                                            "remote-pipeline",
                                            "throw-floor"};

std::vector<measurement> run_one(const std::string& w, unsigned s, std::uint64_t n) {
  auto pick = [n](std::uint64_t dflt) { return n ? n : dflt; };
  if (w == "pingpong") return {run_pingpong(s, false, pick(2'000'000))};
  if (w == "pingpong-cross") return {run_pingpong(std::max(2u, s), true, pick(2'000'000))};
  if (w == "fanin-k1") return {run_fanin(s, 1, pick(8'000'000))};
  if (w == "fanin-k2") return {run_fanin(s, 2, pick(8'000'000))};
  if (w == "fanin-k8") return {run_fanin(s, 8, pick(8'000'000))};
  if (w == "ring") return {run_ring(s, pick(10'000'000))};
  if (w == "spawn") return run_spawn(s, pick(1'000'000));
  if (w == "skynet") return {run_skynet(s, static_cast<std::int64_t>(pick(1'000'000)))};
  if (w == "remote-pingpong") return {run_remote(s, pick(200'000), false)};
  if (w == "remote-pipeline") return {run_remote(s, pick(10'000'000), true)};
  if (w == "throw-floor") return {run_throw_floor(pick(1'000'000))};
  crash_by_throw = w.find("-exit") == std::string::npos;
  if (w.starts_with("restart-fresh")) return {run_restart(s, pick(200'000), true, w)};
  if (w.starts_with("restart-sustained")) return {run_restart(s, pick(100'000), false, w)};
  if (w.starts_with("restart-latency")) return run_restart_latency(s, pick(20'000), w);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"troupe-perf: the engine's comparison workloads"};
  std::string workload;
  unsigned n_shards = 2;
  std::uint64_t n = 0;
  unsigned runs = 1;
  bool json = false;
  app.add_option("--workload", workload, "workload to run")
      ->required()
      ->check(CLI::IsMember(workloads));
  app.add_option("--shards", n_shards, "shards")->check(CLI::Range(1u, 256u));
  app.add_option("--n", n,
                 "size: round trips, messages, hops, actors or skynet leaves (0 = default)");
  app.add_option("--runs", runs, "repetitions")->check(CLI::Range(1u, 100u));
  app.add_flag("--json", json, "one JSON object per run");
  bool no_pin = false;
  app.add_flag("--no-pin", no_pin, "leave shard threads unpinned");
  bool serve = false;
  app.add_flag("--serve-peer", serve, "run the other engine of the remote workloads")
      ->group("");  // started by the remote workloads themselves
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  pin_shards = !no_pin;
  if (serve) return serve_peer(n_shards);

  if (workload == "skynet" && n) {
    std::uint64_t p = 1;
    while (p < n) p *= 10;
    if (p != n || n < 10) {
      std::cerr << "troupe-perf: skynet --n (number of leaves) must be a power of 10, >= 10\n";
      return 2;
    }
  }

  std::vector<std::vector<measurement>> all;
  for (unsigned r = 0; r < runs; ++r) {
    auto ms = run_one(workload, n_shards, n);
    for (auto& m : ms) {
      if (json) {
        std::printf("{\"system\":\"troupe\",\"workload\":\"%s\",\"value\":%.1f,\"unit\":\"%s\"}\n",
                    m.workload.c_str(), m.value, m.unit.c_str());
      } else {
        std::printf("troupe %s %.*f %s\n", m.workload.c_str(), m.value < 100 ? 2 : 1, m.value,
                    m.unit.c_str());
      }
      std::fflush(stdout);
    }
    all.push_back(std::move(ms));
  }
  if (runs > 1 && !json) {
    for (std::size_t i = 0; i < all[0].size(); ++i) {
      std::vector<double> v;
      for (auto& run : all) v.push_back(run[i].value);
      std::sort(v.begin(), v.end());
      std::printf("# troupe %s median %.1f min %.1f max %.1f %s\n", all[0][i].workload.c_str(),
                  v[v.size() / 2], v.front(), v.back(), all[0][i].unit.c_str());
    }
  }
  return 0;
}
