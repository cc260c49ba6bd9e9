#pragma once
// Test helpers for the key-value server: the troupe-kv process, raw TCP
// clients and redis-cli runs. Every wait is bounded.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace troupe::kv::test {

/// A troupe-kv process on a free port of 127.0.0.1, ended by its PID.
class kv_process {
 public:
  explicit kv_process(unsigned shards = 2)
      : child_({TROUPE_KV_BINARY, "--port", "0", "--shards", std::to_string(shards)}) {
    const std::string ready = "kv listening on 127.0.0.1:";
    if (child_.wait_for_output(ready, std::chrono::seconds(20))) {
      const std::string out = child_.output();
      port_ = static_cast<std::uint16_t>(std::stoi(out.substr(out.find(ready) + ready.size())));
    }
  }
  std::uint16_t port() const { return port_; }
  troupe::test::child_process& child() { return child_; }
  bool alive() { return !child_.wait_exit(std::chrono::milliseconds(5)).has_value(); }
  /// SIGTERM, then the exit status (nullopt if it did not end in 20 s).
  std::optional<int> terminate() {
    child_.signal(SIGTERM);
    return child_.wait_exit(std::chrono::seconds(20));
  }

 private:
  troupe::test::child_process child_;
  std::uint16_t port_ = 0;
};

/// A blocking TCP client with a 10 s receive timeout.
class raw_client {
 public:
  explicit raw_client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) close();
  }
  ~raw_client() { close(); }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  bool connected() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      const auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  /// Exactly `n` bytes, or fewer if the peer closed or the timeout passed.
  std::string read(std::size_t n) {
    std::string got(n, '\0');
    std::size_t off = 0;
    while (off < n) {
      const auto r = ::recv(fd_, got.data() + off, n - off, 0);
      if (r <= 0) break;
      off += static_cast<std::size_t>(r);
    }
    got.resize(off);
    return got;
  }
  /// One line, its "\r\n" left off (empty if the peer closed or the timeout passed).
  std::string read_line() {
    std::string line;
    char c;
    for (std::size_t i = 0; i < 1 << 20 && ::recv(fd_, &c, 1, 0) == 1; ++i) {
      line += c;
      if (line.size() >= 2 && line.compare(line.size() - 2, 2, "\r\n") == 0) {
        line.resize(line.size() - 2);
        break;
      }
    }
    return line;
  }
  /// Sends `request` and reads as many bytes as `expected` has.
  std::string roundtrip(const std::string& request, const std::string& expected) {
    if (!send(request)) return "<send failed>";
    return read(expected.size());
  }
  /// True when the peer has closed the connection (reads EOF within 10 s).
  bool closed_by_peer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
};

/// A command in RESP, as clients send it.
inline std::string resp(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}
inline std::string bulk(const std::string& v) {
  return "$" + std::to_string(v.size()) + "\r\n" + v + "\r\n";
}

/// The path of redis-cli, or empty when it is not installed.
inline std::string redis_cli_path() {
  for (const char* p : {"/usr/bin/redis-cli", "/usr/local/bin/redis-cli"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return {};
}

/// Runs a shell command (bounded by `timeout 60`) and returns its output
/// (stdout and stderr).
inline std::string run_shell(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(("timeout 60 " + command + " 2>&1").c_str(), "r"),
                                          ::pclose);
  if (!p) return "<popen failed>";
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p.get())) > 0) out.append(buf, n);
  return out;
}

/// Raises this process's descriptor limit to its hard limit; returns the soft limit.
inline rlim_t raise_descriptor_limit() {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &r);
  ::getrlimit(RLIMIT_NOFILE, &r);
  return r.rlim_cur;
}

}  // namespace troupe::kv::test
