#pragma once
// The interfaces through which the core reaches the layers above it. The
// core owns them; remote and cluster fill them (troupe::extension::attach).
// None is on the local hot path: a message to an actor of this engine never
// touches them.
//
//   core ──remote_router──▶ remote (links to other engines)
//        ──name_backend───▶ cluster (names kept in etcd)
//        ──log_forwarder──▶ cluster (actors' log lines to the leader)
//        ──control_registry: each layer's handlers of its own control messages

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "troupe/address.hpp"
#include "troupe/internal/envelope.hpp"
#include "troupe/lifecycle.hpp"
#include "troupe/message.hpp"

namespace troupe::internal {

class shard;

/// One shard's way to the other engines. The shard owns it (set before its
/// thread starts) and calls it on its own thread only.
class remote_router {
 public:
  virtual ~remote_router() = default;
  /// Once the shard runs, on its thread.
  virtual void start() = 0;
  /// `e` is for an actor or shard of another engine: queued for it, or
  /// dead-lettered (counted) when there is no way there. Takes `e`.
  virtual void send(envelope* e) = 0;
  /// Sends what was queued this pass of the shard's loop.
  virtual void flush() = 0;
  /// Shutting down: nothing more is sent or accepted.
  virtual void stop() = 0;
  /// Bytes waiting to be sent: the shard stops running actors while it is
  /// large (back-pressure). Read after every message, so a plain load, not
  /// a virtual call; the router keeps `backlog_` up to date.
  std::size_t backlog() const noexcept { return backlog_; }
  /// `engine` is lost (the shard's peer_lost handling): what this router
  /// still waits for from it (watches) ends with `why`.
  virtual void engine_lost(std::uint32_t engine, const std::string& why) = 0;

 protected:
  std::size_t backlog_ = 0;
};

/// Where names live when not in the core's own directory (engine/core/
/// directory.cpp): etcd, with a convention kept there. Shared by all shards
/// of one system; its members are called on the calling shard's thread.
class name_backend {
 public:
  virtual ~name_backend() = default;
  /// A name_* control message at shard `s`: handled (true; it took `e`)
  /// or not its own (false). `running`: the engine is not shutting down.
  virtual bool handle(shard& s, envelope* e, bool running) = 0;
  /// `engine` is lost: what `s` cached from or for it goes.
  virtual void forget_engine(shard& s, std::uint32_t engine) = 0;
  /// stop() begins: queued requests are answered, nothing new starts.
  virtual void close() = 0;
};

/// Receives the lines actors log (actor_base::write_log), on the logging
/// actor's shard thread, after the core has logged them.
class log_forwarder {
 public:
  virtual ~log_forwarder() = default;
  virtual void forward(shard& s, const address& who, log_level level, const std::string& text) = 0;
};

/// Handlers of control messages (envelopes with flag_control, for a shard
/// rather than an actor), by message type. Filled before the shards run,
/// read-only after: no lock. A handler runs on the shard's thread from its
/// loop and returns true if it took the envelope (forwarded or kept it);
/// false: the shard destroys it.
class control_registry {
 public:
  using handler = std::function<bool(shard&, envelope*)>;

  /// Installs the handler of type `t`; throws std::logic_error if one is
  /// there already (two layers may not claim one message).
  void add(const message_type* t, handler h);
  template <class M>
  void add(handler h) {
    add(type_id<M>(), std::move(h));
  }
  /// Null if no layer handles `t`.
  const handler* find(const message_type* t) const noexcept {
    auto it = handlers_.find(t);
    return it == handlers_.end() ? nullptr : &it->second;
  }

 private:
  std::unordered_map<const message_type*, handler> handlers_;
};

}  // namespace troupe::internal
