// A module for the tests that is slow to load: its registration waits
// 1.5 s before it registers its actor type, as a module that opens a
// database or reads a large file at load time would. Until it is loaded,
// the engine that loads it has no such type.

#include <troupe/module.hpp>

#include <chrono>
#include <string>
#include <thread>

namespace {

struct echo : troupe::actor<echo, std::string> {
  std::string on(const std::string& s) { return s; }
};

}  // namespace

TROUPE_MODULE("test.slow") {
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  registry.actor<echo>("slow.echo");
}
