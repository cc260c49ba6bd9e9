#pragma once
// Sockets for actors: TCP and Unix-domain listen, accept, connect, recv and
// send as awaitables on the shard's own reactor (io_uring, or epoll). A
// coroutine handler that awaits one waits like it waits for an ask: its
// actor takes no other message meanwhile, and the shard runs every other
// actor.
//
// Two ways serve a busy server better, with the same API on every backend:
// an `acceptor` accepts ahead with one multishot accept where the kernel has
// it (connections queue, up to a bound, while the actor is busy), and
// `recv_pooled` reads into a buffer of the shard's pool that the kernel
// picks when the bytes arrive, so that a thousand idle connections hold no
// buffer at all.
//
//     troupe::task<void> on(const serve&) {
//       std::array<std::byte, 4096> buf;
//       for (;;) {
//         auto n = co_await troupe::net::recv(sock, buf);
//         if (!n || *n == 0) break;                       // error or closed
//         if (!co_await troupe::net::send_all(sock, {buf.data(), *n})) break;
//       }
//     }
//
//     troupe::task<void> on(const serve&) {            // the same, pooled
//       for (;;) {
//         auto b = co_await troupe::net::recv_pooled(sock);
//         if (!b || b->empty()) break;                    // error or closed
//         if (!co_await troupe::net::send_all(sock, b->bytes())) break;
//       }                                                 // b goes back to the pool
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
  /// The port it is bound to (after listen on port 0: the one chosen); 0
  /// for a Unix-domain socket.
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

/// Binds and listens on the Unix-domain stream socket at `path` (a file
/// path of at most 107 bytes). A socket file left at `path` by a listener
/// that is gone is removed first; anything else there (a live listener, a
/// file that is not a socket) is an error. The file stays when the socket
/// closes (the next listen_unix removes it). Errors name the path. On a
/// shard's thread.
result<socket> listen_unix(const std::string& path, int backlog = 1024);

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

/// Connections from one listening socket (TCP or Unix), taken one by one
/// with `co_await acc.next()` → result<socket>.
///
/// Where the shard's kernel has multishot accept (io_uring), one accept
/// stays armed from construction on, and connections that arrive while
/// nobody awaits next() wait in a queue of about `queue_bound`: at the
/// bound the kernel stops accepting, and they wait in the listen backlog
/// until the queue is down to half (the kernel drains the backlog in one
/// go, so the queue holds at most queue_bound + backlog). Elsewhere (epoll,
/// older kernels) next() is one accept, like accept(listener).
/// `accepts_ahead()` tells which.
///
/// Threads: the shard that made it, only. Lifetime: it refers to the
/// listener and owns no descriptor but its queued connections (closed with
/// it); the listener must outlive it (declare the acceptor after the socket
/// in an actor, so that it ends first). Destroy it when no next() waits on
/// it; the reactor keeps what the kernel still uses until the kernel lets
/// go. System shutdown ends a waiting next() with an error (ECANCELED).
class acceptor {
 public:
  static constexpr std::size_t default_queue_bound = 64;

  acceptor() noexcept = default;
  explicit acceptor(const socket& listener, std::size_t queue_bound = default_queue_bound);
  acceptor(acceptor&& o) noexcept
      : reactor_(std::exchange(o.reactor_, nullptr)), stream_(std::exchange(o.stream_, nullptr)),
        fd_(std::exchange(o.fd_, -1)) {}
  acceptor& operator=(acceptor&& o) noexcept;
  acceptor(const acceptor&) = delete;
  acceptor& operator=(const acceptor&) = delete;
  ~acceptor() { close(); }

  /// co_await next() → result<socket>: the oldest queued connection, or the
  /// next to arrive. One next() at a time.
  accept_awaiter next() noexcept;
  /// True when the kernel accepts ahead (multishot accept).
  bool accepts_ahead() const noexcept { return stream_ != nullptr; }
  /// Connections accepted ahead and waiting for next(); 0 when it does not
  /// accept ahead.
  std::size_t queued() const noexcept {
    return stream_ ? reactor_->queued_connections(stream_) : 0;
  }
  /// Stops accepting; queued connections are closed. Then empty.
  void close() noexcept;

 private:
  io::reactor* reactor_ = nullptr;
  io::accept_stream* stream_ = nullptr;
  int fd_ = -1;
};

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

/// A buffer of the shard's pool holding the bytes one recv_pooled read:
/// move-only; it goes back to the pool when destroyed (or release()d).
/// Keep it on the shard that read it, and not for ever: when all the pool's
/// buffers are out (256 of 16 KiB per shard), recv_pooled waits for one.
using pooled_buffer = io::pooled_buffer;

/// co_await recv_pooled(s) → result<pooled_buffer>: the bytes that arrived
/// next (at most one buffer's worth), in a pooled buffer; an empty one
/// when the peer has closed its side. One reading operation per socket at a
/// time, as with recv. On io_uring with buffer rings the kernel picks the
/// buffer when the bytes arrive; elsewhere one is taken once the socket is
/// readable. With every buffer out the read waits until one comes back
/// (pooled_buffers().waits counts it); it never fails for that.
struct recv_pooled_awaiter : io::op {
  troupe::result<pooled_buffer> await_resume() {
    if (this->result < 0) return internal::io_error("recv", this->result);
    if (this->result == 0) return pooled_buffer();
    return pooled_buffer(*this->owner, this->buffer, static_cast<std::size_t>(this->result));
  }
};
inline recv_pooled_awaiter recv_pooled(const socket& s) {
  return {internal::prepare(io::op_kind::recv_pooled, s.fd(), nullptr, 0)};
}

/// The calling shard's pool: its size, buffers out, waits. Zeros outside a
/// shard.
io::buffer_stats pooled_buffers() noexcept;

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

/// co_await connect_unix(path) → result<socket>: a socket connected to the
/// Unix-domain listener at `path`. A listener whose backlog is full is
/// tried again for a few seconds before that is an error. Errors name the
/// path.
task<result<socket>> connect_unix(std::string path);

}  // namespace troupe::net
