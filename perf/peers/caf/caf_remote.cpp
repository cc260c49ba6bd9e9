// Remote workloads of caf-perf (see caf_remote.hpp).
//
//   remote-pingpong  A's ping actor sends `ping` to B's pong actor, which
//                    answers `pong`; one outstanding at a time, N round trips
//                    (default 20000).
//   remote-pipeline  A's sender sends N one-way messages of two uint64_t (a
//                    16-byte payload; default 2,000,000) to B's receiver as
//                    fast as it can, in bursts of 1000 with a turn through its
//                    own mailbox in between (as the fan-in senders do), then
//                    one request (count, N) that B answers once it has
//                    received all N. The time runs from the first send to the
//                    answer.
//
// Setup is outside the timing: starting B, remote_actor (TCP connect and the
// BASP handshake) and spawning the local actor. No warm-up messages.
//
// Threads: each process has the W scheduler workers plus the middleman's
// multiplexer thread (it runs the BASP broker, which serializes outgoing
// messages and writes the socket) and middleman.workers BASP workers that
// deserialize incoming messages (CAF's default, 1 on a 2-core machine).
//
// Flow control: there is none for sends to a remote actor. A send to the
// proxy only enqueues into the BASP broker's mailbox, so in remote-pipeline
// the sender can run ahead of the socket and that mailbox grows (as does the
// receiver's mailbox in B when B's worker falls behind). The run still ends:
// every message is eventually written and counted.

#include "caf_remote.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace caf;

namespace caf_perf {

namespace {

using start_atom = atom_constant<atom("start")>;
using done_atom = atom_constant<atom("done")>;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using continue_atom = atom_constant<atom("continue")>;
using count_atom = atom_constant<atom("count")>;

using clock_type = std::chrono::steady_clock;

constexpr const char* loopback = "127.0.0.1";
constexpr uint64_t pipeline_burst = 1000;
constexpr auto ready_timeout = std::chrono::seconds(20);
constexpr auto stop_grace = std::chrono::seconds(5);

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// -- side B's process ---------------------------------------------------------

// A child process running this program with `args`, its stdout on a pipe.
class peer_process {
 public:
  explicit peer_process(const std::vector<std::string>& args) {
    // Everything the child needs is prepared before fork(): between fork and
    // exec it may only make async-signal-safe calls. The binary is executed
    // by its resolved path rather than /proc/self/exe, so that B shows up as
    // caf-perf in ps.
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len <= 0) fail(std::string{"readlink /proc/self/exe: "} + std::strerror(errno));
    exe[len] = '\0';
    std::vector<std::string> argv_text;
    argv_text.emplace_back(exe);
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : argv_text) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) fail(std::string{"pipe: "} + std::strerror(errno));
    pid_t parent = getpid();
    std::fflush(stdout);
    std::fflush(stderr);
    pid_ = fork();
    if (pid_ < 0) {
      int err = errno;
      close(fds[0]);
      close(fds[1]);
      fail(std::string{"fork: "} + std::strerror(err));
    }
    if (pid_ == 0) {
      // Dies with the thread that forked it (this process's main thread), so
      // B never outlives an A that is killed by its watchdog or by timeout(1).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      if (dup2(fds[1], STDOUT_FILENO) < 0) _exit(127);
      int null_fd = open("/dev/null", O_RDONLY);
      if (null_fd >= 0 && null_fd != STDIN_FILENO) {
        dup2(null_fd, STDIN_FILENO);
        close(null_fd);
      }
      execv(exe, argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
  }

  peer_process(const peer_process&) = delete;
  peer_process& operator=(const peer_process&) = delete;

  // Ends the child by its PID: SIGTERM, then SIGKILL if it is still there
  // after the grace period; always reaps it.
  ~peer_process() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      auto deadline = clock_type::now() + stop_grace;
      bool reaped = false;
      while (!reaped && clock_type::now() < deadline) {
        int status = 0;
        pid_t r = waitpid(pid_, &status, WNOHANG);
        if (r == pid_ || (r < 0 && errno != EINTR))
          reaped = true;
        else
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (!reaped) {
        kill(pid_, SIGKILL);
        int status = 0;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
      }
    }
    if (out_ >= 0) close(out_);
  }

