// An actor module built out of the engine's tree: one actor type that
// greets whoever it is sent.

#include <troupe/troupe.hpp>

#include <string>

namespace {

/// Answers a name with a greeting for it.
struct greeter : troupe::actor<greeter, std::string> {
  std::string on(const std::string& who) { return "hello, " + who; }
};

}  // namespace

TROUPE_MODULE("greeter") { registry.actor<greeter>("greeter.hello"); }
