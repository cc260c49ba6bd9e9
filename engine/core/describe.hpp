#pragma once
// Words for logs and error texts: actor class names and failures.

#include <exception>
#include <string>

#include "troupe/internal/runtime.hpp"

namespace troupe {
class actor_base;
}

namespace troupe::internal {

/// The actor's class name, e.g. "app::counter"; "?" for null.
std::string actor_name(const actor_base* a);
/// "std::runtime_error: boom" for the exception in `failure`.
std::string describe_failure(std::exception_ptr failure);
/// The same for a failure caught or given to fail_with(), without rethrowing.
std::string describe(const failure& f);

}  // namespace troupe::internal
