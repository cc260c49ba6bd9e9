// The cluster demo's worker, as a module: members that lack it receive it
// from the engine that places a worker on them.

#include <troupe/module.hpp>

#include "messages.hpp"

namespace {

/// Answers a job with its number doubled and where it ran.
struct worker : troupe::actor<worker, demo::job> {
  demo::job_done on(const demo::job& j) { return {2 * j.n, self().engine()}; }
};

}  // namespace

TROUPE_MODULE("demo") {
  registry.actor<worker>("demo.worker");
  registry.message<demo::job>("demo.job");
  registry.message<demo::job_done>("demo.job_done");
}
