#pragma once
// The threads on which coroutine handlers run blocking work
// (troupe::run_blocking): a fixed number of them, started on first use, and
// a bounded queue. A job's end goes back to its awaiting coroutine's shard
// as a control message (blocking_done) through the shard's outside queue,
// which wakes the shard's ring: no thread polls.
//
//   shard ──submit──▶ queue ──▶ pool thread: job.run() ──post_outside──▶ shard: resume

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "troupe/internal/runtime.hpp"

namespace troupe::internal {

class control_registry;

/// To the shard that submitted a blocking job: it has run; resume its
/// awaiting coroutine (on that shard's thread).
struct blocking_done {
  blocking_job* job;
};

/// One system's pool of threads for blocking work. submit() from a shard's
/// thread; stop() from the thread that stops the system.
class blocking_pool {
 public:
  static constexpr std::size_t default_threads = 4;
  static constexpr std::size_t default_queue_limit = 1024;

  blocking_pool() = default;
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;
  /// Joins the threads (stop()).
  ~blocking_pool();

  /// Before the first submit (tests): `threads` threads, at most
  /// `queue_limit` jobs waiting for one. Throws std::logic_error once the
  /// threads run.
  void configure(std::size_t threads, std::size_t queue_limit);
  /// Queues `j` (which says its shard); a pool thread runs it and posts
  /// blocking_done to that shard. Starts the threads on first use. Throws
  /// std::runtime_error naming the limit when queue_limit jobs wait
  /// already, and std::logic_error once stop() has begun: `j` is then not
  /// queued. Any thread.
  void submit(blocking_job& j);
  /// Jobs queued or running: stop() waits for the shards to be quiet
  /// while there are any.
  std::size_t busy() const;
  /// No more submits; the queued jobs run, then the threads end and are
  /// joined. Blocks while a job runs. Idempotent.
  void stop();

  /// Installs the handler of blocking_done (the shard resumes the job's
  /// coroutine).
  static void add_controls(control_registry& r);

 private:
  void run_thread();

  mutable std::mutex lock_;
  std::condition_variable work_;
  std::deque<blocking_job*> queue_;
  std::vector<std::thread> threads_;
  std::size_t thread_count_ = default_threads;
  std::size_t queue_limit_ = default_queue_limit;
  std::size_t running_ = 0;
  bool stopping_ = false;
};

}  // namespace troupe::internal
