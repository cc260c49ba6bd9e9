#pragma once
// Process isolation: `troupe serve --workers N` runs N engine processes on
// this host as one convention, under a supervising parent that runs no
// engine itself. A native crash (a segfault, an abort) in one actor then
// ends only its worker's process; the parent starts it again with the same
// engine id and ports, and it rejoins the convention.
//
//     troupe serve --workers 3 --listen 127.0.0.1:7000 --admin 127.0.0.1:7100
//
//     parent (troupe serve --workers 3)      pid 100, no engine
//      ├─ worker 0: engine 1, links :7000, admin :7100   leads the convention
//      ├─ worker 1: engine 2, links :7001, admin :7101   joins 127.0.0.1:7000
//      └─ worker 2: engine 3, links :7002, admin :7102   joins 127.0.0.1:7000

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "server/config.hpp"

namespace troupe {

/// One worker of `troupe serve --workers N`: where it serves and the command
/// line that starts it. A value type.
struct worker_spec {
  /// 0..N-1; the worker also finds it in $TROUPE_WORKER_INDEX.
  unsigned index = 0;
  /// The base engine id (--engine-id, 1 by default) plus the index.
  std::uint32_t engine_id = 0;
  /// "host:port" of its links: --listen's port plus the index.
  std::string listen;
  /// "host:port" of its admin endpoint (port 0 stays 0); empty: none.
  std::string admin;
  /// Its whole command line, argv[0] first: `troupe serve` with the parent's
  /// flags less --workers and with its own --engine-id, --listen, --admin,
  /// --advertise and (unless one was given) --convention.
  std::vector<std::string> argv;
};

/// The workers' places and command lines, from the parent's effective
/// configuration (`config`: file and flags, validated) and its command line
/// (`argv`, argv[0] first). Each worker gets base id + i, listen port + i,
/// admin port + i (0 stays 0), advertise port + i when one is set, and, when
/// no convention is configured, worker 0's listen address as the convention
/// leader (so worker 0 leads). Flags on `argv` override the file in the
/// worker as they do in the parent. Pure; any thread.
///
/// On a combination that cannot be split (no --listen or port 0, a port or
/// engine id range that runs out, listen and admin ranges that overlap):
/// nullopt, and `error` says which flag to change.
std::optional<std::vector<worker_spec>> plan_workers(const serve_config& config,
                                                     const std::vector<std::string>& argv,
                                                     unsigned workers, std::string& error);

/// In a worker (its supervisor set $TROUPE_WORKER_INDEX): labels each log
/// line "[worker i]", as the workers share the parent's stdout and stderr,
/// and names the process after `argv0` ("troupe"), not "exe" (it was started
/// as /proc/self/exe). Call from the main thread before the engine starts
/// threads or logs. Outside a worker: does nothing.
void setup_worker_process(const char* argv0);

/// Timings of a worker_supervisor.
struct worker_supervisor_options {
  /// The first restart delay after a crash; doubled per crash up to max_backoff.
  std::chrono::milliseconds first_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  /// A worker that stayed up this long restarts after first_backoff again.
  std::chrono::milliseconds stable_after{10'000};
  /// After SIGTERM to the workers, how long they have before SIGKILL.
  std::chrono::milliseconds stop_timeout{20'000};
  /// The binary each worker runs: this one, whatever its path now holds.
  std::string executable = "/proc/self/exe";
};

/// The supervising parent of `troupe serve --workers N`: starts each worker
/// as a child process, restarts one that ends by a signal or a non-zero
/// status (with the same command line, after a backoff), and on SIGINT or
/// SIGTERM stops them all and returns.
///
/// Threads: run() on the main thread of a process that has no other threads
/// (it forks) and that has SIGINT and SIGTERM blocked, as `troupe serve`
/// does from start-up; run() blocks SIGCHLD too, and waits for all three
/// with sigtimedwait, so an idle supervisor uses no CPU. Workers start with
/// those signals unblocked and get SIGTERM if the parent dies
/// (PR_SET_PDEATHSIG). Workers inherit stdout, stderr and the working
/// directory; signals go to them by PID only.
class worker_supervisor {
 public:
  /// `workers` as plan_workers made them.
  explicit worker_supervisor(std::vector<worker_spec> workers,
                             worker_supervisor_options options = {});
  worker_supervisor(const worker_supervisor&) = delete;
  worker_supervisor& operator=(const worker_supervisor&) = delete;

  /// Starts the workers and supervises them until SIGINT or SIGTERM: then
  /// SIGTERM to each worker, SIGKILL to those still alive after
  /// stop_timeout (or at a second stop signal), and every one reaped. Also
  /// returns once every worker has exited with status 0 on its own (e.g.
  /// `troupe stop` to each), as those are not restarted. Returns the exit
  /// code for `troupe serve`: 0, or 1 if signals cannot be set up.
  int run();

  /// Restarts performed so far (by run(); read it after run() returns).
  std::uint64_t restarts() const noexcept { return restarts_; }

 private:
  using clock = std::chrono::steady_clock;

  struct worker {
    worker_spec spec;
    pid_t pid = -1;  ///< > 0 while it runs (until it is reaped)
    clock::time_point started{};
    std::optional<clock::time_point> restart_at{};
    std::chrono::milliseconds backoff{};
    bool done = false;  ///< exited with status 0 on its own; not restarted
  };

  void start(worker& w);
  void reap(clock::time_point now);
  void on_exit(worker& w, int status, clock::time_point now);
  void begin_stop(int sig, clock::time_point now);
  void kill_all(int sig);
  std::size_t running() const noexcept;
  bool anything_left() const noexcept;
  /// The next time the loop must wake without a signal; none: sleep until one.
  std::optional<clock::time_point> next_deadline() const noexcept;

  std::vector<worker> workers_;
  worker_supervisor_options options_;
  std::vector<std::string> environment_;  ///< ours, less TROUPE_WORKER_*; built once
  bool stopping_ = false;
  bool killed_ = false;
  clock::time_point kill_at_{};
  std::uint64_t restarts_ = 0;
};

}  // namespace troupe
