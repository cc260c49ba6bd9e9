// Remote workloads of caf-perf: two OS processes on 127.0.0.1, connected by
// CAF's own remoting (the io middleman: publish / remote_actor, BASP over TCP).
//
// Side A is the measuring caf-perf process. It starts side B as a child
// (fork + exec of this binary with --serve-remote), reads the port B
// publishes its actor on from B's stdout, connects, runs the workload and
// finally ends B by its PID (SIGTERM, SIGKILL after 5 s) and reaps it.
// B also dies with A (PR_SET_PDEATHSIG), so no run leaves a process behind.

#pragma once

#include <caf/actor_system_config.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace caf_perf {

// remote-pingpong and remote-pipeline.
bool is_remote_workload(const std::string& workload);

uint64_t remote_default_n(const std::string& workload);

// Side A. `cfg` carries the scheduler settings (the same ones are passed to B
// through `serve_args`, the arguments after argv[0] of B's command line).
// Loads the middleman into `cfg`. Returns round trips or messages per second;
// throws std::runtime_error when B cannot be started or reached.
double run_remote(caf::actor_system_config& cfg, const std::string& workload, uint64_t n,
                  const std::vector<std::string>& serve_args);

// Side B: publishes the workload's actor on 127.0.0.1 (a port chosen by the
// OS), prints "port <P>" on stdout and then serves until it is ended by a
// signal. Returns only on failure (after printing why).
void serve_remote(caf::actor_system_config& cfg, const std::string& workload);

}  // namespace caf_perf
