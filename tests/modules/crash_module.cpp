// A module for the process-isolation tests (`troupe serve --workers`): an
// actor that takes its whole engine process down with a native crash, and
// answers a ping with the engine it runs on while it lives.

#include <troupe/module.hpp>

#include <cstdint>
#include <cstdlib>

namespace {

/// Told to a bomb: it calls std::abort() (SIGABRT), as a native bug would.
struct boom {};
/// Asked of a bomb: it answers with a pong.
struct ping {};
/// The engine the bomb runs on.
struct pong {
  std::uint32_t engine = 0;
};

void to_json(nlohmann::json& j, const boom&) { j = nlohmann::json::object(); }
void from_json(const nlohmann::json&, boom&) {}
void to_json(nlohmann::json& j, const ping&) { j = nlohmann::json::object(); }
void from_json(const nlohmann::json&, ping&) {}
void to_json(nlohmann::json& j, const pong& m) { j = {{"engine", m.engine}}; }
void from_json(const nlohmann::json& j, pong& m) { m.engine = j.at("engine").get<std::uint32_t>(); }

struct bomb : troupe::actor<bomb, boom, ping> {
  [[noreturn]] void on(const boom&) { std::abort(); }
  pong on(const ping&) { return {self().engine()}; }
};

}  // namespace

TROUPE_MODULE("test.crash") {
  registry.actor<bomb>("crash.bomb");
  registry.message<boom>("crash.boom");
  registry.message<ping>("crash.ping");
  registry.message<pong>("crash.pong");
}
