#pragma once
// Links to peer engines: TCP connections that carry frames (frame.hpp).
// They all live on shard 0 for now: the other shards pass what they send
// to other engines through their lane to shard 0, which keeps each sender's
// order, and shard 0 routes what arrives through the lanes as usual.
//
//   hello := "TRPE" u16 version u32 engine u16 convention_bytes convention u8[32] nonce
//   proof := u8[32] HMAC-SHA256(secret, "troupe-link" | peer's nonce | own engine)
//
// Each side sends its hello, reads the other's, and (with a secret) sends
// and checks the proofs; then frames flow both ways. A link that fails the
// handshake, sends a malformed frame or falls silent past the timeout is
// closed with a logged reason; what was queued on it becomes dead letters
// and the asks waiting on that engine fail.
//
// Each side confirms what it has received (ack frames: a running count of
// messages), soon after it arrives and with its own traffic. Messages the
// kernel took but the peer had not confirmed when the link died are dead
// letters too ("peer lost"): they may have arrived, but nothing is ever
// counted as gone to a peer that did not say it got it.

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "frame.hpp"
#include "troupe/actor.hpp"
#include "troupe/net.hpp"

namespace troupe::internal {

class shard;

struct link_options {
  std::string listen;              ///< "host:port"; empty: accept no peers
  std::vector<std::string> peers;  ///< "host:port" each, dialled and redialled
  std::string convention = "troupe";
  std::string secret;  ///< empty: no proof asked or given
  duration heartbeat = std::chrono::milliseconds(500);
  duration peer_timeout = std::chrono::seconds(3);
  std::size_t max_frame = frame::default_max_frame;
};

/// One connection to one peer engine.
struct link {
  net::socket sock;
  std::string peer_text;  ///< "127.0.0.1:7001", for logs
  std::uint32_t peer_engine = 0;
  bool dialed = false;   ///< this engine dialled it (peer_text is what it dialled)
  bool up = false;       ///< handshake done
  bool closed = false;   ///< no more traffic; freed when its coroutines end
  bool writing = false;  ///< a send is in flight
  int tasks = 0;         ///< coroutines still using it
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

/// Shard 0's links: the listener, the dialled peers, routing by engine.
class link_table {
 public:
  link_table(shard& s, link_options o);
  link_table(const link_table&) = delete;
  link_table& operator=(const link_table&) = delete;
  ~link_table();

  /// Before the shard runs: the listening socket (bound by the system,
  /// so that a bad address fails the engine's start).
  void adopt_listener(net::socket s);
  /// On shard 0's thread, once it runs: accepts and dials.
  void start();
  /// `e` is for another engine: queued on its link, or dead-lettered.
  void send(envelope* e);
  /// Sends what was queued this pass (one send in flight per link).
  void flush();
  /// Heartbeats and timeouts; called from the shard's timer.
  void tick();
  /// Shutting down: links say goodbye and close; nothing redials.
  void stop();

  /// The convention's agent hears of links coming up and going down from
  /// now on (link_changed), starting with those up now.
  void set_agent(const address& agent);
  /// Dials `peer` ("host:port") and redials it until undial(); nothing if
  /// it is dialled already.
  void dial(const std::string& peer);
  void undial(const std::string& peer);
  const address& agent() const noexcept { return agent_; }

  std::uint16_t listen_port() const noexcept { return listen_port_; }
  /// Bytes waiting in links for their turn to be sent: the shard stops
  /// running actors while it is large (back-pressure).
  std::size_t backlog() const noexcept { return backlog_; }

 private:
  detached accept_loop();
  detached serve_accepted(link* l);
  detached dial_loop(std::string peer, bool on_demand);
  detached send_pending(link* l);
  detached tick_loop();
  /// Handshake, then reads until the link closes. True if it came up.
  task<bool> run_link(link* l);
  /// The handshake; false (and the link closed with the reason) on failure.
  task<bool> handshake(link* l);
  void close(link* l, const std::string& why);
  void recount_backlog();
  void release(link* l);
  void deliver(link* l, frame::incoming&& m);
  /// Queues an ack of what `l` has received if it is due: at once when
  /// `always`, else with traffic already queued or past a batch.
  void confirm(link* l, bool always);
  /// Every watch on `engine` fires with "engine lost: <why>".
  void fire_watches(std::uint32_t engine, const std::string& why);
  void tell_agent(const link& l, bool up, const std::string& why);

  shard& shard_;
  link_options opts_;
  net::socket listener_;
  std::uint16_t listen_port_ = 0;
  std::list<std::unique_ptr<link>> links_;
  std::unordered_map<std::uint32_t, link*> by_engine_;
  /// Watches sent to each peer engine and not yet answered, target →
  /// watcher: when the link to that engine is lost, each fires there.
  std::unordered_map<std::uint32_t, std::unordered_multimap<address, address>> watches_;
  std::unordered_set<std::string> dialing_;    ///< a dial loop runs for it
  std::unordered_set<std::string> on_demand_;  ///< dial() asked for it, undial() not yet
  address agent_;
  bool stopping_ = false;
  bool dirty_ = false;  ///< some link has bytes to send
  std::size_t backlog_ = 0;
};

/// Splits "host:port"; false if it is not one.
bool parse_peer(const std::string& text, std::string& host, std::uint16_t& port);

}  // namespace troupe::internal
