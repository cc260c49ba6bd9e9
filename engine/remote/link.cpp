#include "remote/link.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

#include "core/shard.hpp"
#include "core/system_impl.hpp"

namespace troupe::internal {

namespace {

using clk = std::chrono::steady_clock;
constexpr char magic[4] = {'T', 'R', 'P', 'E'};
constexpr std::uint16_t protocol_version = 4;
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

std::uint64_t fresh_group_id() {
  std::uint64_t id = 0;
  while (id == 0) {
    const nonce n = fresh_nonce();
    std::memcpy(&id, n.data(), sizeof id);
  }
  return id;
}

std::string ms_text(duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

}  // namespace

link_table::link_table(shard& s, link_options o) : shard_(s), opts_(std::move(o)) {}

link_table::~link_table() {
  // The shutdown's cancel_waits phase ends every socket operation and sleep
  // before the shard closes, so the background coroutines have ended. One
  // still counted is suspended for good: its frame is left, never resumed.
  if (background_.count() > 0) {
    spdlog::warn(
        "engine {}: shard {}: {} link coroutine{} still running at shutdown; left as they are",
        shard_.engine(), shard_.index(), background_.count(), background_.count() == 1 ? "" : "s");
  }
}

bool link_table::hub() const noexcept { return shard_.index() == 0; }

void link_table::adopt_listener(net::socket s) {
  listener_ = std::move(s);
  listen_port_ = listener_.local_port();
}

void link_table::start() {
  if (hub()) {
    if (listener_) {
      net::adapt(listener_);
      accept_loop(background_.hold());
    }
    for (const std::string& p : opts_.peers) {
      if (dialing_.insert(p).second) dial_loop(background_.hold(), p, false);
    }
  }
  tick_loop(background_.hold());
}

detached link_table::accept_loop(gate::holder) {
  while (!stopping()) {
    auto s = co_await net::accept(listener_);
    if (stopping()) break;  // a peer accepted just now is not served
    if (!s) {
      spdlog::warn("engine {}: accepting a peer failed: {}", shard_.engine(), s.err().describe());
      co_await sleep_for{std::chrono::milliseconds(100)};
      continue;
    }
    auto l = std::make_unique<link>(opts_.max_frame);
    l->sock = std::move(*s);
    l->peer_text = "accepted";
    link* raw = l.get();
    links_.push_back(std::move(l));
    serve_accepted(background_.hold(), raw);
  }
}

detached link_table::serve_accepted(gate::holder, link* l) { co_await run_link(l); }

void link_table::dial(const std::string& peer) {
  if (stopping()) return;
  on_demand_.insert(peer);
  if (dialing_.insert(peer).second) dial_loop(background_.hold(), peer, true);
}

void link_table::undial(const std::string& peer) { on_demand_.erase(peer); }

detached link_table::dial_loop(gate::holder, std::string peer, bool on_demand) {
  std::string host;
  std::uint16_t port = 0;
  if (!net::split_host_port(peer, host, port)) {  // the static ones were checked at set-up
    spdlog::warn("engine {}: cannot dial '{}': not host:port", shard_.engine(), peer);
    dialing_.erase(peer);
    co_return;
  }
  auto backoff = std::chrono::milliseconds(100);
  auto wanted = [&] { return !stopping() && (!on_demand || on_demand_.contains(peer)); };
  while (wanted()) {
    auto s = co_await net::connect(host, port);
    if (s) {
      auto l = std::make_unique<link>(opts_.max_frame);
      l->sock = std::move(*s);
      l->peer_text = peer;
      l->dialed = true;
      l->group = fresh_group_id();
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

detached link_table::dial_member(gate::holder, std::uint32_t engine, std::uint64_t id,
                                 std::uint16_t index, std::string peer) {
  std::string host;
  std::uint16_t port = 0;
  net::split_host_port(peer, host, port);  // it was dialled before
  auto s = co_await net::connect(host, port);
  if (!s) {
    end_group(engine, id,
              "connection " + std::to_string(index) +
                  " of the link could not be opened: " + s.err().describe());
    co_return;
  }
  auto l = std::make_unique<link>(opts_.max_frame);
  l->sock = std::move(*s);
  l->peer_text = peer;
  l->dialed = true;
  l->peer_engine = engine;
  l->group = id;
  l->index = index;
  link* raw = l.get();
  links_.push_back(std::move(l));
  co_await run_link(raw);
}

task<bool> link_table::run_link(link* l) {
  ++l->tasks;
  l->last_heard = l->last_sent = clk::now();
  bool opened = false;
  const bool handshake_done = co_await handshake(l);
  if (!handshake_done && l->dialed && l->index > 0) {
    end_group(l->peer_engine, l->group,
              "connection " + std::to_string(l->index) + " of the link failed its handshake");
  }
  if (handshake_done) {
    if (l->index == 0) {
      opened = true;
      open_group(l);
      co_await read_loop(l);
    } else if (co_await hand_over(l)) {
      co_await read_loop(l);
    }
  }
  release(l);
  co_return opened;
}

link_table::group* link_table::find_group(std::uint32_t engine, std::uint64_t id) {
  for (group& g : groups_) {
    if (g.id == id && g.engine == engine) return &g;
  }
  return nullptr;
}

void link_table::open_group(link* l) {
  group& g = groups_.emplace_back();
  g.engine = l->peer_engine;
  g.id = l->group;
  g.peer_text = l->peer_text;
  g.dialed = l->dialed;
  g.size = static_cast<std::uint16_t>(std::max<std::size_t>(shard_.shard_count(), l->peer_shards));
  g.arrived.assign(g.size, false);
  g.arrived[0] = true;
  g.first = l;
  g.began = clk::now();
  l->up = true;
  serve(l);
  if (g.dialed) {
    // Shutting down (a handshake that ended as stop() began): the group
    // never completes.
    for (std::uint16_t k = 1; k < g.size && !stopping(); ++k) {
      dial_member(background_.hold(), g.engine, g.id, k, g.peer_text);
    }
  }
  count_served(g.engine, g.id);
}

task<bool> link_table::hand_over(link* l) {
  // The dialling side opens its other connections once the first is
  // through its handshake, which can be a moment before the group is open
  // on this side: wait for it, bounded.
  group* g = find_group(l->peer_engine, l->group);
  const auto until = clk::now() + opts_.peer_timeout / 2;
  while (!g && !l->closed && !stopping() && clk::now() < until) {
    co_await sleep_for{std::chrono::milliseconds(2)};
    g = find_group(l->peer_engine, l->group);
  }
  if (l->closed) co_return false;
  const std::string which = "connection " + std::to_string(l->index) + " of a link from engine " +
                            std::to_string(l->peer_engine);
  if (!g) {
    close(l, "refused: " + which + " that is not open here");
    co_return false;
  }
  if (l->index >= g->size || g->arrived[l->index]) {
    close(l, "refused: " + which + (l->index >= g->size ? ", beyond its " : ", again in its ") +
                 std::to_string(g->size) + " connections");
    co_return false;
  }
  g->arrived[l->index] = true;
  const auto owner = static_cast<std::uint16_t>(l->index % shard_.shard_count());
  if (owner == 0) {
    l->up = true;
    serve(l);
    count_served(l->peer_engine, l->group);
    co_return true;
  }
  // Its shard serves it from here: the socket goes there, this record ends
  // without a trace.
  envelope* e = make_envelope(link_adopt{std::move(l->sock), l->peer_text, l->peer_engine, l->group,
                                         l->index, l->peer_shards, l->dialed},
                              address{}, address{});
  l->closed = true;
  to_shard(owner, e);
  co_return false;
}

void link_table::to_shard(std::uint16_t to, envelope* e) {
  e->target = address(shard_.engine(), to, 0, 0);
  e->flags |= flag_control;
  shard_.send(e);
}

void link_table::serve(link* l) {
  l->served = true;
  if (!by_engine_.contains(l->peer_engine)) by_engine_[l->peer_engine] = l;
  count_links();
}

void link_table::count_links() noexcept {
  std::uint64_t n = 0;
  for (const auto& l : links_) n += l->served && !l->closed;
  shard_.set_links_served(n);
}

detached link_table::serve_adopted(gate::holder, link* l) {
  ++l->tasks;
  co_await read_loop(l);
  release(l);
}

bool link_table::on_control(envelope* e) {
  const message_type* t = e->type;
  if (t == type_id<link_adopt>()) {
    link_adopt& m = e->as<link_adopt>();
    auto l = std::make_unique<link>(opts_.max_frame);
    l->sock = std::move(m.sock);
    l->peer_text = m.peer_text;
    l->peer_engine = m.engine;
    l->group = m.group;
    l->index = m.index;
    l->peer_shards = m.peer_shards;
    l->dialed = m.dialed;
    l->up = true;
    l->last_heard = l->last_sent = clk::now();
    link* raw = l.get();
    links_.push_back(std::move(l));
    if (stopping()) {
      close(raw, "this engine is shutting down");
      release(raw);
      return true;
    }
    net::adapt(raw->sock);
    serve(raw);
    to_shard(0, make_envelope(link_served{m.engine, m.group}, address{}, address{}));
    serve_adopted(background_.hold(), raw);
  } else if (t == type_id<link_served>()) {
    const link_served& m = e->as<link_served>();
    count_served(m.engine, m.group);
  } else if (t == type_id<link_down>()) {
    const link_down& m = e->as<link_down>();
    end_group(m.engine, m.group, m.why);
  } else if (t == type_id<link_group_end>()) {
    const link_group_end& m = e->as<link_group_end>();
    close_group_here(m.engine, m.group, m.why);
  } else if (t == type_id<watch_settled>()) {
    const watch_settled& m = e->as<watch_settled>();
    if (auto w = watches_.find(m.engine); w != watches_.end()) {
      auto [first, last] = w->second.equal_range(m.target);
      for (auto i = first; i != last; ++i) {
        if (i->second == m.watcher) {
          w->second.erase(i);
          break;
        }
      }
    }
  } else {
    return false;
  }
  return true;
}

void link_table::count_served(std::uint32_t engine, std::uint64_t id) {
  group* g = find_group(engine, id);
  if (!g) return;  // it ended meanwhile
  ++g->served;
  if (g->served == g->size && !g->ready_sent && g->first) {
    g->ready_sent = true;
    g->first->out.ready();
    dirty_ = true;
  }
  maybe_up(*g);
}

void link_table::on_ready(link* l) {
  group* g = find_group(l->peer_engine, l->group);
  if (!g) return;
  g->peer_ready = true;
  maybe_up(*g);
}

void link_table::maybe_up(group& g) {
  if (g.up || !g.ready_sent || !g.peer_ready) return;
  g.up = true;
  bool first = true;
  for (const group& other : groups_) first &= &other == &g || !other.up || other.engine != g.engine;
  if (first) tell_agent(g, true, {});
  shard_.owner().engine_up(g.engine);
  // The names each shard keeps may now belong to the new engine.
  for (std::size_t i = 0; i < shard_.shard_count(); ++i) {
    envelope* r = make_envelope(rehome_names{}, address{},
                                address(shard_.engine(), static_cast<std::uint16_t>(i), 0, 0));
    r->flags |= flag_control;
    shard_.send(r);
  }
  spdlog::info("engine {}: link to engine {} ({}) is up ({} connection{})", shard_.engine(),
               g.engine, g.peer_text, g.size, g.size == 1 ? "" : "s");
}

void link_table::end_group(std::uint32_t engine, std::uint64_t id, const std::string& why) {
  auto it = groups_.begin();
  while (it != groups_.end() && (it->id != id || it->engine != engine)) ++it;
  if (it == groups_.end()) return;  // ended already
  const group g = *it;
  groups_.erase(it);
  if (!stopping()) {
    spdlog::warn("engine {}: link to engine {} ({}) closed: {}", shard_.engine(), engine,
                 g.peer_text, why);
  }
  close_group_here(engine, id, why);
  for (std::size_t i = 1; i < shard_.shard_count(); ++i) {
    to_shard(static_cast<std::uint16_t>(i),
             make_envelope(link_group_end{engine, id, why}, address{}, address{}));
  }
  for (const group& other : groups_) {
    if (other.up && other.engine == engine) return;  // it takes over
  }
  const std::string lost_why = "link to engine " + std::to_string(engine) + " lost: " + why;
  if (g.up) {
    shard_.owner().engine_down(engine);
    tell_agent(g, false, why);
  }
  // Every shard fails its asks to that engine and fires its watches there.
  if (g.served > 0) shard_.peer_lost(engine, lost_why);
}

void link_table::close_group_here(std::uint32_t engine, std::uint64_t id, const std::string&) {
  for (auto& l : links_) {
    if (!l->closed && l->peer_engine == engine && l->group == id) shut(l.get());
  }
}

task<void> link_table::read_loop(link* l) {
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
    std::string bad;
    bool ready = false;
    const std::string error = l->in.drain(
        [&](frame::incoming&& m) {
          ++l->received;
          deliver(l, std::move(m));
        },
        [&](frame::kind k, std::string_view body) {
          if (k == frame::kind::goodbye) {
            if (bad.empty()) bad = "the peer said goodbye: " + std::string(body);
          } else if (k == frame::kind::ready) {
            if (l->index != 0 || !hub()) {
              bad = "malformed input: a ready frame on connection " + std::to_string(l->index);
            } else {
              ready = true;
            }
          } else if (k == frame::kind::ack) {
            std::uint64_t count = 0;
            for (std::size_t i = 0; i < body.size() && i < 8; ++i)
              count |= std::uint64_t(static_cast<unsigned char>(body[i])) << (8 * i);
            if (body.size() != 8) {
              bad = "malformed input: an ack of " + std::to_string(body.size()) +
                    " bytes (8 expected)";
            } else if (count < l->acked || count > l->written + l->sending) {
              bad = "malformed input: an ack of " + std::to_string(count) + " messages; " +
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
    if (!error.empty()) {
      close(l, "malformed input: " + error);
      break;
    }
    if (!bad.empty()) {
      close(l, bad);
      break;
    }
    if (ready) on_ready(l);
    confirm(l, false);
  }
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
  put(shard_.shard_count(), 2);
  put(l->dialed ? l->index : 0, 2);
  put(l->dialed ? l->group : 0, 8);
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
  if (version != protocol_version) {
    // What follows the head differs between versions: not read.
    l->peer_engine = engine;
    close(l, "refused: protocol version " + std::to_string(version) + ", this engine speaks " +
                 std::to_string(protocol_version));
    co_return false;
  }
  const std::uint16_t conv_len = get_u16(head.data() + 10);
  constexpr std::size_t tail_bytes = 2 + 2 + 8;
  std::vector<std::byte> rest(conv_len + nonce_bytes + tail_bytes);
  if (!co_await recv_exact(l->sock, rest.data(), rest.size())) {
    close(l, "the peer closed the connection during the handshake");
    co_return false;
  }
  const std::string convention(reinterpret_cast<const char*>(rest.data()), conv_len);
  nonce theirs;
  std::memcpy(theirs.data(), rest.data() + conv_len, nonce_bytes);
  const std::byte* tail = rest.data() + conv_len + nonce_bytes;
  if (l->dialed && l->index > 0) {
    l->peer_engine = l->peer_engine ? l->peer_engine : engine;
    if (l->peer_engine != engine) {
      close(l, "refused: connection " + std::to_string(l->index) + " of the link to engine " +
                   std::to_string(l->peer_engine) + " reached engine " + std::to_string(engine));
      co_return false;
    }
  }
  l->peer_engine = engine;
  l->peer_shards = get_u16(tail);
  if (!l->dialed) {
    l->index = get_u16(tail + 2);
    std::uint64_t g = 0;
    for (int i = 0; i < 8; ++i)
      g |= std::uint64_t(std::to_integer<unsigned>(tail[4 + i])) << (8 * i);
    l->group = g;
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
  if (l->peer_shards == 0 || l->peer_shards > address::outside_shard || l->group == 0) {
    close(l, "refused: a handshake with " + std::to_string(l->peer_shards) +
                 " shards and link group " + std::to_string(l->group));
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
  if (!dirty_ || stopping()) return;  // stopped: every link is closed
  dirty_ = false;
  for (auto& l : links_) {
    if (l->up && !l->closed && !l->writing && !l->out.empty()) {
      send_pending(background_.hold(), l.get());
    }
  }
}

detached link_table::send_pending(gate::holder, link* l) {
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

detached link_table::tick_loop(gate::holder) {
  const auto every = std::max(opts_.heartbeat / 2, duration(std::chrono::milliseconds(10)));
  auto last_tick = clk::now();
  while (!stopping()) {
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
        close(l.get(), l->up ? "no traffic from the peer for " + ms_text(opts_.peer_timeout)
                             : "no handshake within the timeout");
      } else if (l->up && l->received > l->ack_sent) {
        confirm(l.get(), true);  // also serves as a heartbeat
      } else if (l->up && now - l->last_sent >= opts_.heartbeat && !l->writing) {
        l->out.heartbeat();
        l->last_sent = now;
        dirty_ = true;
      }
    }
    // A group whose connections did not all come up in time ends.
    for (auto g = groups_.begin(); g != groups_.end();) {
      auto next = std::next(g);
      if (!g->up && now - g->began > opts_.peer_timeout) {
        end_group(g->engine, g->id,
                  std::to_string(g->served) + " of its " + std::to_string(g->size) +
                      " connections served here and the peer " +
                      (g->peer_ready ? "ready" : "not ready") + " after " +
                      ms_text(opts_.peer_timeout));
      }
      g = next;
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
  if (m.e->type == type_id<terminated>()) {
    // A watch has its answer: the shard that sent it (the watcher's) no
    // longer fires it when the engine is lost.
    envelope* settled =
        make_envelope(watch_settled{l->peer_engine, m.e->as<terminated>().who, m.e->target},
                      address{}, address{});
    if (m.e->target.shard() < shard_.shard_count()) {
      to_shard(m.e->target.shard(), settled);
    } else {
      to_shard(0, settled);  // from outside: sent by shard 0
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
  const bool served = l->served;
  shut(l);
  if (!served) {
    if (!stopping()) {
      spdlog::warn(
          "engine {}: link to {} ({}) closed: {}", shard_.engine(),
          l->peer_engine ? "engine " + std::to_string(l->peer_engine) : std::string("peer"),
          l->peer_text, why);
    }
    return;
  }
  // A connection of a group: the group ends with it, everywhere.
  const std::string whole = l->index == 0 || why.starts_with("the peer said goodbye")
                                ? why
                                : why + " (connection " + std::to_string(l->index) + ")";
  if (hub()) {
    end_group(l->peer_engine, l->group, whole);
  } else if (!stopping()) {
    to_shard(0, make_envelope(link_down{l->peer_engine, l->group, whole}, address{}, address{}));
  }
}

void link_table::shut(link* l) {
  if (l->closed) return;
  l->closed = true;
  l->up = false;
  ::shutdown(l->sock.fd(), SHUT_RDWR);  // ends the reads and sends in flight
  // Queued, being sent, or sent and not confirmed: none is known to have
  // arrived.
  const std::size_t lost = l->queued + l->sending + (l->written - l->acked);
  l->queued = l->sending = 0;
  l->acked = l->written;
  l->out = frame::writer{};  // what it held is lost, and no longer holds the shard back
  recount_backlog();
  if (lost) shard_.count_peer_lost(lost);
  if (auto it = by_engine_.find(l->peer_engine); it != by_engine_.end() && it->second == l) {
    by_engine_.erase(it);
    for (auto& other : links_) {  // a connection of another group to it takes over
      if (other.get() != l && other->up && other->served && other->peer_engine == l->peer_engine) {
        by_engine_[l->peer_engine] = other.get();
        break;
      }
    }
  }
  if (l->served) count_links();
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
  background_.close();  // its end is not awaited here: see ~link_table
  groups_.clear();
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
  std::unordered_set<std::uint32_t> told;
  for (const group& g : groups_) {
    if (g.up && told.insert(g.engine).second) tell_agent(g, true, {});
  }
}

void link_table::tell_agent(const group& g, bool up, const std::string& why) {
  if (agent_.is_null() || stopping()) return;
  shard_.send(make_envelope(link_changed{g.engine, up, g.dialed ? g.peer_text : std::string(), why},
                            address{}, agent_));
}

bool parse_peer(const std::string& text, std::string& host, std::uint16_t& port) {
  return net::split_host_port(text, host, port);
}

}  // namespace troupe::internal
