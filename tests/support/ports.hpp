#pragma once
// Test helper: TCP ports on 127.0.0.1 that are free to listen on.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace troupe::test {

/// `n` distinct TCP ports on 127.0.0.1 that were free a moment ago (each is
/// held until all are picked, so they differ).
inline std::vector<std::uint16_t> free_ports(std::size_t n) {
  std::vector<int> fds;
  std::vector<std::uint16_t> ports;
  for (std::size_t i = 0; i < n; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      for (int f : fds) close(f);
      if (fd >= 0) close(fd);
      throw std::runtime_error("free_ports: cannot bind a socket on 127.0.0.1");
    }
    fds.push_back(fd);
    ports.push_back(ntohs(a.sin_port));
  }
  for (int f : fds) close(f);
  return ports;
}

/// One port that was free a moment ago (for a leader, whose address the
/// members must know before it starts).
inline std::uint16_t free_port() { return free_ports(1).front(); }

}  // namespace troupe::test
