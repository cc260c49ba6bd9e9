// A module for the tests: built for a module ABI the engine does not load.

#include <troupe/module.hpp>

extern "C" __attribute__((visibility("default"))) const troupe::module_descriptor*
troupe_module_v1() {
  static const troupe::module_descriptor d{troupe::module_abi + 97, TROUPE_VERSION_STRING,
                                           "test.bad_abi", nullptr};
  return &d;
}
