#include "kv.hpp"

#include <chrono>
#include <memory>
#include <stdexcept>

#include "listener.hpp"
#include "store.hpp"

namespace troupe::kv {

server start(troupe::system& sys, const options& o) {
  const std::size_t shards = sys.shard_count();
  auto svc = std::make_shared<service>(shards);
  server s;
  for (std::size_t i = 0; i < shards; ++i) {
    s.stores.push_back(sys.spawn<store>(spawn_options{.shard = static_cast<int>(i)}, svc));
    svc->set_store(i, s.stores.back());
  }
  // The connections that read the addresses are spawned by the listener,
  // which starts after this point.
  s.listener = sys.spawn<listener>(spawn_options{.shard = 0}, svc, o.host, o.port);
  auto r = sys.ask<listen_reply>(s.listener, open_port{}, std::chrono::seconds(10));
  if (!r) throw std::runtime_error("kv: the listener did not answer: " + r.err().describe());
  if (!r->error.empty()) throw std::runtime_error("kv: cannot listen: " + r->error);
  s.port = r->port;
  return s;
}

}  // namespace troupe::kv
