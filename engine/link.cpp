#include "link.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

#include "convention.hpp"
#include "shard.hpp"
#include "system_impl.hpp"

namespace troupe::internal {

namespace {

using clk = std::chrono::steady_clock;
constexpr char magic[4] = {'T', 'R', 'P', 'E'};
constexpr std::uint16_t protocol_version = 3;
constexpr std::size_t nonce_bytes = 32;
constexpr std::size_t proof_bytes = 32;
constexpr std::size_t recv_chunk = 64 * 1024;
/// Messages received past the last ack that make one due even with nothing
/// else to send: bounds what a silent death leaves unconfirmed.
constexpr std::uint64_t ack_batch = 1024;

using nonce = std::array<std::uint8_t, nonce_bytes>;
using proof = std::array<std::uint8_t, proof_bytes>;

nonce fresh_nonce() {
  nonce n{};
  std::size_t got = 0;
  while (got < n.size()) {
    const auto r = ::getrandom(n.data() + got, n.size() - got, 0);
    if (r > 0) got += static_cast<std::size_t>(r);
  }
  return n;
}

proof make_proof(const std::string& secret, const nonce& challenge, std::uint32_t engine) {
  std::string data = "troupe-link";
  data.append(reinterpret_cast<const char*>(challenge.data()), challenge.size());
  for (int i = 0; i < 4; ++i) data.push_back(static_cast<char>((engine >> (8 * i)) & 0xff));
  proof p{};
  unsigned len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), p.data(), &len);
  return p;
}

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

/// Reads exactly `n` bytes (never more: what follows belongs to frames).
task<bool> recv_exact(const net::socket& s, std::byte* out, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    auto r = co_await net::recv(s, std::span<std::byte>(out + got, n - got));
    if (!r || *r == 0) co_return false;
    got += *r;
  }
  co_return true;
}

std::uint16_t get_u16(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) |
                                    std::to_integer<unsigned>(p[1]) << 8);
}
std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::to_integer<std::uint32_t>(p[i]) << (8 * i);
  return v;
}

/// Bytes received on `s` and not read yet (0 if it cannot tell).
int unread_bytes(const net::socket& s) {
  int n = 0;
  if (::ioctl(s.fd(), FIONREAD, &n) != 0) return 0;
  return n;
}

}  // namespace

link_table::link_table(shard& s, link_options o) : shard_(s), opts_(std::move(o)) {}

link_table::~link_table() = default;

void link_table::adopt_listener(net::socket s) {
  listener_ = std::move(s);
  listen_port_ = listener_.local_port();
}

void link_table::start() {
  if (listener_) {
    net::adapt(listener_);
    accept_loop();
  }
  for (const std::string& p : opts_.peers) {
    if (dialing_.insert(p).second) dial_loop(p, false);
  }
  tick_loop();
}

detached link_table::accept_loop() {
  while (!stopping_) {
    auto s = co_await net::accept(listener_);
    if (!s) {
      if (stopping_) break;
      spdlog::warn("engine {}: accepting a peer failed: {}", shard_.engine(), s.err().describe());
      co_await sleep_for{std::chrono::milliseconds(100)};
      continue;
    }
    auto l = std::make_unique<link>(opts_.max_frame);
    l->sock = std::move(*s);
    l->peer_text = "accepted";
    link* raw = l.get();
    links_.push_back(std::move(l));
    serve_accepted(raw);
  }
}

detached link_table::serve_accepted(link* l) { co_await run_link(l); }

void link_table::dial(const std::string& peer) {
  if (stopping_) return;
  on_demand_.insert(peer);
  if (dialing_.insert(peer).second) dial_loop(peer, true);
}

void link_table::undial(const std::string& peer) { on_demand_.erase(peer); }

