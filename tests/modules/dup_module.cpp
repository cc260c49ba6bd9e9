// A module for the tests: one new actor type and one whose name the good
// module already holds. It must be refused whole.

#include <troupe/module.hpp>

#include <string>

namespace {

struct other : troupe::actor<other, std::string> {
  std::string on(const std::string& s) { return s; }
};
struct impostor : troupe::actor<impostor, std::string> {
  std::string on(const std::string&) { return "impostor"; }
};

}  // namespace

TROUPE_MODULE("test.dup") {
  registry.actor<other>("dup.other");
  registry.actor<impostor>("good.shout");
}
