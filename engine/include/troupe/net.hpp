#pragma once
// Sockets for actors: TCP listen, accept, connect, recv and send as
// awaitables on the shard's own reactor (io_uring, or epoll). A coroutine
// handler that awaits one waits like it waits for an ask: its actor takes no
// other message meanwhile, and the shard runs every other actor.
//
//     troupe::task<void> on(const serve&) {
//       std::array<std::byte, 4096> buf;
//       for (;;) {
//         auto n = co_await troupe::net::recv(sock, buf);
//         if (!n || *n == 0) break;                       // error or closed
//         if (!co_await troupe::net::send_all(sock, {buf.data(), *n})) break;
//       }
//     }

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "troupe/io/reactor.hpp"
#include "troupe/result.hpp"
#include "troupe/task.hpp"

namespace troupe::net {

/// A socket descriptor, owned: closed when the object ends. Move-only, so
/// it can be handed to the actor that will serve it (spawn<A>(std::move(s))).
class socket {
 public:
  socket() noexcept = default;
  explicit socket(int fd) noexcept : fd_(fd) {}
  socket(socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  socket& operator=(socket&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~socket() { close(); }
  int fd() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// The port it is bound to (after listen on port 0: the one chosen).
  std::uint16_t local_port() const noexcept;
  void close() noexcept;

 private:
  int fd_ = -1;
};

/// Splits "host:port" (port 0..65535); false if it is not one.
bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port);

/// Makes `s` suit the calling shard's reactor (non-blocking for epoll).
void adapt(socket& s) noexcept;

/// Binds and listens on `host` (an IPv4 address, e.g. "127.0.0.1";
/// "0.0.0.0" for all) and `port` (0: any free port). On a shard's thread
/// (the socket suits that shard's reactor).
result<socket> listen(const std::string& host, std::uint16_t port, int backlog = 1024);

namespace internal {
/// The calling shard's reactor; null outside a shard or in inline mode.
io::reactor* current_reactor() noexcept;
/// Sets up `o` for the calling shard; a reactor-less caller gets -ENOTSUP.
io::op prepare(io::op_kind kind, int fd, void* buf, std::size_t len) noexcept;
error io_error(const char* what, int neg_errno);
}  // namespace internal

/// co_await accept(listener) → result<socket>: the next connection.
struct accept_awaiter : io::op {
  troupe::result<socket> await_resume() const {
    if (this->result < 0) return internal::io_error("accept", this->result);
    return socket(this->result);
  }
};
inline accept_awaiter accept(const socket& listener) {
  return {internal::prepare(io::op_kind::accept, listener.fd(), nullptr, 0)};
}

/// co_await recv(s, buf) → result<size_t>: bytes read into `buf`; 0 when
/// the peer has closed its side.
struct recv_awaiter : io::op {
  troupe::result<std::size_t> await_resume() const {
    if (this->result < 0) return internal::io_error("recv", this->result);
    return static_cast<std::size_t>(this->result);
  }
};
inline recv_awaiter recv(const socket& s, std::span<std::byte> buf) {
  return {internal::prepare(io::op_kind::recv, s.fd(), buf.data(), buf.size())};
}

/// co_await send_some(s, bytes) → result<size_t>: bytes the kernel took.
struct send_awaiter : io::op {
  troupe::result<std::size_t> await_resume() const {
    if (this->result < 0) return internal::io_error("send", this->result);
    return static_cast<std::size_t>(this->result);
  }
};
inline send_awaiter send_some(const socket& s, std::span<const std::byte> bytes) {
  return {internal::prepare(io::op_kind::send, s.fd(), const_cast<std::byte*>(bytes.data()),
                            bytes.size())};
}

/// co_await send_all(s, bytes) → result<done>: every byte sent, one send
/// in flight at a time, so a slow reader slows the writer rather than
/// letting memory grow.
/// (Defined once, in the engine: an inline coroutine's frame type differs
/// between translation units, which link-time optimisation reports.)
task<result<done>> send_all(const socket& s, std::span<const std::byte> bytes);

/// co_await connect(host, port) → result<socket>: a connected TCP socket.
task<result<socket>> connect(std::string host, std::uint16_t port);

}  // namespace troupe::net