detached link_table::dial_loop(std::string peer, bool on_demand) {
  std::string host;
  std::uint16_t port = 0;
  if (!net::split_host_port(peer, host, port)) {  // the static ones were checked at set-up
    spdlog::warn("engine {}: cannot dial '{}': not host:port", shard_.engine(), peer);
    dialing_.erase(peer);
    co_return;
  }
  auto backoff = std::chrono::milliseconds(100);
  auto wanted = [&] { return !stopping_ && (!on_demand || on_demand_.contains(peer)); };
  while (wanted()) {
    auto s = co_await net::connect(host, port);
    if (s) {
      auto l = std::make_unique<link>(opts_.max_frame);
      l->sock = std::move(*s);
      l->peer_text = peer;
      l->dialed = true;
      link* raw = l.get();
      links_.push_back(std::move(l));
      const bool was_up = co_await run_link(raw);
      if (was_up) backoff = std::chrono::milliseconds(100);
    } else if (backoff == std::chrono::milliseconds(100)) {
      spdlog::info("engine {}: peer {} not reachable yet: {}", shard_.engine(), peer,
                   s.err().describe());
    }
    if (!wanted()) break;
    co_await sleep_for{backoff};
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
  dialing_.erase(peer);
}

task<bool> link_table::run_link(link* l) {
  ++l->tasks;
  l->last_heard = l->last_sent = clk::now();
  bool was_up = false;
  if (co_await handshake(l)) {
    was_up = true;
    l->up = true;
    if (!by_engine_.contains(l->peer_engine)) {
      by_engine_[l->peer_engine] = l;
      tell_agent(*l, true, {});
    }
    shard_.owner().engine_up(l->peer_engine);
    // The names each shard keeps may now belong to the new engine.
    for (std::size_t i = 0; i < shard_.shard_count(); ++i) {
      envelope* r = make_envelope(rehome_names{}, address{},
                                  address(shard_.engine(), static_cast<std::uint16_t>(i), 0, 0));
      r->flags |= flag_control;
      shard_.send(r);
    }
    spdlog::info("engine {}: link to engine {} ({}) is up", shard_.engine(), l->peer_engine,
                 l->peer_text);
    std::vector<std::byte> buf(recv_chunk);
    while (!l->closed) {
      auto n = co_await net::recv(l->sock, buf);
      if (l->closed) break;
      if (!n || *n == 0) {
        close(l, n ? "the peer closed the connection" : n.err().describe());
        break;
      }
      l->last_heard = clk::now();
      l->in.feed(buf.data(), *n);
      std::string bad_ack;
      const std::string error = l->in.drain(
          [&](frame::incoming&& m) {
            ++l->received;
            deliver(l, std::move(m));
          },
          [&](frame::kind k, std::string_view body) {
            if (k == frame::kind::goodbye) {
              close(l, "the peer said goodbye: " + std::string(body));
            } else if (k == frame::kind::ack) {
              std::uint64_t count = 0;
              for (std::size_t i = 0; i < body.size() && i < 8; ++i)
                count |= std::uint64_t(static_cast<unsigned char>(body[i])) << (8 * i);
              if (body.size() != 8) {
                bad_ack = "an ack of " + std::to_string(body.size()) + " bytes (8 expected)";
              } else if (count < l->acked || count > l->written + l->sending) {
                bad_ack = "an ack of " + std::to_string(count) + " messages; " +
                          std::to_string(l->acked) + " were confirmed and " +
                          std::to_string(l->written + l->sending) + " sent";
              } else {
                // A send's messages may be confirmed before its completion
                // is reaped here: they count as written from now on.
                if (count > l->written) {
                  l->sending -= count - l->written;
                  l->written = count;
                }
                l->acked = count;
              }
            }
          });
      const std::string& malformed = error.empty() ? bad_ack : error;
      if (!malformed.empty()) {
        close(l, "malformed input: " + malformed);
        break;
      }
      confirm(l, false);
    }
  }
  release(l);
  co_return was_up;
}

task<bool> link_table::handshake(link* l) {
  const nonce mine = fresh_nonce();
  std::string hello(magic, sizeof magic);
  auto put = [&hello](std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) hello.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(protocol_version, 2);
  put(shard_.engine(), 4);
  put(opts_.convention.size(), 2);
  hello += opts_.convention;
  hello.append(reinterpret_cast<const char*>(mine.data()), mine.size());
  if (!co_await net::send_all(l->sock, bytes_of(hello))) {
    close(l, "could not send the handshake");
    co_return false;
  }
  std::array<std::byte, 12> head;
  if (!co_await recv_exact(l->sock, head.data(), head.size())) {
    close(l, "the peer closed the connection during the handshake");
    co_return false;
  }
  if (std::memcmp(head.data(), magic, sizeof magic) != 0) {
    close(l, "refused: no troupe handshake (bad magic)");
    co_return false;
  }
  const std::uint16_t version = get_u16(head.data() + 4);
  const std::uint32_t engine = get_u32(head.data() + 6);
  const std::uint16_t conv_len = get_u16(head.data() + 10);
  std::vector<std::byte> rest(conv_len + nonce_bytes);
  if (!co_await recv_exact(l->sock, rest.data(), rest.size())) {
    close(l, "the peer closed the connection during the handshake");
    co_return false;
  }
  const std::string convention(reinterpret_cast<const char*>(rest.data()), conv_len);
  nonce theirs;
  std::memcpy(theirs.data(), rest.data() + conv_len, nonce_bytes);
  l->peer_engine = engine;
  if (version != protocol_version) {
    close(l, "refused: protocol version " + std::to_string(version) + ", this engine speaks " +
                 std::to_string(protocol_version));
    co_return false;
  }
  if (convention != opts_.convention) {
    close(l, "refused: the peer is in convention '" + convention + "', this engine in '" +
                 opts_.convention + "'");
    co_return false;
  }
  if (engine == shard_.engine() || engine == 0) {
    close(l, "refused: the peer claims engine id " + std::to_string(engine) +
                 ", which is this engine's or invalid");
    co_return false;
  }
  if (!opts_.secret.empty()) {
    const proof p = make_proof(opts_.secret, theirs, shard_.engine());
    std::string out(reinterpret_cast<const char*>(p.data()), p.size());
    if (!co_await net::send_all(l->sock, bytes_of(out))) {
      close(l, "could not send the proof");
      co_return false;
    }
    std::array<std::byte, proof_bytes> got;
    if (!co_await recv_exact(l->sock, got.data(), got.size())) {
      close(l, "refused: the peer gave no proof of the shared secret");
      co_return false;
    }
    const proof want = make_proof(opts_.secret, mine, engine);
    if (CRYPTO_memcmp(got.data(), want.data(), want.size()) != 0) {
      close(l, "refused: wrong secret (the peer's proof does not match)");
      co_return false;
    }
  }
  co_return true;
}

void link_table::send(envelope* e) {
  const std::uint32_t peer = e->target.engine();
  auto it = by_engine_.find(peer);
  if (it == by_engine_.end() || !it->second->up) {
    if (e->flags & flag_control) {
      shard_.unroutable_control(e, "no link to engine " + std::to_string(peer));
    } else {
      shard_.dead_letter(e, dead_reason::no_route);
    }
    return;
  }
  link* l = it->second;
  if ((e->flags & flag_control) && e->type == type_id<watch_request>()) {
    watches_[peer].emplace(e->target, e->as<watch_request>().watcher);
  }
  if (!l->out.add(*e)) {
    shard_.dead_letter(e, dead_reason::unknown_type);
    return;
  }
  ++l->queued;
  shard_.count_remote_out();
  destroy_envelope(e);
  dirty_ = true;
  backlog_ = std::max(backlog_, l->out.size());
}

void link_table::recount_backlog() {
  backlog_ = 0;
  for (auto& l : links_) backlog_ = std::max(backlog_, l->out.size());
}

void link_table::flush() {
  if (!dirty_) return;
  dirty_ = false;
  for (auto& l : links_) {
    if (l->up && !l->closed && !l->writing && !l->out.empty()) send_pending(l.get());
  }
}

detached link_table::send_pending(link* l) {
  ++l->tasks;
  l->writing = true;
  while (!l->closed && !l->out.empty()) {
    l->out.take(l->sending_bytes);
    l->sending = l->queued;
    l->queued = 0;
    recount_backlog();
    auto r = co_await net::send_all(l->sock, bytes_of(l->sending_bytes));
    if (!r) {
      close(l, "send failed: " + r.err().describe());
      break;
    }
    l->written += l->sending;
    l->sending = 0;
    l->last_sent = clk::now();
  }
  l->writing = false;
  recount_backlog();
  release(l);
}

detached link_table::tick_loop() {
  const auto every = std::max(opts_.heartbeat / 2, duration(std::chrono::milliseconds(10)));
  auto last_tick = clk::now();
  while (!stopping_) {
    co_await sleep_for{every};
    const auto now = clk::now();
    // A tick that comes late means this shard was busy (a long handler):
    // it has not been reading, so its peers' silence proves nothing yet.
    const bool stalled = now - last_tick > every + opts_.peer_timeout / 4;
    last_tick = now;
    for (auto& l : links_) {
      if (l->closed) continue;
      if (stalled) l->last_heard = std::max(l->last_heard, now - opts_.peer_timeout / 2);
      if (now - l->last_heard > opts_.peer_timeout && unread_bytes(l->sock) > 0) {
        // Bytes from the peer wait in the socket: it spoke, this shard was
        // too busy to read it.
        l->last_heard = now;
      }
      if (now - l->last_heard > opts_.peer_timeout) {
        close(l.get(),
              l->up ? "no traffic from the peer for " +
                          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             opts_.peer_timeout)
                                             .count()) +
                          "ms"
                    : "no handshake within the timeout");
      } else if (l->up && l->received > l->ack_sent) {
        confirm(l.get(), true);  // also serves as a heartbeat
      } else if (l->up && now - l->last_sent >= opts_.heartbeat && !l->writing) {
        l->out.heartbeat();
        l->last_sent = now;
        dirty_ = true;
      }
    }
    flush();
  }
}

