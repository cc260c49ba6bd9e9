// The key-value server as an actor module: `troupe serve --module kv.so`
// with an actor of type "kv.server" to spawn, e.g. in the config file
//
//   "actors": [{"type": "kv.server", "args": {"host": "127.0.0.1", "port": 6379}}]

#include <spdlog/spdlog.h>

#include <memory>
#include <troupe/module.hpp>

#include "listener.hpp"
#include "store.hpp"

namespace troupe::kv {
namespace {

struct open_now {};

/// One server: its stores (one per shard) and its listener are children.
class server_actor : public actor<server_actor, open_now> {
 public:
  explicit server_actor(const nlohmann::json& args) {
    if (!args.is_null() && !args.is_object()) {
      throw std::invalid_argument("kv.server: args must be an object {\"host\", \"port\"}");
    }
    if (args.is_object()) {
      for (const auto& [key, value] : args.items()) {
        if (key == "host" && value.is_string()) {
          host_ = value.get<std::string>();
        } else if (key == "port" && value.is_number_unsigned() && value.get<unsigned>() <= 65535) {
          port_ = static_cast<std::uint16_t>(value.get<unsigned>());
        } else {
          throw std::invalid_argument("kv.server: args." + key +
                                      ": expected \"host\" (a string) or \"port\" (0..65535)");
        }
      }
    }
  }

  void on_start() {
    const std::size_t shards = shard_count();
    auto svc = std::make_shared<service>(shards);
    for (std::size_t i = 0; i < shards; ++i) {
      svc->set_store(i, spawn<store>(spawn_options{.shard = static_cast<int>(i)}, svc));
    }
    listener_ = spawn<listener>(spawn_options{.shard = 0}, svc, host_, port_);
    tell(self(), open_now{});
  }

  task<void> on(const open_now&) {
    auto r = co_await ask<listen_reply>(listener_, open_port{}, std::chrono::seconds(10));
    if (!r) {
      fail_with("kv.server: the listener did not answer: " + r.err().describe());
      co_return;
    }
    if (!r->error.empty()) {
      fail_with("kv.server: cannot listen: " + r->error);
      co_return;
    }
    spdlog::info("kv listening on {}:{}", host_, r->port);
  }

 private:
  std::string host_ = "127.0.0.1";
  std::uint16_t port_ = 6379;
  address listener_;
};

}  // namespace
}  // namespace troupe::kv

TROUPE_MODULE("kv") { registry.actor<troupe::kv::server_actor>("kv.server"); }
