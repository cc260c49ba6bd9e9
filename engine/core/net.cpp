// Sockets for actors: the descriptors and addresses; the waiting is done by
// the shard's reactor (io/).

#include "troupe/net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>

#include "core/shard.hpp"
#include "troupe/actor.hpp"

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

/// A stream socket (TCP or Unix) suited to the calling shard's reactor.
result<socket> stream_socket(int family, const char* what) {
  io::reactor* r = internal::current_reactor();
  int flags = SOCK_STREAM | SOCK_CLOEXEC;
  if (r && r->wants_nonblocking()) flags |= SOCK_NONBLOCK;
  int fd = ::socket(family, flags, 0);
  if (fd < 0) return internal::io_error(what, -errno);
  return socket(fd);
}

result<socket> tcp_socket(const char* what) { return stream_socket(AF_INET, what); }

/// "unix:PATH", as errors name a Unix socket.
std::string unix_name(const std::string& path) { return "unix:" + path; }

/// The address of the Unix socket at `path`, and its length.
result<sockaddr_un> unix_address(const std::string& path, const char* what, socklen_t& len) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty()) {
    return error(errc::misuse, std::string(what) + " unix: the socket path is empty");
  }
  if (path.size() >= sizeof sa.sun_path || path.find('\0') != std::string::npos) {
    return error(errc::misuse,
                 std::string(what) + " " + unix_name(path) + ": the path is " +
                     std::to_string(path.size()) + " bytes long; a Unix socket path has at most " +
                     std::to_string(sizeof sa.sun_path - 1) + " (use a shorter directory)");
  }
  std::memcpy(sa.sun_path, path.data(), path.size());
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return sa;
}

/// Makes room at `path` for a new listener: a socket file that nobody
/// listens on any more is removed; a live listener, or a file that is not a
/// socket, is left alone and is an error.
result<done> clear_stale(const std::string& path, const sockaddr_un& sa, socklen_t len) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return done{};  // nothing there (or bind will say)
  if (!S_ISSOCK(st.st_mode)) {
    return error(errc::io, "listen " + unix_name(path) + ": the path exists and is not a socket");
  }
  // Alive is what accepts a connection (or has a full backlog); refused is
  // a file left by a listener that is gone.
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (probe < 0) return internal::io_error(("listen " + unix_name(path)).c_str(), -errno);
  const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&sa), len);
  const int err = rc == 0 ? 0 : errno;
  ::close(probe);
  if (rc == 0 || err == EAGAIN) {
    return error(errc::io, "listen " + unix_name(path) + ": another socket listens there");
  }
  if (err == ECONNREFUSED) ::unlink(path.c_str());
  return done{};
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
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
  return 0;
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

result<socket> listen_unix(const std::string& path, int backlog) {
  socklen_t len = 0;
  auto sa = unix_address(path, "listen", len);
  if (!sa) return sa.err();
  if (auto cleared = clear_stale(path, *sa, len); !cleared) return cleared.err();
  auto s = stream_socket(AF_UNIX, "socket");
  if (!s) return s;
  if (::bind(s->fd(), reinterpret_cast<const sockaddr*>(&*sa), len) != 0) {
    return internal::io_error(("bind " + unix_name(path)).c_str(), -errno);
  }
  if (::listen(s->fd(), backlog) != 0) {
    return internal::io_error(("listen " + unix_name(path)).c_str(), -errno);
  }
  return s;
}

task<result<socket>> connect_unix(std::string path) {
  socklen_t len = 0;
  auto sa = unix_address(path, "connect", len);
  if (!sa) co_return sa.err();
  const sockaddr_un addr = *sa;  // lives in this frame until the connect completes
  // A full backlog (EAGAIN, epoll) is worth waiting out a little: its
  // server is busy, not gone. About 5 s in all.
  for (int attempt = 0;; ++attempt) {
    auto s = stream_socket(AF_UNIX, "socket");
    if (!s) co_return std::move(s);
    io::op o = internal::prepare(io::op_kind::connect, s->fd(), nullptr, 0);
    o.addr = reinterpret_cast<const sockaddr*>(&addr);
    o.addrlen = len;
    const int rc = co_await o;
    if (rc == -EAGAIN && attempt < 500) {
      co_await sleep_for{std::chrono::milliseconds(attempt < 20 ? 1 : 10)};
      continue;
    }
    if (rc < 0) co_return internal::io_error(("connect " + unix_name(path)).c_str(), rc);
    co_return std::move(*s);
  }
}

acceptor::acceptor(const socket& listener, std::size_t queue_bound)
    : reactor_(internal::current_reactor()), fd_(listener.fd()) {
  if (reactor_) stream_ = reactor_->open_accept_stream(fd_, queue_bound);
}

acceptor& acceptor::operator=(acceptor&& o) noexcept {
  if (this != &o) {
    close();
    reactor_ = std::exchange(o.reactor_, nullptr);
    stream_ = std::exchange(o.stream_, nullptr);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

void acceptor::close() noexcept {
  if (reactor_ && stream_) reactor_->close_accept_stream(stream_);
  stream_ = nullptr;
  reactor_ = nullptr;
  fd_ = -1;
}

accept_awaiter acceptor::next() noexcept {
  if (!stream_) return {internal::prepare(io::op_kind::accept, fd_, nullptr, 0)};
  accept_awaiter a{internal::prepare(io::op_kind::accept_next, fd_, nullptr, 0)};
  // Only on the shard that made it: another shard's reactor has no such stream.
  if (a.owner != reactor_) {
    a.owner = nullptr;
    a.result = -EXDEV;
  }
  a.stream = stream_;
  return a;
}

io::buffer_stats pooled_buffers() noexcept {
  io::reactor* r = internal::current_reactor();
  return r ? r->buffers() : io::buffer_stats{};
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
  if (neg_errno == -EXDEV) {
    return error(errc::misuse,
                 std::string(what) + ": an acceptor is used on the shard that made it, only");
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
