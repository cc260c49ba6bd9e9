#pragma once
// Messages the test engines share: registered for the wire by both the
// test process and troupe-test-peer.

#include <algorithm>
#include <cstdint>
#include <string>

#include "troupe/troupe.hpp"

namespace peer_test {

struct seq {
  std::uint64_t n;
};
struct tally_query {};
struct tally {
  std::uint64_t received;
  std::uint64_t out_of_order;
};
struct echo_text {
  std::string text;
};
inline void to_json(nlohmann::json& j, const echo_text& m) { j = {{"text", m.text}}; }
inline void from_json(const nlohmann::json& j, echo_text& m) {
  m.text = j.at("text").get<std::string>();
}
/// Asks the receiver to ask `target` (an echo on some engine) for `text`.
struct relay {
  troupe::address target;
  char text[32];
};
struct slow_echo {
  std::uint32_t ms;
};
/// Asks an echo to stop.
struct quit {};
/// Asks an echo for the address of the actor named `name` (null: none).
struct name_query {
  char name[32];
};
/// Asks an echo to spawn_named an echo called `name`; answers its address.
struct name_claim_req {
  char name[32];
};

/// Asks a sequence_checker what it has seen.
struct order_query {};
/// What a sequence_checker has seen of `seq`, per sender: numbers must only
/// grow. A jump forward is a gap (messages lost with a link); a step back
/// or a repeat breaks the order contract.
struct order_report {
  std::uint64_t received;
  std::uint64_t last;       ///< the highest number seen
  std::uint64_t gaps;       ///< jumps forward by more than one
  std::uint64_t backwards;  ///< numbers not above the sender's previous one
};

inline void register_messages() {
  troupe::register_message<seq>("peer_test.seq");
  troupe::register_message<tally_query>("peer_test.tally_query");
  troupe::register_message<tally>("peer_test.tally");
  troupe::register_message<echo_text>("peer_test.echo_text");
  troupe::register_message<relay>("peer_test.relay");
  troupe::register_message<slow_echo>("peer_test.slow_echo");
  troupe::register_message<quit>("peer_test.quit");
  troupe::register_message<name_query>("peer_test.name_query");
  troupe::register_message<name_claim_req>("peer_test.name_claim_req");
  troupe::register_message<order_query>("peer_test.order_query");
  troupe::register_message<order_report>("peer_test.order_report");
}

/// Counts `seq` messages and how many came out of order, per sender.
struct counter : troupe::actor<counter, seq, tally_query> {
  std::unordered_map<troupe::address, std::uint64_t> last;
  tally t{0, 0};
  void on(const seq& s) {
    auto& l = last[sender()];
    if (s.n != l + 1) ++t.out_of_order;
    l = s.n;
    ++t.received;
  }
  tally on(const tally_query&) { return t; }
};

/// Answers echo_text with itself; relays; answers slow_echo after a while;
/// stops on quit. Registered as "peer_test.echo" for spawn_on.
struct echo : troupe::actor<echo, echo_text, relay, slow_echo, quit, name_query, name_claim_req> {
  void on(const quit&) { stop(); }
  troupe::task<troupe::address> on(const name_query& q) {
    auto r = co_await lookup_name(q.name);
    co_return r ? r.value() : troupe::address{};
  }
  troupe::task<troupe::address> on(const name_claim_req& q) {
    auto r = co_await spawn_named<echo>(q.name, {});
    co_return r ? r.value() : troupe::address{};
  }
  echo_text on(const echo_text& m) { return m; }
  troupe::task<echo_text> on(const relay& r) {
    echo_text q{r.text};  // named: see actor_base::ask on GCC 12 and temporaries
    auto got = co_await ask<echo_text>(r.target, std::move(q), std::chrono::seconds(5));
    co_return got ? got.value() : echo_text{"relay failed: " + got.err().describe()};
  }
  troupe::task<int> on(const slow_echo& s) {
    co_await troupe::sleep_for{std::chrono::milliseconds(s.ms)};
    co_return static_cast<int>(s.ms);
  }
};

/// Checks the order of `seq` strictly, per sender (counter only counts
/// breaks): gaps and steps back apart. Registered as
/// "peer_test.sequence_checker" for spawn_on.
struct sequence_checker : troupe::actor<sequence_checker, seq, order_query> {
  std::unordered_map<troupe::address, std::uint64_t> last;
  order_report r{0, 0, 0, 0};
  void on(const seq& s) {
    auto& l = last[sender()];
    if (s.n <= l) {
      ++r.backwards;
    } else if (s.n != l + 1) {
      ++r.gaps;
    }
    l = std::max(l, s.n);
    r.last = std::max(r.last, s.n);
    ++r.received;
  }
  order_report on(const order_query&) { return r; }
};

inline void register_actors() {
  troupe::register_actor<echo>("peer_test.echo");
  troupe::register_actor<sequence_checker>("peer_test.sequence_checker");
}

}  // namespace peer_test
