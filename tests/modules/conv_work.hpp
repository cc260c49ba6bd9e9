#pragma once
// The messages of conv_module's busy worker ("conv.busy_worker"), shared by
// the module and the tests that drive it: both register them under the same
// wire names, and being trivially copyable they cross as their bytes.

#include <cstdint>

namespace conv_test {

/// Take `ms` milliseconds (a timer, not the CPU), then answer.
struct work {
  std::uint32_t ms = 1;
  std::uint32_t pad = 0;
  std::uint64_t id = 0;
};
/// Which engine did it, and the work's id.
struct work_done {
  std::uint32_t engine = 0;
  std::uint32_t pad = 0;
  std::uint64_t id = 0;
};

}  // namespace conv_test
