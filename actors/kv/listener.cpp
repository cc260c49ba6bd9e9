#include "listener.hpp"

#include <cerrno>
#include <chrono>

#include <spdlog/spdlog.h>

#include "connection.hpp"

namespace troupe::kv {

listen_reply listener::on(const open_port&) {
  if (socket_) return {socket_.local_port(), {}};
  auto s = net::listen(host_, port_, 4096);
  if (!s) return {0, s.err().describe()};
  socket_ = std::move(*s);
  tell(self(), accept_clients{});
  return {socket_.local_port(), {}};
}

task<void> listener::on(const accept_clients&) {
  std::uint64_t failures = 0;
  for (;;) {
    auto accepting = net::accept(socket_);
    auto s = co_await accepting;
    if (s) {
      address c = spawn<connection>(spawn_options{.where = placement::round_robin}, std::move(*s),
                                    std::shared_ptr<const service>(service_));
      (void)c;
      continue;
    }
    if (accepting.result == -ECANCELED) co_return;  // the engine is stopping
    // Out of descriptors, or a client that left before it was accepted:
    // say so (now and then) and go on after a pause.
    if (failures++ % 100 == 0) {
      spdlog::warn("kv: {} (failure {}); accepting again in 10 ms", s.err().describe(), failures);
    }
    co_await sleep_for{std::chrono::milliseconds(10)};
  }
}

}  // namespace troupe::kv
