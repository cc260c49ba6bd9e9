#pragma once
// A troupe::system made from engine_options (server/config.hpp): the core's
// options with the links and convention layers they ask for.

#include "server/config.hpp"
#include "troupe/system.hpp"

namespace troupe::test {

class engine : public troupe::system {
 public:
  explicit engine(const engine_options& o) : troupe::system(o.core, o.layers()) {}
};

}  // namespace troupe::test