void link_table::deliver(link* l, frame::incoming&& m) {
  if (!m.e) {
    // A type this engine does not know: a dead letter here, and an ask's
    // sender learns why.
    shard_.count_unknown_type(m.type_name, m.target);
    if (m.request && !m.reply) {
      envelope* r =
          make_envelope(ask_failure{errc::unhandled, "engine " + std::to_string(shard_.engine()) +
                                                         " has no message type named '" +
                                                         std::string(m.type_name) + "'"},
                        m.target, m.sender);
      r->request = m.request;
      r->flags |= flag_reply;
      shard_.send(r);
    }
    return;
  }
  if (m.e->target.engine() != shard_.engine()) {
    shard_.dead_letter(m.e, dead_reason::no_route);  // not for us: never relayed
    return;
  }
  if (m.e->target.shard() >= shard_.shard_count() &&
      m.e->target.shard() != address::outside_shard) {
    if (m.e->flags & flag_control) {
      destroy_envelope(m.e);
    } else {
      shard_.dead_letter(m.e, dead_reason::no_such_actor);  // no such shard here
    }
    return;
  }
  if (m.e->flags & flag_control) {
    // Names: the directory shard here is this engine's business.
    const message_type* t = m.e->type;
    if (t == type_id<name_lookup>()) {
      m.e->target = shard_.local_directory_for(m.e->as<name_lookup>().name);
    } else if (t == type_id<name_reserve>()) {
      m.e->target = shard_.local_directory_for(m.e->as<name_reserve>().name);
    } else if (t == type_id<name_bind>()) {
      m.e->target = shard_.local_directory_for(m.e->as<name_bind>().name);
    } else if (t == type_id<name_handoff>()) {
      m.e->target = shard_.local_directory_for(m.e->as<name_handoff>().name);
    } else if (t == type_id<name_release>()) {
      m.e->target = shard_.local_directory_for(m.e->as<name_release>().name);
    } else if (t == type_id<name_forget>()) {
      // Every shard may have cached it.
      const name_forget& f = m.e->as<name_forget>();
      for (std::size_t i = 1; i < shard_.shard_count(); ++i) {
        envelope* copy =
            make_envelope(name_forget{f.name, f.who}, m.e->sender,
                          address(shard_.engine(), static_cast<std::uint16_t>(i), 0, 0));
        copy->flags |= flag_control;
        shard_.send(copy);
      }
      m.e->target = address(shard_.engine(), 0, 0, 0);
    }
  }
  if (m.e->type == type_id<terminated>()) {  // a watch of ours has its answer
    if (auto w = watches_.find(l->peer_engine); w != watches_.end()) {
      const address who = m.e->as<terminated>().who;
      auto [first, last] = w->second.equal_range(who);
      for (auto i = first; i != last; ++i) {
        if (i->second == m.e->target) {
          w->second.erase(i);
          break;
        }
      }
    }
  }
  shard_.send(m.e);
}

