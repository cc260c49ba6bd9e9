// Sockets for actors: the descriptors and addresses; the waiting is done by
// the shard's reactor (io/).

#include "troupe/net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "shard.hpp"

namespace troupe::net {

namespace {

result<sockaddr_in> ipv4(const std::string& host, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    return error(errc::misuse, "'" + host + "' is not an IPv4 address");
  }
  return sa;
}

/// A TCP socket suited to the calling shard's reactor.
result<socket> tcp_socket(const char* what) {
  io::reactor* r = internal::current_reactor();
  int flags = SOCK_STREAM | SOCK_CLOEXEC;
  if (r && r->wants_nonblocking()) flags |= SOCK_NONBLOCK;
  int fd = ::socket(AF_INET, flags, 0);
  if (fd < 0) return internal::io_error(what, -errno);
  return socket(fd);
}

}  // namespace

void adapt(socket& s) noexcept {
  io::reactor* r = internal::current_reactor();
  const int flags = ::fcntl(s.fd(), F_GETFL);
  if (flags < 0) return;
  const bool nonblocking = r && r->wants_nonblocking();
  ::fcntl(s.fd(), F_SETFL, nonblocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
}

void socket::close() noexcept {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

std::uint16_t socket::local_port() const noexcept {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
  return ntohs(sa.sin_port);
}

result<socket> listen(const std::string& host, std::uint16_t port, int backlog) {
  auto sa = ipv4(host, port);
  if (!sa) return sa.err();
  auto s = tcp_socket("socket");
  if (!s) return s;
  int one = 1;
  ::setsockopt(s->fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s->fd(), reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) != 0) {
    return internal::io_error(("bind " + host + ":" + std::to_string(port)).c_str(), -errno);
  }
  if (::listen(s->fd(), backlog) != 0) return internal::io_error("listen", -errno);
  return s;
}

task<result<socket>> connect(std::string host, std::uint16_t port) {
  auto sa = ipv4(host, port);
  if (!sa) co_return sa.err();
  auto s = tcp_socket("socket");
  if (!s) co_return std::move(s);
  const sockaddr_in addr = *sa;  // lives in this frame until the connect completes
  io::op o = internal::prepare(io::op_kind::connect, s->fd(), nullptr, 0);
  o.addr = reinterpret_cast<const sockaddr*>(&addr);
  o.addrlen = sizeof addr;
  const int rc = co_await o;
  if (rc < 0) {
    co_return internal::io_error(("connect " + host + ":" + std::to_string(port)).c_str(), rc);
  }
  int one = 1;
  ::setsockopt(s->fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  co_return std::move(*s);
}

namespace internal {

io::reactor* current_reactor() noexcept {
  troupe::internal::shard* s = troupe::internal::this_shard;
  return s ? s->reactor() : nullptr;
}

io::op prepare(io::op_kind kind, int fd, void* buf, std::size_t len) noexcept {
  io::op o;
  o.owner = current_reactor();
  o.kind = kind;
  o.fd = fd;
  o.buf = buf;
  o.len = len;
  if (!o.owner) o.result = -ENOTSUP;  // ready at once, with this error
  return o;
}

error io_error(const char* what, int neg_errno) {
  if (neg_errno == -ENOTSUP) {
    return error(errc::misuse, std::string(what) +
                                   ": sockets need a shard's reactor (not inline mode, not an "
                                   "outside thread)");
  }
  return error(errc::io, std::string(what) + ": " + std::strerror(-neg_errno));
}

}  // namespace internal
task<result<done>> send_all(const socket& s, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    auto n = co_await send_some(s, bytes);
    if (!n) co_return n.err();
    bytes = bytes.subspan(*n);
  }
  co_return done{};
}

bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = text.substr(0, colon);
  try {
    const unsigned long p = std::stoul(text.substr(colon + 1));
    if (p > 65535) return false;
    port = static_cast<std::uint16_t>(p);
  } catch (...) {
    return false;
  }
  return true;
}

}  // namespace troupe::net