  // Reads B's "port <P>" line; fails if B exits or stays silent too long.
  uint16_t wait_port() {
    std::string line;
    auto deadline = clock_type::now() + ready_timeout;
    for (;;) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      if (left.count() <= 0) fail("the serving process did not report its port in time");
      pollfd pfd{out_, POLLIN, 0};
      int r = poll(&pfd, 1, static_cast<int>(left.count()));
      if (r < 0) {
        if (errno == EINTR) continue;
        fail(std::string{"poll: "} + std::strerror(errno));
      }
      if (r == 0) continue;
      char buf[128];
      ssize_t got = read(out_, buf, sizeof(buf));
      if (got < 0) {
        if (errno == EINTR) continue;
        fail(std::string{"read: "} + std::strerror(errno));
      }
      if (got == 0) fail("the serving process exited before it reported its port");
      line.append(buf, static_cast<size_t>(got));
      auto nl = line.find('\n');
      if (nl == std::string::npos) continue;
      unsigned port = 0;
      if (std::sscanf(line.c_str(), "port %u", &port) != 1 || port == 0 || port > 65535)
        fail("unexpected line from the serving process: " + line.substr(0, nl));
      return static_cast<uint16_t>(port);
    }
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

// -- remote-pingpong ----------------------------------------------------------

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

double run_pingpong(actor_system& sys, const actor& pong, uint64_t n) {
  scoped_actor self{sys};
  auto ping = sys.spawn<ping_actor>(pong, actor{self}, n);
  auto t0 = clock_type::now();
  self->send(ping, start_atom::value);
  self->receive([](done_atom) {});
  auto elapsed = seconds_since(t0);
  anon_send_exit(ping, exit_reason::user_shutdown);
  return static_cast<double>(n) / elapsed;
}

// -- remote-pipeline ----------------------------------------------------------

// Counts the messages; answers (count, N) once N have arrived. The answer
// does not rely on the request arriving after the messages.
class pipeline_receiver : public event_based_actor {
 public:
  explicit pipeline_receiver(actor_config& cfg) : event_based_actor(cfg) {}

  behavior make_behavior() override {
    return {
        [this](uint64_t, uint64_t) {
          if (++count_ == target_ && pending_.pending()) pending_.deliver(done_atom::value, count_);
        },
        [this](count_atom, uint64_t n) {
          auto promise = make_response_promise();
          if (count_ >= n) {
            promise.deliver(done_atom::value, count_);
            return;
          }
          target_ = n;
          pending_ = std::move(promise);
        },
    };
  }

 private:
  uint64_t count_ = 0;
  uint64_t target_ = 0;
  response_promise pending_;
};

class pipeline_sender : public event_based_actor {
 public:
  pipeline_sender(actor_config& cfg, actor receiver, actor reporter, uint64_t n)
      : event_based_actor(cfg), receiver_(std::move(receiver)), reporter_(std::move(reporter)),
        n_(n) {}

  behavior make_behavior() override {
    return {
        [this](continue_atom) {
          auto end = sent_ + (n_ - sent_ < pipeline_burst ? n_ - sent_ : pipeline_burst);
          for (; sent_ < end; ++sent_) send(receiver_, sent_, n_ - sent_);
          if (sent_ < n_) {
            send(this, continue_atom::value);
            return;
          }
          request(receiver_, infinite, count_atom::value, n_)
              .then([this](done_atom, uint64_t received) {
                send(reporter_, done_atom::value, received);
                quit();
              });
        },
    };
  }

 private:
  actor receiver_;
  actor reporter_;
  uint64_t n_;
  uint64_t sent_ = 0;
};

double run_pipeline(actor_system& sys, const actor& receiver, uint64_t n) {
  scoped_actor self{sys};
  auto sender = sys.spawn<pipeline_sender>(receiver, actor{self}, n);
  uint64_t received = 0;
  auto t0 = clock_type::now();
  self->send(sender, continue_atom::value);
  self->receive([&](done_atom, uint64_t count) { received = count; });
  auto elapsed = seconds_since(t0);
  if (received != n)
    fail("receiver counted " + std::to_string(received) + " messages, expected " +
         std::to_string(n));
  return static_cast<double>(n) / elapsed;
}

}  // namespace

bool is_remote_workload(const std::string& workload) {
  return workload == "remote-pingpong" || workload == "remote-pipeline";
}

uint64_t remote_default_n(const std::string& workload) {
  return workload == "remote-pingpong" ? 20000 : 2000000;
}

double run_remote(actor_system_config& cfg, const std::string& workload, uint64_t n,
                  const std::vector<std::string>& serve_args) {
  cfg.load<io::middleman>();
  // B first, so that it is forked before this process starts CAF's threads.
  peer_process peer{serve_args};
  auto port = peer.wait_port();
  double rate = 0;
  {
    actor_system sys{cfg};
    auto remote = sys.middleman().remote_actor(loopback, port);
    if (!remote) fail("remote_actor: " + sys.render(remote.error()));
    if (workload == "remote-pingpong")
      rate = run_pingpong(sys, *remote, n);
    else
      rate = run_pipeline(sys, *remote, n);
    // ~actor_system closes the connection before B is ended.
  }
  return rate;
}

void serve_remote(actor_system_config& cfg, const std::string& workload) {
  cfg.load<io::middleman>();
  actor_system sys{cfg};
  actor served;
  if (workload == "remote-pingpong")
    served = sys.spawn(pong_actor);
  else
    served = sys.spawn<pipeline_receiver>();
  auto port = sys.middleman().publish(served, 0, loopback);
  if (!port) {
    std::fprintf(stderr, "caf-perf: publish: %s\n", sys.render(port.error()).c_str());
    return;
  }
  std::printf("port %u\n", static_cast<unsigned>(*port));
  std::fflush(stdout);
  // Serves until A ends this process by its PID (or A dies: PDEATHSIG).
  for (;;) pause();
}

}  // namespace caf_perf
