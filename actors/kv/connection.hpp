#pragma once
// The connection actor: one per client socket.

#include <coroutine>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <troupe/net.hpp>
#include <troupe/troupe.hpp>

#include "batch.hpp"
#include "commands.hpp"
#include "resp.hpp"
#include "service.hpp"

namespace troupe::kv {

/// Starts a connection's read loop (a connection sends it to itself).
struct serve {};

/// Serves one client: reads its requests, parses every whole command of a
/// read (pipelining), hands each store the operations on its keys as one
/// batch (run directly when the store is on this shard, an ask otherwise,
/// the asks to several stores in flight at once), and writes all the
/// replies of the read, in order, with one send. A protocol error is
/// answered as Redis does and closes the connection; so does QUIT.
///
/// Threads: its shard's. Owns its socket; ends when the client goes.
class connection : public actor<connection, serve> {
 public:
  connection(net::socket s, std::shared_ptr<const service> svc);

  void on_start();
  task<void> on(const serve&);

 private:
  /// What one command's reply is made of.
  enum class step_kind : std::uint8_t {
    local,    ///< bytes in local_
    one,      ///< the next reply of one store
    mget,     ///< `count` replies, from the stores in key_shards_, as an array
    sum,      ///< `count` integer replies from the stores in key_shards_, added up
    pairs,    ///< `count` replies from the stores in key_shards_; +OK
    all_sum,  ///< one integer reply from every store, added up
    all_ok,   ///< one reply from every store; +OK
  };
  struct step {
    step_kind kind;
    std::uint16_t shard;  ///< for `one`
    std::uint32_t count;  ///< for the per-key kinds; for `local`: where its bytes begin
    std::uint32_t end;    ///< for `local`: where its bytes end
  };

  /// Several asks in flight at once, and the coroutine waiting for all.
  struct ask_group {
    std::uint32_t waiting = 0;
    std::coroutine_handle<> waiter;
  };
  struct group_awaiter {
    ask_group& g;
    bool await_ready() const noexcept { return g.waiting == 0; }
    void await_suspend(std::coroutine_handle<> h) noexcept { g.waiter = h; }
    void await_resume() const noexcept {}
  };
  /// A coroutine that nobody awaits: it runs one ask and tells its group.
  struct detached_ask {
    struct promise_type {
      detached_ask get_return_object() noexcept { return {}; }
      std::suspend_never initial_suspend() noexcept { return {}; }
      std::suspend_never final_suspend() noexcept { return {}; }
      void return_void() noexcept {}
      void unhandled_exception() noexcept { std::terminate(); }
    };
  };

  /// Parses and plans every whole command in the input; after a protocol
  /// error or QUIT, sets close_after_ and takes no more.
  void take_commands();
  void plan(std::vector<std::string_view>& args);
  void plan_local(const command_spec& spec, std::vector<std::string_view>& args);
  void add_local_reply(std::string_view bytes);
  void begin_local();
  void end_local();
  /// Runs the batches: this shard's directly, the others' by asks.
  task<bool> run_batches();
  detached_ask ask_store(std::uint16_t shard, ask_group* g);
  void settle(std::uint16_t shard, result<shard_batch>& r);
  /// The bytes to send: the replies of every planned command, in order.
  std::string_view assemble();
  void reset_round();

  net::socket sock_;
  std::shared_ptr<const service> service_;
  resp_parser parser_;
  std::vector<std::string_view> args_;
  std::string in_;  // bytes read; in_[0, in_len_) hold data
  std::size_t in_len_ = 0;
  std::vector<shard_batch> batches_;  // by shard
  std::vector<std::uint32_t> next_reply_;
  std::vector<step> plan_;
  std::vector<std::uint16_t> key_shards_;
  std::string local_;  // replies made by the connection itself
  std::string out_;
  std::uint32_t local_begin_ = 0;
  int only_shard_ = -1;  // >= 0: every step is `one` from this shard; -2: mixed
  bool close_after_ = false;
  bool failed_ = false;
};

}  // namespace troupe::kv
