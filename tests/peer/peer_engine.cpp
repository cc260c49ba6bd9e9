// troupe-test-peer: an engine process for the multi-engine tests. It links
// to the engines it is given, spawns a counter and an echo actor, prints
//   ready <listen port> <counter address> <echo address>
// and runs until SIGTERM or SIGINT.
//
// With --drive ENGINE it also drives traffic to ENGINE and prints what
// happens, for tests that cannot reach this engine's actors themselves (it
// runs in another network namespace): see "drive mode" below.

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "peer_messages.hpp"
#include "troupe/remote.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::address;

// --- drive mode ---
//
// Spawns a sequence_checker and two echoes on the target engine (once the
// link is up), then, until SIGTERM:
// - a streamer actor (shard 1) tells the checker numbered `seq`, 20 every
//   millisecond;
// - four threads each ask the "slow" echo for a 30 s slow_echo: asks that
//   stay pending until the link dies;
// - a thread asks the "quick" echo every 10 ms;
// - a thread asks this engine's own echo every 10 ms (is it still served?).
// It prints, each line stamped with steady-clock milliseconds (the test
// process reads the same clock):
//   drive streaming t=<ms> ...                 the traffic has started
//   ask t=<ms> ok | ask t=<ms> failed <why>    the quick asks' state changed
//   slow-ask <i> t=<ms> failed <why>           a pending ask ended
//   report <k> t=<ms> key=value ...            on SIGUSR1 (see report())
//   stream stopped t=<ms> streamed=<n>         on SIGUSR2

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::mutex print_lock;
void say(const char* format, ...) __attribute__((format(printf, 1, 2)));
void say(const char* format, ...) {
  std::lock_guard g(print_lock);
  va_list args;
  va_start(args, format);
  std::vfprintf(stdout, format, args);
  va_end(args);
  std::fflush(stdout);
}

std::atomic<bool> streaming{true};
std::atomic<std::uint64_t> streamed{0};

struct stream_start {
  address to;
};
struct stream_tick {};
/// Tells `seq` 1, 2, 3, ... to one actor, a batch per timer tick.
struct streamer : troupe::actor<streamer, stream_start, stream_tick> {
  address to;
  std::uint64_t next = 1;
  void on(const stream_start& s) {
    to = s.to;
    on(stream_tick{});
  }
  void on(const stream_tick&) {
    if (!streaming.load(std::memory_order_relaxed)) return;
    for (int i = 0; i < 20; ++i) tell(to, peer_test::seq{next++});
    streamed.store(next - 1, std::memory_order_relaxed);
    wakeup_after(1ms, stream_tick{});
  }
};

class driver {
 public:
  driver(troupe::system& sys, std::uint32_t target, address local_echo)
      : sys_(sys), target_(target), local_echo_(local_echo) {}
  driver(const driver&) = delete;
  driver& operator=(const driver&) = delete;
  ~driver() {
    request_stop();
    join();
  }

  void start() {
    runner_ = std::thread([this] { run(); });
  }

  /// The stream stops and the asking threads end after their current ask.
  void request_stop() {
    streaming = false;
    stop_ = true;
  }
  /// Waits for the threads (bounded by their asks' timeouts).
  void join() {
    if (runner_.joinable()) runner_.join();
    for (auto& t : workers_) t.join();  // started by runner_, which has ended
    workers_.clear();
  }

  void stop_stream() {
    streaming = false;
    say("stream stopped t=%lld streamed=%llu\n", now_ms(),
        static_cast<unsigned long long>(streamed.load()));
  }

  /// One line: what was streamed, what the checker saw (when it can be
  /// asked), this engine's dead letters, and how its own echo was served.
  void report() {
    const int k = ++reports_;
    const long long t = now_ms();
    std::string order;
    if (!ready_) {
      order = "order_error=not linked yet";
    } else {
      auto r = sys_.ask<peer_test::order_report>(checker_, peer_test::order_query{}, 2s);
      if (!r) ++remote_ask_failures_;
      if (r) {
        order = "received=" + std::to_string(r.value().received) +
                " last=" + std::to_string(r.value().last) +
                " gaps=" + std::to_string(r.value().gaps) +
                " backwards=" + std::to_string(r.value().backwards);
      } else {
        order = "order_error=" + r.err().describe();
      }
    }
    const troupe::stats st = sys_.counters();  // after the ask: its dead letter, if any
    say("report %d t=%lld streamed=%llu dead_peer_lost=%llu dead_no_route=%llu "
        "remote_ask_failures=%llu local_asks=%llu local_failed=%llu local_max_ms=%lld %s\n",
        k, t, static_cast<unsigned long long>(streamed.load()),
        static_cast<unsigned long long>(st.dead(troupe::dead_reason::peer_lost)),
        static_cast<unsigned long long>(st.dead(troupe::dead_reason::no_route)),
        static_cast<unsigned long long>(remote_ask_failures_.load()),
        static_cast<unsigned long long>(local_asks_.load()),
        static_cast<unsigned long long>(local_failed_.load()), local_max_ms_.load(), order.c_str());
  }

