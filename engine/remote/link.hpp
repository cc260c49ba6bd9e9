#pragma once
// Links to peer engines. The link between two engines is a group of TCP
// connections, one per (shard, peer engine) on each side: with n shards
// here and m there, max(n, m) connections, the k-th served by shard k % n
// here and k % m there. A shard sends on one connection of the group (the
// first it was handed), so a sender's messages take one path and keep
// their order without locks; what arrives on a connection is routed by the
// shard that serves it through the lanes as usual.
//
// Shard 0 (the hub) accepts, dials, and keeps the groups: it dials or
// accepts a group's first connection, dials the others on the dialling
// side, and hands each to its shard. When every connection of a group is
// served on both sides (each side says "ready" on the first connection),
// the engine is up. Any connection's end ends the whole group: the engine
// is lost (unless another group to it is up), and every shard closes its
// connections of the group.
//
//   hello := "TRPE" u16 version u32 engine u16 convention_bytes convention u8[32] nonce
//            u16 shards u16 index u64 group
//   proof := u8[32] HMAC-SHA256(secret, "troupe-link" | peer's nonce | own engine)
//
// The dialling side names the group (a random id) and each connection's
// index in it; the accepting side sends zeros there. Each side sends its
// hello, reads the other's, and (with a secret) sends and checks the
// proofs; then frames flow both ways. A connection that fails the
// handshake, sends a malformed frame or falls silent past the timeout is
// closed with a logged reason; what was queued on it becomes dead letters
// and the asks waiting on that engine fail.
//
// Each side confirms what it has received on each connection (ack frames:
// a running count of messages), soon after it arrives and with its own
// traffic. Messages the kernel took but the peer had not confirmed when the
// connection died are dead letters too ("peer lost"): they may have
// arrived, but nothing is ever counted as gone to a peer that did not say
// it got it.

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/extension_points.hpp"
#include "core/gate.hpp"
#include "core/shard.hpp"
#include "remote/frame.hpp"
#include "troupe/actor.hpp"
#include "troupe/net.hpp"
#include "troupe/remote.hpp"

namespace troupe::internal {

class shard;

using link_options = troupe::link_options;

/// One connection to one peer engine.
struct link {
  net::socket sock;
  std::string peer_text;  ///< "127.0.0.1:7001", for logs
  std::uint32_t peer_engine = 0;
  std::uint64_t group = 0;        ///< the group it belongs to (named by the dialling side)
  std::uint16_t index = 0;        ///< its place in the group; 0: the first
  std::uint16_t peer_shards = 0;  ///< the peer engine's shards, from its hello
  bool dialed = false;            ///< this engine dialled it (peer_text is what it dialled)
  bool up = false;                ///< handshake done
  bool served = false;            ///< part of its group here: its end ends the group
  bool closed = false;            ///< no more traffic; freed when its coroutines end
  bool writing = false;           ///< a send is in flight
  int tasks = 0;                  ///< coroutines still using it
  frame::writer out;
  frame::reader in;
  std::size_t queued = 0;      ///< messages in `out`
  std::size_t sending = 0;     ///< messages in the send in flight (0: none)
  std::string sending_bytes;   ///< the send in flight; its buffer is reused
  std::uint64_t written = 0;   ///< messages the kernel took, since the link began
  std::uint64_t acked = 0;     ///< of those, confirmed by the peer
  std::uint64_t received = 0;  ///< messages read from the peer
  std::uint64_t ack_sent = 0;  ///< the count last confirmed to the peer
  std::chrono::steady_clock::time_point last_heard, last_sent;
  explicit link(std::size_t max_frame) : in(max_frame) {}
};

/// To a shard, from shard 0: serve this connection of a group.
struct link_adopt {
  net::socket sock;
  std::string peer_text;
  std::uint32_t engine;
  std::uint64_t group;
  std::uint16_t index;
  std::uint16_t peer_shards;
  bool dialed;
};
/// To shard 0: a shard serves a connection of the group.
struct link_served {
  std::uint32_t engine;
  std::uint64_t group;
};
/// To shard 0: a shard's connection of the group ended; so does the group.
struct link_down {
  std::uint32_t engine;
  std::uint64_t group;
  std::string why;
};
/// To every shard but 0: the group ended; close its connections here.
struct link_group_end {
  std::uint32_t engine;
  std::uint64_t group;
  std::string why;
};
/// From the links (shard 0) to their observer (set_agent), e.g. the
/// convention's agent: the first link to `engine` came up, or the
/// last one closed.
struct link_changed {
  std::uint32_t engine = 0;
  bool up = false;
  std::string dialed;  ///< the "host:port" this engine dialled; empty if accepted
  std::string why;     ///< why it closed
};
/// To a watcher's shard: its watch on another engine has its answer.
struct watch_settled {
  std::uint32_t engine;
  address target, watcher;
};

/// A shard's connections to other engines; on shard 0 (the hub) also the
/// listener, the dialled peers and the groups.
class link_table final : public remote_router {
 public:
  link_table(shard& s, link_options o);
  link_table(const link_table&) = delete;
  link_table& operator=(const link_table&) = delete;
  ~link_table() override;

  /// Before the shard runs: the listening socket (bound by the system,
  /// so that a bad address fails the engine's start). Shard 0 only.
  void adopt_listener(net::socket s);
  /// On the shard's thread, once it runs: heartbeats; on shard 0 also
  /// accepts and dials.
  void start() override;
  /// The link messages above (and peer_lost_msg's watches); false for any
  /// other control message. Does not free `e`.
  bool on_control(envelope* e);
  /// Every watch sent from this shard to `engine` fires with
  /// "engine lost: <why>".
  void fire_watches(std::uint32_t engine, const std::string& why);
  void engine_lost(std::uint32_t engine, const std::string& why) override {
    fire_watches(engine, why);
  }
  /// `e` is for another engine: queued on its link, or dead-lettered.
  void send(envelope* e) override;
  /// Sends what was queued this pass (one send in flight per link).
  void flush() override;
  /// Heartbeats and timeouts; called from the shard's timer.
  void tick();
  /// Shutting down: links say goodbye and close; nothing redials, and no
  /// new background work starts. What runs ends as its sockets and sleeps
  /// are cancelled (the shard's cancel_waits phase).
  void stop() override;

