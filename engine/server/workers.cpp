// The supervising parent of `troupe serve --workers N` (see workers.hpp):
// one loop on sigtimedwait over SIGCHLD, SIGINT and SIGTERM, whose timeout
// is the next pending restart or the SIGKILL deadline of a stop.

#include "server/workers.hpp"

#include <spdlog/spdlog.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

#include "troupe/net.hpp"

extern char** environ;

namespace troupe {

namespace {

/// The flags each worker gets its own value of; the parent's are dropped.
constexpr std::array<std::string_view, 5> own_flags = {"--workers", "--engine-id", "--listen",
                                                       "--admin", "--advertise"};

/// `argv` less the own_flags, as `--flag value` or `--flag=value`.
std::vector<std::string> without_own_flags(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    bool drop = false;
    for (std::string_view f : own_flags) {
      if (a == f) {
        drop = true;
        ++i;  // and its value (CLI11 takes the next word, whatever it is)
        break;
      }
      if (a.size() > f.size() && a.compare(0, f.size(), f) == 0 && a[f.size()] == '=') {
        drop = true;
        break;
      }
    }
    if (!drop) out.push_back(a);
  }
  return out;
}

/// "host:port" with `port` raised by `offset`; port 0 stays 0.
std::string shifted(const std::string& host, std::uint16_t port, unsigned offset) {
  return host + ":" + std::to_string(port == 0 ? 0u : port + offset);
}

/// How a child ended, in words: "signal 6 (Aborted)", "exit status 3".
std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    std::string s = "signal " + std::to_string(sig) + " (" + ::strsignal(sig) + ")";
    if (WCOREDUMP(status)) s += ", core dumped";
    return s;
  }
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  return "wait status " + std::to_string(status);
}

const char* signal_name(int sig) { return sig == SIGINT ? "SIGINT" : "SIGTERM"; }

}  // namespace

std::optional<std::vector<worker_spec>> plan_workers(const serve_config& config,
                                                     const std::vector<std::string>& argv,
                                                     unsigned workers, std::string& error) {
  if (workers < 1 || workers > 64) {
    error = "--workers: expected 1 to 64 workers, got " + std::to_string(workers);
    return std::nullopt;
  }
  const unsigned last = workers - 1;
  std::string listen_host;
  std::uint16_t listen_port = 0;
  if (config.listen.empty() || !net::split_host_port(config.listen, listen_host, listen_port) ||
      listen_port == 0) {
    error =
        "--workers needs --listen HOST:PORT with a fixed port (not 0): worker i links on "
        "PORT+i, and the others find it there" +
        (config.listen.empty() ? std::string() : " (got '" + config.listen + "')");
    return std::nullopt;
  }
  if (listen_port + last > 65535) {
    error = "--workers " + std::to_string(workers) + " with --listen " + config.listen +
            ": worker " + std::to_string(last) + " would need port " +
            std::to_string(listen_port + last) + "; choose a lower port";
    return std::nullopt;
  }
  std::string admin_host;
  std::uint16_t admin_port = 0;
  if (!config.admin.empty()) {
    net::split_host_port(config.admin, admin_host, admin_port);  // validated with the config
    if (admin_port != 0 && admin_port + last > 65535) {
      error = "--workers " + std::to_string(workers) + " with --admin " + config.admin +
              ": worker " + std::to_string(last) + " would need port " +
              std::to_string(admin_port + last) + "; choose a lower port";
      return std::nullopt;
    }
    if (admin_port != 0 && admin_port <= listen_port + last && listen_port <= admin_port + last) {
      error = "--workers " + std::to_string(workers) + ": the admin ports " +
              std::to_string(admin_port) + ".." + std::to_string(admin_port + last) +
              " overlap the link ports " + std::to_string(listen_port) + ".." +
              std::to_string(listen_port + last) + "; move --admin or --listen";
      return std::nullopt;
    }
  }
  std::string advertise_host;
  std::uint16_t advertise_port = 0;
  if (!config.convention.advertise.empty()) {
    net::split_host_port(config.convention.advertise, advertise_host, advertise_port);
    if (advertise_port + last > 65535) {
      error = "--workers " + std::to_string(workers) + " with --advertise " +
              config.convention.advertise + ": worker " + std::to_string(last) +
              " would need port " + std::to_string(advertise_port + last);
      return std::nullopt;
    }
  }
  if (config.engine_id > 0xFFFFFFFEu - last) {
    error = "--workers " + std::to_string(workers) + " with --engine-id " +
            std::to_string(config.engine_id) + ": the last worker's id would pass 4294967294";
    return std::nullopt;
  }

  const std::vector<std::string> common = without_own_flags(argv);
  const std::string leader = shifted(listen_host, listen_port, 0);
  std::vector<worker_spec> out;
  for (unsigned i = 0; i < workers; ++i) {
    worker_spec w;
    w.index = i;
    w.engine_id = config.engine_id + i;
    w.listen = shifted(listen_host, listen_port, i);
    if (!config.admin.empty()) w.admin = shifted(admin_host, admin_port, i);
    w.argv = common;
    auto add = [&w](const char* flag, std::string value) {
      w.argv.emplace_back(flag);
      w.argv.push_back(std::move(value));
    };
    add("--engine-id", std::to_string(w.engine_id));
    add("--listen", w.listen);
    if (!w.admin.empty()) add("--admin", w.admin);
    if (!config.convention.advertise.empty()) {
      add("--advertise", shifted(advertise_host, advertise_port, i));
    }
    // A convention given by flag or file is joined by all; else worker 0 leads one.
    if (config.convention.leader.empty()) add("--convention", leader);
    out.push_back(std::move(w));
  }
  return out;
}

