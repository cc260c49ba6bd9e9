#pragma once
// A shard: one thread, one reactor, its actors, their mailboxes, a run
// queue, timers, pending asks, and the lanes to and from the other shards.
//
//   other shards ──spsc_ring──▶ ┌──────── shard ────────┐ ──spsc_ring──▶ other shards
//   outside threads ──queue───▶ │ run queue → actors    │ ──▶ outside askers
//                               │ timers, pending asks  │
//                               └── reactor (io_uring) ─┘
//
// Invariant: an actor's mailbox, state and slot are touched only by its
// shard's thread; everything that crosses threads is in spsc_ring, the
// outside queue (mutex, outside threads only) or a relaxed counter.

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/extension_points.hpp"
#include "core/spsc_ring.hpp"
#include "troupe/actor.hpp"
#include "troupe/io/reactor.hpp"
#include "troupe/system.hpp"

namespace troupe::internal {

class system_impl;
using envelope_ring = spsc_ring<envelope>;
using time_point = std::chrono::steady_clock::time_point;

/// Counters a shard writes and anyone may read. One writer each, so a
/// relaxed load+store (no locked instruction) is enough.
struct alignas(64) shard_counters {
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> delivered{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(dead_reason::count_)> dead{};
  std::atomic<std::uint64_t> poisoned{0};
  std::atomic<std::uint64_t> remote_out{0};  ///< handed to links to other engines
  std::atomic<std::uint64_t> links{0};       ///< connections to other engines served
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> restarts{0};
  std::atomic<std::uint64_t> spawned{0};
  std::atomic<std::uint64_t> live{0};

  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void drop(std::atomic<std::uint64_t>& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
};

/// Shutdown steps, sent to each shard by system::stop().
enum class shutdown_phase : std::uint8_t { running, exit_requests, cancel_waits, closed };

// Cache-line aligned, and the fields that other threads touch on lines of
// their own: two shards' hot fields must never share a line, or every
// counter bump on one shard would steal the line from the other.
class alignas(64) shard {
 public:
  shard(system_impl& sys, std::uint16_t index, std::uint32_t engine, bool inline_mode,
        unsigned throughput);
  ~shard();
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  /// Connects the lanes. Before any thread starts.
  void connect(std::vector<envelope_ring*> inbound, std::vector<envelope_ring*> outbound);
  /// On the shard's own thread, before run(): sets up its reactor.
  void attach(io::backend_choice io);
  /// The shard thread's loop; returns once the shard is closed.
  void run();
  /// One pass without sleeping (inline mode drives this). True if it did work.
  bool step();

  // --- own thread ---
  void send(envelope* e);
  void send_reply(const envelope& request, envelope* reply);
  void start_ask(pending_ask& p, envelope* request, duration timeout);
  timer_id start_timer(duration after, envelope* e);
  bool cancel_timer(timer_id id) noexcept;
  void sleep(duration d, std::coroutine_handle<> h);
  /// Installs `a` on this shard now, in a free slot, as a child of
  /// `parent` (null: the root guardian) under `policy` (null: the root's).
  address spawn_local(actor_base* a, actor_factory* factory, const address& parent,
                      const supervision_policy* policy, std::uint32_t mailbox_limit,
                      const std::string* name = nullptr);
  /// Records `child` as a child of the actor being run (on this shard).
  void adopt(const address& parent, const address& child);
  void begin_task(actor_base& a) noexcept;
  void end_task(actor_base& a, envelope* e, failure f) noexcept;
  void request_failure(actor_base& a, std::string reason);
  /// A fiber's ask completed: resumes it and finishes its message if done.
  void resume_fiber(actor_base& a);
  void dead_letter(envelope* e, dead_reason why, const actor_base* at = nullptr);
  void set_dead_letter_handler(const address& handler) { dead_letter_handler_ = handler; }

  // --- other engines (engine/core/extension_points.hpp) ---
  /// How this shard reaches other engines; null without links. Own thread
  /// (set before it runs).
  remote_router* router() noexcept { return router_.get(); }
  void set_router(std::unique_ptr<remote_router> r) { router_ = std::move(r); }
  void count_remote_out() noexcept { shard_counters::bump(counters_.remote_out); }
  void set_links_served(std::uint64_t n) noexcept {
    counters_.links.store(n, std::memory_order_relaxed);
  }
  /// A message from a link whose type this engine does not know.
  void count_unknown_type(std::string_view name, const address& target);
  /// `n` messages queued on a link that died.
  void count_peer_lost(std::size_t n);
  /// Every shard fails its asks to `engine` with `why`.
  void peer_lost(std::uint32_t engine, std::string why);
  /// A control message for another engine that has no link: an ask fails,
  /// a watch fires, anything else ends here.
  void unroutable_control(envelope* e, const std::string& why);
  /// Tells `watcher` that `who` ended, and why.
  void notify_watcher(const address& watcher, const address& who, std::string reason);

  // --- inline mode (own thread) ---
  std::optional<time_point> next_timer() const;
  void advance_clock(time_point t) { virtual_now_ = t; }
  time_point now() const;

  // --- the deterministic test fixture (troupe/testing.hpp): inline mode, own thread ---
  /// The engine's own work, short of running a handler for a message:
  /// messages from outside threads reach their mailboxes, control messages
  /// for this shard are handled (installs, which run on_start; watches;
  /// children's exits) and timers due by now() fire. Replies to asks and
  /// mailbox messages wait for run_one(). Returns true if it did anything.
  bool settle();
  /// The message run_one() would handle next, left in place: the first
  /// reply waiting for an asker on this shard, else the head of the
  /// mailbox of the first actor in the run queue; null when there is none.
  /// Valid until the shard runs anything.
  const envelope* peek_next();
  /// Handles exactly the message peek_next() names (an actor that has more
  /// goes to the back of the run queue); false if there was none.
  bool run_one();
  /// Messages waiting for the live actor at `a`: its mailbox and the
  /// replies to its asks. Empty when no actor lives there.
  std::optional<std::size_t> mail_waiting(const address& a);
  /// Messages waiting for all actors of this shard.
  std::size_t mail_waiting();
  /// Fires the timers due by now(), in deadline order; returns how many did
  /// something (a cancelled wakeup or a stale restart does not count).
  std::size_t fire_due_timers();
  /// Dead-letters (shutting_down) every message waiting in a mailbox or as
  /// a reply, and what that brings (an ask's failure), running no handler.
  /// Returns how many.
  std::size_t discard_waiting();

  // --- any thread ---
  std::uint16_t index() const noexcept { return index_; }
  std::uint32_t engine() const noexcept { return engine_; }
  std::size_t shard_count() const noexcept { return out_.size(); }
  system_impl& owner() noexcept { return sys_; }
  /// Queues `e` from an outside thread (or a control message) and wakes the shard.
  void post_outside(envelope* e);
  /// A fresh slot for an actor this shard will install later.
  std::uint32_t reserve_slot() noexcept { return fresh_.fetch_add(1, std::memory_order_relaxed); }
  void wake() noexcept;
  bool idle() const noexcept { return sleeping_.load(std::memory_order_acquire); }
  std::uint64_t activity() const noexcept { return activity_.load(std::memory_order_acquire); }
  bool outside_empty() const noexcept { return !outside_pending_.load(std::memory_order_acquire); }
  const shard_counters& counters() const noexcept { return counters_; }
  std::uint64_t live_actors() const noexcept {
    return counters_.live.load(std::memory_order_relaxed);
  }
  std::string io_description() const;
  /// The shard's reactor (null in inline mode). Own thread.
  io::reactor* reactor() noexcept { return reactor_.get(); }

  /// After the thread has ended: dead-letters what is still queued inbound.
  /// Returns true while it finds something.
  bool drain_after_close();

 private:
  /// One actor's place: the object, and what its supervision needs.
  /// Children on the parent's own shard are kept in an intrusive list
  /// through their slots (slot + 1; 0 = none); those on other shards in
  /// remote_children_.
  static constexpr std::uint32_t not_linked = UINT32_MAX;
  /// What every delivery reads: kept apart from slot_life, so that the
  /// slots of many small actors stay in few cache lines.
  struct slot_entry {
    actor_base* actor = nullptr;
    std::uint32_t incarnation = 0;  ///< of the current or last occupant; 0 = never used
    std::uint32_t next_free = 0;    ///< while free: the next free slot
  };
  /// What supervision and the tree need, read when actors start, fail or end.
  struct slot_life {
    actor_factory* factory = nullptr;            ///< fresh instances; null: cannot restart
    const supervision_policy* policy = nullptr;  ///< its supervisor's (interned)
    address parent;                              ///< null: the root guardian
    std::uint32_t first_child = 0;
    std::uint32_t next_sibling = 0;
    std::uint32_t prev_sibling = not_linked;  ///< 0: first of its parent's; not_linked: none
  };
  /// Why an actor that waits for its children to end will end.
  /// Restarts of one actor in its current window (only actors that failed).
  struct restart_window {
    std::int64_t start = 0;  ///< ns on now()
    std::uint32_t count = 0;
  };
  struct ending {
    exit_kind kind;
    std::string reason;
    envelope* held = nullptr;  ///< an exit_request to handle once they have
  };
  struct pending_entry {
    pending_ask* waiter = nullptr;
    std::uint32_t generation = 0;
    std::uint32_t next_free = 0;
    address target;
    duration timeout{};
  };
  enum class timer_kind : std::uint8_t { wakeup, resume, ask_timeout, restart };
  struct timer_entry {
    time_point when;
    std::uint64_t seq;
    timer_kind kind;
    envelope* msg;              // wakeup
    std::coroutine_handle<> h;  // resume
    std::uint64_t request;      // ask_timeout; restart: slot << 32 | incarnation
    bool operator>(const timer_entry& o) const noexcept {
      return when != o.when ? when > o.when : seq > o.seq;
    }
  };
  struct lane {
    envelope_ring* ring = nullptr;
    envelope* overflow_head = nullptr;  // order-keeping spill when the ring is full
    envelope* overflow_tail = nullptr;
  };

  // routing
  void deliver_here(envelope* e);
  void send_remote(envelope* e);
  void handle_remote_spawn(envelope* e);
  void handle_census(envelope* e);
  /// Cached names (and names kept here) of actors on `engine`, now lost.
  void forget_names_of(std::uint32_t engine);
  void push_lane(std::uint16_t dst, envelope* e);
  /// deliver_here from the top of the loop (never inside a handler): an
  /// idle actor with an empty mailbox handles `e` at once.
  void deliver_inbound(envelope* e);
  void enqueue(actor_base& a, envelope* e);
  void make_ready(actor_base& a);
  void park(std::uint32_t slot, envelope* e);
  void handle_control(envelope* e);
  /// The core's own control messages, by type (handle_control's table).
  static void add_core_controls(control_registry& r);
  bool on_install(envelope* e);
  bool on_supervision_control(envelope* e);
  bool on_peer_lost(envelope* e);
  bool on_mailbox_depth_query(envelope* e);
  bool on_abandon_ask(envelope* e);
  bool on_watch_request(envelope* e);
  void install(actor_base* a, std::uint32_t slot, std::uint32_t incarnation, actor_factory* factory,
               const address& parent, const supervision_policy* policy, std::uint32_t mailbox_limit,
               const std::string* name = nullptr);
  slot_entry& entry(std::uint32_t slot);

  // running
  bool drain_inbound();
  bool run_ready();
  bool run_replies();
  bool run_control();
  bool run_timers();
  /// Pops the earliest timer and does what it is for; false if it had
  /// nothing left to do (cancelled, or its actor or ask is gone).
  bool fire_next_timer();
  /// Publishes lanes and moves overflow into them; true if it moved any.
  bool flush_outbound();
  /// Runs up to `throughput_` messages of `a`; returns how many it ran.
  unsigned run_actor(actor_base& a);
  bool links_full() const noexcept;
  /// False when the actor cannot take its next message now.
  bool handle(actor_base& a, envelope* e);
  bool handle_on_fiber(actor_base& a, envelope* e);
  /// Returns false if the actor cannot take its next message now (it
  /// ended, waits, or was replaced by a fresh instance).
  /// `f`: why the handler failed; null if it did not.
  bool finish_message(actor_base& a, envelope* e, bool handled, failure* f);
  void sleep_until_work();

  // lifecycle (engine/lifecycle.cpp)
  /// A handler of `a` threw while handling `e` (null: in on_start); its
  /// supervisor's policy decides. Takes `e`. Returns false (see above).
  bool on_failure(actor_base& a, envelope* e, const failure& f);
  /// `e` failed for good: the ask fails, or the sender gets poison.
  void poison_message(const actor_base& a, envelope* e, const std::string& why);
  /// Replaces `a` by a fresh instance now, or after the backoff.
  void restart(actor_base& a, envelope* retry, duration delay);
  void replace(std::uint32_t slot);
  /// `a` is to end: its children first, then finalize. Returns false.
  bool end_actor(actor_base& a, exit_kind kind, std::string reason, bool halt_children = false);
  void finalize_stop(actor_base& a, exit_kind kind, std::string reason);
  /// Frees the object, now or (if it is still in the run queue) when the
  /// run queue reaches it.
  void retire(actor_base& a);
  /// Tells each child of `slot` to end; true if there were any.
  bool end_children(std::uint32_t slot, bool halt);
  void on_child_ended(envelope* e);
  const supervision_policy* intern(const supervision_policy& p);
  bool has_children(std::uint32_t slot) const;
  template <class F>
  void for_each_child(std::uint32_t slot, F&& f);
  void link_child(std::uint32_t parent, std::uint32_t child);
  /// Takes the child out of its local parent's list; false if not in one.
  bool unlink_child(std::uint32_t child);
  /// Forgets all children of `slot` (they are ending on their own).
  void detach_children(std::uint32_t slot);
  const supervision_policy& policy_of(const slot_life& s) const;
  bool may_log();

  // directory (engine/directory.cpp); each on_name_* returns true if it
  // took the envelope
  bool on_name_claim(envelope* e);
  bool on_name_lookup(envelope* e);
  bool on_name_release(envelope* e);
  bool on_rehome_names(envelope* e);
  bool on_name_handoff(envelope* e);
  bool on_name_reserve(envelope* e);
  bool on_name_bind(envelope* e);
  bool on_name_forget(envelope* e);
  /// A lookup or reservation of `name`: answered with the actor kept here,
  /// parked while another engine spawns it, or neither (`e` untouched).
  enum class known_name : std::uint8_t { answered, parked, unknown };
  known_name answer_known_name(envelope* e, const std::string& name);
  void release_name(std::uint32_t slot, const address& who);
  /// A name_claim whose directory is on another engine: reserve the name
  /// there, then spawn here and bind it, or answer with the one that lives.
  void claim_remote_name(envelope* e, const address& dir);
  /// The name was bound: the claims and reservations parked on it learn who.
  void answer_parked_names(const std::string& name, const address& who);
  void subscribe_name(const std::string& name, std::uint32_t engine);
  /// Tells the engines that looked `name` up that its actor ended.
  void notify_name_subscribers(const std::string& name, const address& who);
  struct reservation {
    std::uint32_t engine;             ///< the engine spawning the named actor
    std::vector<envelope*> parked{};  ///< claims and reservations that wait for it
  };

 public:
  /// A control message that a layer turned into a message for an actor of
  /// this shard (its target and flags changed): delivered here. Own thread.
  void deliver_control_to_actor(envelope* e) { deliver_here(e); }
  /// Handles a name_* control message (the directory's, or its backend's);
  /// false if `e` is not one. Own thread.
  bool handle_name_control(envelope* e);
  /// The shard that keeps `name` in the directory, as an address to send
  /// control messages to. Any thread.
  address directory_for(std::string_view name) const;
  /// The shard of this engine that keeps `name` when this engine is its
  /// directory.
  address local_directory_for(std::string_view name) const;
  /// This shard as the sender of its own asks to other engines.
  address control_self() const noexcept { return address(engine_, index_, UINT32_MAX, 1); }
  /// The directory answered a claim_remote_name; `dir` is where it asked.
  void finish_remote_claim(envelope* claim, const address& dir, envelope* reply);
  std::optional<address> cached_name(const std::string& name) const;
  void cache_name(const std::string& name, const address& a) { name_cache_[name] = a; }
  /// Drops the cached binding of `name` unless it is `now`.
  void forget_cached_name(const std::string& name, const address& now) {
    if (auto it = name_cache_.find(name); it != name_cache_.end() && it->second != now)
      name_cache_.erase(it);
  }
  void forget_cached_names() { name_cache_.clear(); }

 private:
  // asks
  void complete_pending(envelope* reply);
  void fail_ask(std::uint64_t request, errc code, std::string text);
  void queue_failure(const envelope& request, errc code, std::string text);

  // shutdown
  void enter_phase(shutdown_phase p);
  void close();

  void push_timer(timer_entry t);
  void log_dead_letter(const envelope& e, dead_reason why, const actor_base* at);

  system_impl& sys_;
  const std::uint16_t index_;
  const std::uint32_t engine_;
  const bool inline_;
  const unsigned throughput_;
  std::unique_ptr<io::reactor> reactor_;

  // actors
  /// Slots in fixed chunks: growing never moves (or copies) the ones in
  /// use, and a slot stays where it is for the shard's life.
  class slot_table {
   public:
    static constexpr std::uint32_t chunk_bits = 12;
    static constexpr std::uint32_t chunk_mask = (1u << chunk_bits) - 1;
    std::size_t size() const noexcept { return chunks_.size() << chunk_bits; }
    slot_entry& operator[](std::uint32_t i) noexcept {
      return chunks_[i >> chunk_bits].hot[i & chunk_mask];
    }
    const slot_entry& operator[](std::uint32_t i) const noexcept {
      return chunks_[i >> chunk_bits].hot[i & chunk_mask];
    }
    slot_life& life(std::uint32_t i) noexcept {
      return chunks_[i >> chunk_bits].cold[i & chunk_mask];
    }
    const slot_life& life(std::uint32_t i) const noexcept {
      return chunks_[i >> chunk_bits].cold[i & chunk_mask];
    }
    void grow_to(std::size_t n) {
      while (size() < n) {
        chunks_.push_back({std::make_unique<slot_entry[]>(chunk_mask + 1),
                           std::make_unique<slot_life[]>(chunk_mask + 1)});
      }
    }

   private:
    struct chunk {
      std::unique_ptr<slot_entry[]> hot;
      std::unique_ptr<slot_life[]> cold;
    };
    std::vector<chunk> chunks_;
  };
  slot_table slots_;
  std::uint32_t free_head_ = UINT32_MAX;
  alignas(64) std::atomic<std::uint32_t> fresh_{0};  // other threads reserve slots here
  std::unordered_map<std::uint32_t, std::vector<envelope*>> parked_;
  std::unordered_map<std::uint32_t, std::vector<address>> watchers_;                // by slot
  std::unordered_map<std::uint32_t, std::unordered_set<address>> remote_children_;  // by slot
  std::unordered_map<std::uint32_t, ending> ending_;  // actors waiting for their children
  std::unordered_map<std::uint32_t, restart_window> windows_;
  std::unordered_map<std::uint32_t, std::uint32_t> mailbox_limits_;  // actors with st_bounded
  std::deque<supervision_policy> policies_;                          // interned, stable addresses
  const supervision_policy* root_policy_ = nullptr;
  address dead_letter_handler_;
  std::unordered_map<std::string, address> directory_;         // names this shard keeps
  std::unordered_map<std::uint32_t, std::string> slot_names_;  // named actors living here
  std::unordered_map<std::string, address> name_cache_;        // lookups seen here
  std::unordered_map<std::string, reservation> reserved_;      // names being spawned elsewhere
  std::unordered_map<std::string, std::vector<std::uint32_t>> name_subscribers_;  // by name
  unsigned restart_depth_ = 0;  // restarts inside restarts go through a timer
  actor_base* ready_head_ = nullptr;
  actor_base* ready_tail_ = nullptr;
  actor_base* in_dispatch_ = nullptr;
  failure sync_failure_;
  std::unordered_map<std::uint32_t, failure> self_failures_;  // fail_with() called, by slot
  envelope* replies_head_ = nullptr;
  envelope* replies_tail_ = nullptr;
  envelope* control_head_ = nullptr;  // control messages for this shard, run from the loop
  envelope* control_tail_ = nullptr;

  // lanes
  std::vector<envelope_ring*> in_;
  std::vector<lane> out_;
  std::vector<std::uint16_t> dirty_;  // lanes with unpublished items
  std::size_t overflowed_ = 0;        // envelopes waiting in overflow lists
  std::mutex outside_lock_;
  envelope* outside_head_ = nullptr;
  envelope* outside_tail_ = nullptr;
  alignas(64) std::atomic<bool> outside_pending_{false};

  // time
  std::vector<timer_entry> timers_;  // min-heap on (when, seq)
  std::uint64_t timer_seq_ = 1;
  std::unordered_set<timer_id> live_wakeups_;
  time_point virtual_now_{};

  // asks
  std::vector<pending_entry> pending_;
  std::uint32_t pending_free_ = UINT32_MAX;

  // sleep / wake
  alignas(64) std::atomic<bool> sleeping_{false};  // read by every producer on publish
  alignas(64) std::atomic<std::uint64_t> activity_{0};

  // shutdown
  shutdown_phase phase_ = shutdown_phase::running;
  unsigned io_passes_ = 0;
  /// How long to poll before sleeping (see spin_min, spin_max).
  std::chrono::steady_clock::duration spin_ = std::chrono::microseconds(50);
  std::unique_ptr<remote_router> router_;

  // placement
  std::uint32_t round_robin_ = 0;

  // dead-letter log rate limit
  time_point log_window_{};
  unsigned logged_in_window_ = 0;
  std::uint64_t suppressed_ = 0;

  shard_counters counters_;

  friend class system_impl;
};

template <class F>
inline void shard::for_each_child(std::uint32_t slot, F&& f) {
  for (std::uint32_t c = slots_.life(slot).first_child; c;) {
    const std::uint32_t next = slots_.life(c - 1).next_sibling;  // f may send, never unlink
    f(slots_[c - 1].actor->self());
    c = next;
  }
  if (auto r = remote_children_.find(slot); r != remote_children_.end()) {
    for (const address& a : r->second) f(a);
  }
}

}  // namespace troupe::internal