  /// `agent` (the convention's, say) hears of links coming up and going
  /// down from now on (link_changed), starting with those up now. Shard 0
  /// only, as the three below.
  void set_agent(const address& agent);
  /// Dials `peer` ("host:port") and redials it until undial(); nothing if
  /// it is dialled already.
  void dial(const std::string& peer);
  void undial(const std::string& peer);
  const address& agent() const noexcept { return agent_; }

  std::uint16_t listen_port() const noexcept { return listen_port_; }
  // backlog() (remote_router): the largest number of bytes waiting in one
  // of this shard's links, kept in backlog_ by recount_backlog().

 private:
  /// Shard 0: one group of connections to one engine.
  struct group {
    std::uint32_t engine = 0;
    std::uint64_t id = 0;
    std::string peer_text;  ///< of its first connection
    bool dialed = false;
    std::uint16_t size = 1;     ///< connections in it
    std::uint16_t served = 0;   ///< of those, served by their shards here
    std::vector<bool> arrived;  ///< by index: connected and handed over
    bool ready_sent = false;    ///< told the peer all are served here
    bool peer_ready = false;    ///< the peer said the same
    bool up = false;            ///< the engine was declared up with it
    link* first = nullptr;      ///< on this shard; null once closed
    std::chrono::steady_clock::time_point began;
  };

  // The coroutines that run in the background, each inside background_:
  // started with an entry into it (the gate::holder), which lives in the
  // coroutine's frame until it ends.
  detached accept_loop(gate::holder);
  detached serve_accepted(gate::holder, link* l);
  detached dial_loop(gate::holder, std::string peer, bool on_demand);
  /// Dials connection `index` of a group this engine opened.
  detached dial_member(gate::holder, std::uint32_t engine, std::uint64_t id, std::uint16_t index,
                       std::string peer);
  /// Serves a connection handed over by shard 0.
  detached serve_adopted(gate::holder, link* l);
  detached send_pending(gate::holder, link* l);
  detached tick_loop(gate::holder);
  /// Handshake, then (for connections served here) reads until it closes.
  /// True if it opened a group.
  task<bool> run_link(link* l);
  /// The handshake; false (and the link closed with the reason) on failure.
  task<bool> handshake(link* l);
  /// Reads frames until the connection closes.
  task<void> read_loop(link* l);
  /// After its handshake, a connection other than a group's first: to the
  /// shard that serves it (this one: true, read it here).
  task<bool> hand_over(link* l);
  void open_group(link* l);
  group* find_group(std::uint32_t engine, std::uint64_t id);
  /// `l` belongs to its group here from now on.
  void serve(link* l);
  /// One more connection of group `id` is served; says ready when all are.
  void count_served(std::uint32_t engine, std::uint64_t id);
  void on_ready(link* l);
  void maybe_up(group& g);
  /// Shard 0: the group ends, everywhere here; the engine is lost if no
  /// other group to it is up.
  void end_group(std::uint32_t engine, std::uint64_t id, const std::string& why);
  /// Closes this shard's connections of the group, quietly.
  void close_group_here(std::uint32_t engine, std::uint64_t id, const std::string& why);
  void close(link* l, const std::string& why);
  /// Ends the connection's traffic: the socket shut, what it held counted
  /// as lost, another connection to its engine (if any) routes. No log.
  void shut(link* l);
  void recount_backlog();
  void release(link* l);
  void deliver(link* l, frame::incoming&& m);
  /// Queues an ack of what `l` has received if it is due: at once when
  /// `always`, else with traffic already queued or past a batch.
  void confirm(link* l, bool always);
  void tell_agent(const group& g, bool up, const std::string& why);
  void to_shard(std::uint16_t shard, envelope* e);
  bool hub() const noexcept;
  void count_links() noexcept;

  shard& shard_;
  link_options opts_;
  std::list<group> groups_;  ///< shard 0 only
  net::socket listener_;
  std::uint16_t listen_port_ = 0;
  std::list<std::unique_ptr<link>> links_;
  std::unordered_map<std::uint32_t, link*> by_engine_;  ///< where this shard sends
  /// Watches sent from this shard to each peer engine and not yet
  /// answered, target → watcher: when that engine is lost, each fires.
  std::unordered_map<std::uint32_t, std::unordered_multimap<address, address>> watches_;
  std::unordered_set<std::string> dialing_;    ///< a dial loop runs for it
  std::unordered_set<std::string> on_demand_;  ///< dial() asked for it, undial() not yet
  address agent_;
  /// Every background coroutine above runs inside it; none starts once
  /// stop() has closed it, and the destructor warns of any still inside.
  gate background_;
  bool stopping() const noexcept { return background_.is_closed(); }
  bool dirty_ = false;  ///< some link has bytes to send
};

/// The link table of shard `s`; null if it reaches other engines some
/// other way or not at all. `s`'s own thread.
inline link_table* link_table_of(shard& s) noexcept;

/// Splits "host:port"; false if it is not one.
bool parse_peer(const std::string& text, std::string& host, std::uint16_t& port);

inline link_table* link_table_of(shard& s) noexcept {
  return dynamic_cast<link_table*>(s.router());
}

}  // namespace troupe::internal