void setup_worker_process(const char* argv0) {
  const char* index = std::getenv("TROUPE_WORKER_INDEX");
  if (!index || !*index) return;
  if (argv0 && *argv0) {
    const char* base = std::strrchr(argv0, '/');
    ::prctl(PR_SET_NAME, base ? base + 1 : argv0);  // threads started later inherit it
  }
  // spdlog's default pattern, with the label before the text.
  spdlog::set_pattern(std::string("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] [worker ") + index + "] %v");
}

worker_supervisor::worker_supervisor(std::vector<worker_spec> workers,
                                     worker_supervisor_options options)
    : options_(std::move(options)) {
  for (worker_spec& s : workers) {
    worker w;
    w.spec = std::move(s);
    w.backoff = options_.first_backoff;
    workers_.push_back(std::move(w));
  }
  for (char** e = environ; e && *e; ++e) {
    const std::string_view v(*e);
    if (v.rfind("TROUPE_WORKER_INDEX=", 0) == 0 || v.rfind("TROUPE_WORKERS=", 0) == 0) continue;
    environment_.emplace_back(v);
  }
}

void worker_supervisor::start(worker& w) {
  // Everything the child needs is made before fork: between fork and
  // execve it may only make system calls.
  std::vector<std::string> env = environment_;
  env.push_back("TROUPE_WORKER_INDEX=" + std::to_string(w.spec.index));
  env.push_back("TROUPE_WORKERS=" + std::to_string(workers_.size()));
  std::vector<char*> argv, envp;
  for (std::string& a : w.spec.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  // The worker's engine takes its stop signals itself (main blocks them
  // again as it starts): it gets them unblocked, like SIGCHLD.
  sigset_t child_mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &child_mask);
  sigdelset(&child_mask, SIGINT);
  sigdelset(&child_mask, SIGTERM);
  sigdelset(&child_mask, SIGCHLD);
  const char* exe = options_.executable.c_str();
  static constexpr char exec_failed[] = "troupe: cannot start a worker: execve failed\n";
  (void)std::fflush(stdout);  // nothing buffered is written twice
  (void)std::fflush(stderr);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid == 0) {
    // Why: a parent killed with SIGKILL cannot stop its workers; the kernel
    // then sends them SIGTERM, and they stop as if it had.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);  // the parent died before prctl
    ::sigprocmask(SIG_SETMASK, &child_mask, nullptr);
    ::execve(exe, argv.data(), envp.data());
    [[maybe_unused]] auto n = ::write(2, exec_failed, sizeof exec_failed - 1);
    ::_exit(127);
  }
  const auto now = clock::now();
  w.restart_at.reset();
  if (pid < 0) {
    spdlog::error("supervisor: cannot start worker {} (engine {}): fork: {}; retrying in {} ms",
                  w.spec.index, w.spec.engine_id, std::strerror(errno), w.backoff.count());
    w.restart_at = now + w.backoff;
    w.backoff = std::min(w.backoff * 2, options_.max_backoff);
    return;
  }
  w.pid = pid;
  w.started = now;
  spdlog::info("supervisor: worker {} (engine {}, pid {}) started: links on {}, admin {}",
               w.spec.index, w.spec.engine_id, pid, w.spec.listen,
               w.spec.admin.empty() ? std::string("none") : "on " + w.spec.admin);
}

void worker_supervisor::reap(clock::time_point now) {
  // Only our own workers, each by its PID: a PID is not reused before it is
  // reaped, so every kill() above reaches the worker it means.
  for (worker& w : workers_) {
    if (w.pid <= 0) continue;
    int status = 0;
    const pid_t r = ::waitpid(w.pid, &status, WNOHANG);
    if (r == w.pid) {
      on_exit(w, status, now);
    } else if (r < 0 && errno == ECHILD) {  // not ours any more (cannot happen; do not spin)
      spdlog::error("supervisor: worker {} (pid {}) vanished", w.spec.index, w.pid);
      w.pid = -1;
      w.done = true;
    }
  }
}