void link_table::confirm(link* l, bool always) {
  if (l->closed || !l->up || l->received == l->ack_sent) return;
  if (!always && l->out.empty() && l->received - l->ack_sent < ack_batch) return;
  l->out.ack(l->received);
  l->ack_sent = l->received;
  dirty_ = true;
}

void link_table::close(link* l, const std::string& why) {
  if (l->closed) return;
  l->closed = true;
  const bool was_up = l->up;
  l->up = false;
  ::shutdown(l->sock.fd(), SHUT_RDWR);  // ends the reads and sends in flight
  if (!stopping_) {
    spdlog::warn("engine {}: link to {} ({}) closed: {}", shard_.engine(),
                 l->peer_engine ? "engine " + std::to_string(l->peer_engine) : std::string("peer"),
                 l->peer_text, why);
  }
  // Queued, being sent, or sent and not confirmed: none is known to have
  // arrived.
  const std::size_t lost = l->queued + l->sending + (l->written - l->acked);
  l->queued = l->sending = 0;
  l->acked = l->written;
  l->out = frame::writer{};  // what it held is lost, and no longer holds the shard back
  recount_backlog();
  if (lost) shard_.count_peer_lost(lost);
  if (!was_up) return;
  auto it = by_engine_.find(l->peer_engine);
  if (it != by_engine_.end() && it->second == l) {
    by_engine_.erase(it);
    for (auto& other : links_) {  // another link to the same engine takes over
      if (other.get() != l && other->up && other->peer_engine == l->peer_engine) {
        by_engine_[l->peer_engine] = other.get();
        return;
      }
    }
    const std::string lost_why =
        "link to engine " + std::to_string(l->peer_engine) + " lost: " + why;
    shard_.owner().engine_down(l->peer_engine);
    tell_agent(*l, false, why);
    fire_watches(l->peer_engine, lost_why);
    shard_.peer_lost(l->peer_engine, lost_why);
  }
}

