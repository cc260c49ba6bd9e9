#pragma once
// The demo's messages: trivially copyable, so their bytes cross as they
// are. The module registers them in the engines that load it, the driver
// in its own, under the same names.

#include <cstdint>

namespace demo {
struct job {
  std::uint64_t n;
};
struct job_done {
  std::uint64_t twice;
  std::uint32_t engine;
};
}  // namespace demo