void worker_supervisor::on_exit(worker& w, int status, clock::time_point now) {
  const pid_t pid = std::exchange(w.pid, -1);
  const std::string how = describe_status(status);
  if (stopping_) {
    spdlog::info("supervisor: worker {} (engine {}, pid {}) stopped: {}", w.spec.index,
                 w.spec.engine_id, pid, how);
    return;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    // It was told to stop (`troupe stop`, or SIGTERM to its PID): leave it.
    w.done = true;
    spdlog::warn(
        "supervisor: worker {} (engine {}, pid {}) exited with status 0 on its own; "
        "not restarting it",
        w.spec.index, w.spec.engine_id, pid);
    return;
  }
  if (now - w.started >= options_.stable_after) w.backoff = options_.first_backoff;
  spdlog::error("supervisor: worker {} (engine {}, pid {}) died: {}; restarting in {} ms",
                w.spec.index, w.spec.engine_id, pid, how, w.backoff.count());
  w.restart_at = now + w.backoff;
  w.backoff = std::min(w.backoff * 2, options_.max_backoff);
}

void worker_supervisor::begin_stop(int sig, clock::time_point now) {
  stopping_ = true;
  kill_at_ = now + options_.stop_timeout;
  for (worker& w : workers_) w.restart_at.reset();
  spdlog::info("supervisor: received {}, stopping {} workers (SIGKILL after {} ms)",
               signal_name(sig), running(), options_.stop_timeout.count());
  kill_all(SIGTERM);
}

void worker_supervisor::kill_all(int sig) {
  for (const worker& w : workers_) {
    if (w.pid > 0) ::kill(w.pid, sig);
  }
}

std::size_t worker_supervisor::running() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(workers_.begin(), workers_.end(), [](const worker& w) { return w.pid > 0; }));
}

bool worker_supervisor::anything_left() const noexcept {
  return std::any_of(workers_.begin(), workers_.end(),
                     [](const worker& w) { return w.pid > 0 || w.restart_at; });
}

std::optional<worker_supervisor::clock::time_point> worker_supervisor::next_deadline()
    const noexcept {
  if (stopping_) {
    if (killed_) return std::nullopt;
    return kill_at_;
  }
  std::optional<clock::time_point> next;
  for (const worker& w : workers_) {
    if (w.restart_at && (!next || *w.restart_at < *next)) next = w.restart_at;
  }
  return next;
}

int worker_supervisor::run() {
  sigset_t wanted;
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGINT);
  sigaddset(&wanted, SIGTERM);
  sigaddset(&wanted, SIGCHLD);
  // Why SIG_DFL: an inherited SIG_IGN for SIGCHLD would reap the workers
  // behind our back, and their deaths would go unseen.
  if (::signal(SIGCHLD, SIG_DFL) == SIG_ERR ||
      ::pthread_sigmask(SIG_BLOCK, &wanted, nullptr) != 0) {
    spdlog::error("supervisor: cannot set up its signals: {}", std::strerror(errno));
    return 1;
  }
  spdlog::info("supervisor: pid {}, {} workers", ::getpid(), workers_.size());
  for (worker& w : workers_) start(w);

  for (;;) {
    if (stopping_ && running() == 0) break;
    if (!stopping_ && !anything_left()) {
      spdlog::info("supervisor: every worker has exited on its own; stopping");
      break;
    }
    siginfo_t info{};
    int sig = 0;
    if (const auto deadline = next_deadline()) {
      const auto wait =
          std::max(std::chrono::nanoseconds(0), std::chrono::nanoseconds(*deadline - clock::now()));
      timespec ts{};
      ts.tv_sec = static_cast<time_t>(wait.count() / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(wait.count() % 1'000'000'000);
      sig = ::sigtimedwait(&wanted, &info, &ts);
    } else {
      sig = ::sigwaitinfo(&wanted, &info);
    }
    const auto now = clock::now();
    if (sig == SIGCHLD) {
      reap(now);
    } else if (sig == SIGINT || sig == SIGTERM) {
      if (!stopping_) {
        begin_stop(sig, now);
      } else if (!killed_) {
        spdlog::warn("supervisor: received {} again: SIGKILL to {} workers", signal_name(sig),
                     running());
        killed_ = true;
        kill_all(SIGKILL);
      }
    }
    // sig < 0: the deadline passed (EAGAIN) or EINTR; the checks below act.
    if (stopping_) {
      if (!killed_ && now >= kill_at_ && running() > 0) {
        spdlog::warn("supervisor: {} workers still alive after {} ms: SIGKILL", running(),
                     options_.stop_timeout.count());
        killed_ = true;
        kill_all(SIGKILL);
      }
      continue;
    }
    for (worker& w : workers_) {
      if (w.restart_at && *w.restart_at <= now) {
        start(w);
        if (w.pid > 0) ++restarts_;
      }
    }
  }
  spdlog::info("supervisor: all workers stopped; restarts: {}", restarts_);
  return 0;
}

}  // namespace troupe