void link_table::fire_watches(std::uint32_t engine, const std::string& why) {
  auto w = watches_.find(engine);
  if (w == watches_.end()) return;
  auto list = std::move(w->second);
  watches_.erase(w);
  for (const auto& [target, watcher] : list) {
    shard_.notify_watcher(watcher, target, "engine lost: " + why);
  }
}

void link_table::release(link* l) {
  if (--l->tasks > 0) return;
  if (!l->closed) close(l, "closed");
  for (auto it = links_.begin(); it != links_.end(); ++it) {
    if (it->get() == l) {
      links_.erase(it);
      return;
    }
  }
}

void link_table::stop() {
  stopping_ = true;
  const std::string why = "engine " + std::to_string(shard_.engine()) + " is shutting down";
  for (auto& l : links_) {
    // A last frame, sent at once when nothing else is being sent (two
    // sends at a time could interleave): the peer learns this engine left
    // rather than failed.
    if (l->up && !l->closed && !l->writing) {
      if (l->received > l->ack_sent) l->out.ack(l->received);  // what arrived did arrive
      l->out.goodbye(why);
      std::string bytes;
      l->out.take(bytes);
      (void)::send(l->sock.fd(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    close(l.get(), "this engine is shutting down");
  }
  listener_.close();
}

void link_table::set_agent(const address& agent) {
  agent_ = agent;
  for (const auto& [engine, l] : by_engine_) {
    if (l->up) tell_agent(*l, true, {});
  }
}

void link_table::tell_agent(const link& l, bool up, const std::string& why) {
  if (agent_.is_null() || stopping_) return;
  shard_.send(
      make_envelope(link_changed{l.peer_engine, up, l.dialed ? l.peer_text : std::string(), why},
                    address{}, agent_));
}

bool parse_peer(const std::string& text, std::string& host, std::uint16_t& port) {
  return net::split_host_port(text, host, port);
}

}  // namespace troupe::internal