 private:
  void run() {
    say("drive linking to engine %u\n", target_);
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    troupe::result<address> checker = sys_.spawn_on(target_, "peer_test.sequence_checker");
    while (!checker && !stop_ && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(50ms);
      checker = sys_.spawn_on(target_, "peer_test.sequence_checker");
    }
    if (!checker) {
      say("drive failed: %s\n", checker.err().describe().c_str());
      return;
    }
    auto quick = sys_.spawn_on(target_, "peer_test.echo");
    auto slow = sys_.spawn_on(target_, "peer_test.echo");
    if (!quick || !slow) {
      say("drive failed: %s\n", (quick ? slow : quick).err().describe().c_str());
      return;
    }
    checker_ = checker.value();
    ready_ = true;
    const address s = sys_.spawn<streamer>(troupe::spawn_options{.shard = 1});
    sys_.tell(s, stream_start{checker_});
    for (int i = 1; i <= 4; ++i) {
      workers_.emplace_back([this, i, to = slow.value()] { slow_ask(i, to); });
    }
    workers_.emplace_back([this, to = quick.value()] { quick_asks(to); });
    workers_.emplace_back([this] { local_asks(); });
    say("drive streaming t=%lld checker=%s quick=%s slow=%s\n", now_ms(),
        checker_.to_string().c_str(), quick.value().to_string().c_str(),
        slow.value().to_string().c_str());
  }

  void slow_ask(int i, address to) {
    auto r = sys_.ask<int>(to, peer_test::slow_echo{30'000}, 30s);
    say("slow-ask %d t=%lld %s\n", i, now_ms(),
        r ? "answered" : ("failed " + r.err().describe()).c_str());
  }

  void quick_asks(address to) {
    std::string state;
    for (std::uint64_t n = 1; !stop_; ++n) {
      const std::string text = "ask " + std::to_string(n);
      auto r = sys_.ask<peer_test::echo_text>(to, peer_test::echo_text{text}, 5s);
      std::string now;
      if (!r) {
        ++remote_ask_failures_;
        now = "failed " + r.err().describe();
      } else if (r.value().text == text) {
        now = "ok";
      } else {
        now = "wrong reply '" + r.value().text + "' to '" + text + "'";
      }
      if (now != state) say("ask t=%lld %s\n", now_ms(), now.c_str());
      state = now;
      std::this_thread::sleep_for(10ms);
    }
  }

  void local_asks() {
    while (!stop_) {
      const auto t0 = std::chrono::steady_clock::now();
      auto r = sys_.ask<peer_test::echo_text>(local_echo_, peer_test::echo_text{"here"}, 5s);
      const long long took = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - t0)
                                 .count();
      ++local_asks_;
      if (!r || r.value().text != "here") ++local_failed_;
      long long seen = local_max_ms_.load();
      while (took > seen && !local_max_ms_.compare_exchange_weak(seen, took)) {
      }
      std::this_thread::sleep_for(10ms);
    }
  }

  troupe::system& sys_;
  const std::uint32_t target_;
  const address local_echo_;
  std::thread runner_;
  std::vector<std::thread> workers_;  ///< only runner_ adds to it
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  address checker_;  // set before ready_
  int reports_ = 0;
  std::atomic<std::uint64_t> local_asks_{0}, local_failed_{0};
  /// Quick and report asks to the target that failed: each may have left a
  /// dead letter here (its request), which is not a streamed message.
  std::atomic<std::uint64_t> remote_ask_failures_{0};
  std::atomic<long long> local_max_ms_{0};
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"troupe-test-peer: an engine for the multi-engine tests"};
  std::uint32_t engine = 2;
  unsigned shards = 2;
  std::string listen, secret;
  std::vector<std::string> peers;
  unsigned heartbeat_ms = 0, peer_timeout_ms = 0;
  std::uint32_t drive = 0;
  app.add_option("--engine-id", engine)->required();
  app.add_option("--shards", shards);
  app.add_option("--listen", listen);
  app.add_option("--peer", peers);
  app.add_option("--secret", secret);
  app.add_option("--heartbeat", heartbeat_ms, "ms; 0: the engine's default");
  app.add_option("--peer-timeout", peer_timeout_ms, "ms; 0: the engine's default");
  app.add_option("--drive", drive,
                 "engine id to drive traffic to (see drive mode); SIGUSR1 reports, SIGUSR2 stops "
                 "the stream");
  CLI11_PARSE(app, argc, argv);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (drive != 0) {
    sigaddset(&stop_signals, SIGUSR1);
    sigaddset(&stop_signals, SIGUSR2);
  }
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  peer_test::register_messages();
  peer_test::register_actors();
  troupe::system_options o;
  o.engine_id = engine;
  o.shards = shards;
  troupe::link_options lo;
  lo.listen = listen;
  lo.peers = peers;
  lo.secret = secret;
  if (heartbeat_ms != 0) lo.heartbeat = std::chrono::milliseconds(heartbeat_ms);
  if (peer_timeout_ms != 0) lo.peer_timeout = std::chrono::milliseconds(peer_timeout_ms);
  troupe::system sys(o, troupe::with_links(lo));
  auto c = sys.spawn<peer_test::counter>(troupe::spawn_options{.shard = 1});
  auto e = sys.spawn<peer_test::echo>(troupe::spawn_options{.shard = 0});
  std::printf("ready %u %s %s\n", troupe::listen_port(sys), c.to_string().c_str(),
              e.to_string().c_str());
  std::fflush(stdout);
  std::optional<driver> d;
  if (drive != 0) {
    d.emplace(sys, drive, e);
    d->start();
  }
  int sig = 0;
  for (;;) {
    sigwait(&stop_signals, &sig);
    if (sig == SIGUSR1) {
      d->report();
    } else if (sig == SIGUSR2) {
      d->stop_stream();
    } else {
      break;
    }
  }
  if (d) d->request_stop();
  sys.stop();
  if (d) d->join();
  return 0;
}
