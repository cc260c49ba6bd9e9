#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <coroutine>
#include <string>
#include <thread>
#include <vector>

#include "support/seccomp.hpp"
#include "troupe/io/reactor.hpp"

using namespace std::chrono_literals;
using troupe::io::backend;
using troupe::io::backend_choice;
using troupe::io::reactor;

namespace {

// A minimal eager coroutine for driving awaitables in tests.
struct fire_and_forget {
  struct promise_type {
    fire_and_forget get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

fire_and_forget sleeper(reactor& r, std::chrono::milliseconds d, int id, std::vector<int>& out) {
  co_await r.sleep_for(d);
  out.push_back(id);
}

/// Runs `body` in a forked child that may not use io_uring; returns what
/// the child wrote to its pipe and its exit status.
template <class F>
std::pair<std::string, int> in_child_without_uring(F body) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    if (!troupe::test::forbid_io_uring()) _exit(90);
    std::string out = body();
    [[maybe_unused]] auto n = write(fds[1], out.data(), out.size());
    _exit(0);
  }
  close(fds[1]);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {got, status};
}

}  // namespace

TEST_CASE("the probe reports io_uring and its features on this kernel", "[io][probe]") {
  auto p = troupe::io::probe();
  if (!p.uring_available) {
    // Not a pass: the io_uring backend goes untested here, and the log says so.
    WARN("io_uring is not available on this machine, so the io_uring backend is untested: "
         << p.failure);
    CHECK(troupe::io::reactor().kind() == backend::epoll);
    return;
  }
  CHECK(p.describe().rfind("io_uring (", 0) == 0);
  reactor r;
  CHECK(r.kind() == backend::uring);
  CHECK(r.fallback_reason().empty());
}

TEST_CASE("reactor timers resume coroutines in deadline order", "[io][timer]") {
  for (auto choice : {backend_choice::automatic, backend_choice::epoll}) {
    reactor r(choice);
    std::vector<int> fired;
    sleeper(r, 30ms, 3, fired);
    sleeper(r, 10ms, 1, fired);
    sleeper(r, 20ms, 2, fired);
    sleeper(r, 20ms, 22, fired);  // same deadline: first armed, first fired
    auto end = std::chrono::steady_clock::now() + 5s;
    while (fired.size() < 4 && std::chrono::steady_clock::now() < end) r.run_once(true);
    CHECK(fired == std::vector<int>{1, 2, 22, 3});
  }
}

TEST_CASE("another thread wakes a reactor blocked with no deadline", "[io][wake]") {
  for (auto choice : {backend_choice::automatic, backend_choice::epoll}) {
    reactor r(choice);
    auto t0 = std::chrono::steady_clock::now();
    std::thread waker([&r] {
      std::this_thread::sleep_for(20ms);
      r.wake();
    });
    INFO("backend " << troupe::io::to_string(r.kind()));
    int handled = r.run_once(true);  // blocks until the wake
    waker.join();
    CHECK(handled >= 1);
    CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
  }
}

TEST_CASE("when io_uring is forbidden the probe says what failed and what to do", "[io][probe]") {
  auto [out, status] = in_child_without_uring([] {
    auto p = troupe::io::probe();
    return std::string(p.uring_available ? "available" : "unavailable") + "|" + p.failure;
  });
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(out.rfind("unavailable|", 0) == 0);
  CHECK(out.find("io_uring_setup failed") != std::string::npos);
  CHECK(out.find("Operation not permitted") != std::string::npos);
  CHECK(out.find("seccomp") != std::string::npos);
  CHECK(out.find("--io=epoll") != std::string::npos);
}

TEST_CASE("without io_uring the reactor falls back to epoll, or fails clearly when told to use it",
          "[io][probe]") {
  auto [out, status] = in_child_without_uring([] {
    std::string s;
    {
      reactor r;  // automatic
      s += std::string(troupe::io::to_string(r.kind())) + "|" + r.fallback_reason() + "|";
    }
    try {
      reactor strict(backend_choice::uring);
      s += "no error";
    } catch (const troupe::io::setup_error& e) {
      s += std::string("error: ") + e.what();
    }
    return s;
  });
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(out.rfind("epoll|io_uring_setup failed", 0) == 0);
  CHECK(out.find("error: io_uring_setup failed: Operation not permitted") != std::string::npos);
}
