#include "core/blocking_pool.hpp"

#include <stdexcept>
#include <string>

#include "core/extension_points.hpp"
#include "core/system_impl.hpp"

namespace troupe::internal {

blocking_pool::~blocking_pool() { stop(); }

void blocking_pool::configure(std::size_t threads, std::size_t queue_limit) {
  std::lock_guard g(lock_);
  if (!threads_.empty()) {
    throw std::logic_error("blocking_pool::configure after the pool's threads started");
  }
  thread_count_ = threads == 0 ? 1 : threads;
  queue_limit_ = queue_limit;
}

void blocking_pool::submit(blocking_job& j) {
  {
    std::lock_guard g(lock_);
    if (stopping_) {
      throw std::logic_error("troupe::run_blocking: the engine is stopping; no new blocking work");
    }
    if (queue_.size() >= queue_limit_) {
      throw std::runtime_error("troupe::run_blocking: " + std::to_string(queue_limit_) +
                               " blocking jobs wait already (the queue's limit); try later");
    }
    if (threads_.empty()) {
      threads_.reserve(thread_count_);
      for (std::size_t i = 0; i < thread_count_; ++i)
        threads_.emplace_back([this] { run_thread(); });
    }
    queue_.push_back(&j);
  }
  work_.notify_one();
}

std::size_t blocking_pool::busy() const {
  std::lock_guard g(lock_);
  return queue_.size() + running_;
}

void blocking_pool::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard g(lock_);
    stopping_ = true;
    threads.swap(threads_);
  }
  work_.notify_all();
  for (auto& t : threads) t.join();
}

void blocking_pool::run_thread() {
  std::unique_lock g(lock_);
  for (;;) {
    work_.wait(g, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to run
    blocking_job* j = queue_.front();
    queue_.pop_front();
    ++running_;
    g.unlock();
    // Read before run(): once blocking_done is posted the shard may resume
    // the coroutine and free `j` at any moment.
    shard& home = *j->home;
    j->run();
    auto* e =
        make_envelope(blocking_done{j}, address{}, address(home.engine(), home.index(), 0, 0));
    e->flags |= flag_control;
    home.post_outside(e);  // wakes the shard's ring
    g.lock();
    --running_;
  }
}

void blocking_pool::add_controls(control_registry& r) {
  r.add<blocking_done>([](shard&, envelope* e) {
    e->as<blocking_done>().job->waiter.resume();
    return false;
  });
}

bool submit_blocking(shard& s, blocking_job& j) {
  j.home = &s;
  if (s.owner().inline_mode()) {
    // One thread runs the whole engine, deterministically: the job too.
    j.run();
    return false;
  }
  s.owner().blocking().submit(j);
  return true;
}

}  // namespace troupe::internal
