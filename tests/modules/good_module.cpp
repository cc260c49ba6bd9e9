// A module for the tests: an actor that answers text in capitals.

#include <troupe/module.hpp>

#include <cctype>
#include <string>

namespace {

struct shout : troupe::actor<shout, std::string> {
  std::string on(const std::string& s) {
    std::string out = s;
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
  }
};

struct good_ping {
  int n;
};

}  // namespace

TROUPE_MODULE("test.good") {
  registry.actor<shout>("good.shout");
  registry.message<good_ping>("good.ping");
}
