#pragma once
// Test helper: a real etcd (one node or a 3-node cluster) on 127.0.0.1, on
// free ports, with its data under /tmp; each node is ended by its PID.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/ports.hpp"
#include "support/process.hpp"

namespace troupe::test {

/// Where etcd is: $TROUPE_ETCD, else /usr/bin/etcd (Debian's etcd-server).
inline std::string etcd_binary() {
  if (const char* p = std::getenv("TROUPE_ETCD"); p != nullptr && *p != '\0') return p;
  return "/usr/bin/etcd";
}

/// Where etcdctl is: $TROUPE_ETCDCTL, else /usr/bin/etcdctl (etcd-client).
inline std::string etcdctl_binary() {
  if (const char* p = std::getenv("TROUPE_ETCDCTL"); p != nullptr && *p != '\0') return p;
  return "/usr/bin/etcdctl";
}

/// Runs etcdctl with `args` (bounded: 10 s); its output, or throws with it.
inline std::string etcdctl(std::vector<std::string> args) {
  args.insert(args.begin(), etcdctl_binary());
  child_process p(args);
  const auto status = p.wait_exit(std::chrono::seconds(10));
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    std::string command;
    for (const auto& a : args) command += (command.empty() ? "" : " ") + a;
    throw std::runtime_error(command + (status ? " failed:\n" : " did not end in 10 s:\n") +
                             p.output());
  }
  return p.output();
}

/// A running etcd cluster of `nodes` members on 127.0.0.1. The constructor
/// returns once every member serves clients (a leader is elected), or throws
/// with the members' output. The destructor ends each member (SIGTERM, then
/// SIGKILL) and removes the data. One thread (the test's) uses it.
class etcd_cluster {
 public:
  explicit etcd_cluster(std::size_t nodes = 1,
                        std::chrono::milliseconds ready_limit = std::chrono::seconds(15)) {
    const std::string binary = etcd_binary();
    if (access(binary.c_str(), X_OK) != 0) {
      throw std::runtime_error("cannot run etcd tests: no etcd at " + binary +
                               " (install etcd-server, see scripts/setup.sh, or set TROUPE_ETCD)");
    }
    char dir[] = "/tmp/troupe-etcd-XXXXXX";
    if (mkdtemp(dir) == nullptr) throw std::runtime_error("cannot make a temp dir for etcd");
    dir_ = dir;
    try {
      start(binary, nodes, ready_limit);
    } catch (...) {
      stop();
      throw;
    }
  }

  ~etcd_cluster() { stop(); }
  etcd_cluster(const etcd_cluster&) = delete;
  etcd_cluster& operator=(const etcd_cluster&) = delete;

  std::size_t size() const { return nodes_.size(); }

  /// "127.0.0.1:PORT" of member `i`'s client side.
  std::string endpoint(std::size_t i) const {
    return "127.0.0.1:" + std::to_string(nodes_.at(i).client_port);
  }
  /// Every member's endpoint, in member order (killed ones too).
  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < nodes_.size(); ++i) out.push_back(endpoint(i));
    return out;
  }
  /// "etcd://127.0.0.1:P1,127.0.0.1:P2,...".
  std::string url() const {
    std::string u = "etcd://";
    for (std::size_t i = 0; i < nodes_.size(); ++i) u += (i ? "," : "") + endpoint(i);
    return u;
  }
  pid_t pid(std::size_t i) const { return nodes_.at(i).proc->pid(); }

  /// The member that leads now (asked of every live member through etcdctl);
  /// nullopt when none says it does.
  std::optional<std::size_t> leader() const {
    // One line a member: "endpoint, id, version, db size, is leader, ...".
    for (const auto& [i, id, leads] : status()) {
      if (leads) return i;
    }
    return std::nullopt;
  }

  /// Makes member `i` the leader (etcdctl move-leader) and waits, bounded,
  /// until it is; throws if it cannot.
  void make_leader(std::size_t i) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < end) {
      std::string target_id;
      std::optional<std::size_t> now;
      for (const auto& [m, id, leads] : status()) {
        if (m == i) target_id = id;
        if (leads) now = m;
      }
      if (now == i) return;
      if (now && !target_id.empty()) {
        etcdctl({"--endpoints", endpoint(*now), "move-leader", target_id});
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // electing
      }
    }
    throw std::runtime_error("etcd member n" + std::to_string(i) + " did not become the leader");
  }

  /// Kills member `i` at once (kill -9 by its PID) and reaps it.
  void kill_node(std::size_t i) {
    auto& n = nodes_.at(i);
    if (!n.proc || n.ended) return;
    n.proc->signal(SIGKILL);
    n.ended = n.proc->wait_exit(std::chrono::seconds(5)).has_value();
  }

  /// Ends every member still running, one at a time (SIGTERM, SIGKILL after
  /// 2 s), and removes the data directories. Idempotent.
  ///
  /// One at a time: a leader that stops hands its leadership to a follower
  /// first, and when that follower is stopping too the hand-over takes until
  /// etcd's own timeout (about 6 s).
  void stop() {
    for (auto& n : nodes_) {
      if (!n.proc || n.ended) continue;
      n.proc->signal(SIGTERM);
      if (!n.proc->wait_exit(std::chrono::seconds(2))) {
        n.proc->signal(SIGKILL);
        n.proc->wait_exit(std::chrono::seconds(5));
      }
      n.ended = true;
    }
    nodes_.clear();  // child_process removes its output file
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  /// What every member printed, for a failure's message.
  std::string outputs() const {
    std::string out;
    for (const auto& n : nodes_) {
      if (n.proc) out += "--- etcd " + n.name + " ---\n" + n.proc->output();
    }
    return out;
  }

 private:
  struct member_status {
    std::size_t index;
    std::string id;  ///< hex, as move-leader takes it
    bool leads;
  };
  std::vector<member_status> status() const {
    std::vector<member_status> out;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].ended) continue;
      std::string line;
      try {
        line = etcdctl({"--endpoints", endpoint(i), "--command-timeout", "2s", "endpoint", "status",
                        "-w", "simple"});
      } catch (const std::runtime_error&) {
        continue;  // not answering now
      }
      std::vector<std::string> fields;
      std::size_t from = 0;
      for (std::size_t comma; (comma = line.find(", ", from)) != std::string::npos;
           from = comma + 2) {
        fields.push_back(line.substr(from, comma - from));
      }
      if (fields.size() >= 5) out.push_back({i, fields[1], fields[4] == "true"});
    }
    return out;
  }

  void start(const std::string& binary, std::size_t nodes, std::chrono::milliseconds ready_limit) {
    const auto ports = free_ports(2 * nodes);
    std::string initial_cluster;
    for (std::size_t i = 0; i < nodes; ++i) {
      node n;
      n.name = "n" + std::to_string(i);
      n.client_port = ports[2 * i];
      n.peer_port = ports[2 * i + 1];
      if (!initial_cluster.empty()) initial_cluster += ",";
      initial_cluster += n.name + "=" + n.peer_url();
      nodes_.push_back(std::move(n));
    }
    for (auto& n : nodes_) {
      // Short heartbeats and elections: a test that kills the leader waits
      // about half a second for the next, not several. The minimum lease
      // TTL follows (1.5 election timeouts, rounded up: 1 s).
      n.proc =
          std::make_unique<child_process>(std::vector<std::string>{binary,
                                                                   "--name",
                                                                   n.name,
                                                                   "--data-dir",
                                                                   dir_ + "/" + n.name,
                                                                   "--listen-client-urls",
                                                                   n.client_url(),
                                                                   "--advertise-client-urls",
                                                                   n.client_url(),
                                                                   "--listen-peer-urls",
                                                                   n.peer_url(),
                                                                   "--initial-advertise-peer-urls",
                                                                   n.peer_url(),
                                                                   "--initial-cluster",
                                                                   initial_cluster,
                                                                   "--initial-cluster-state",
                                                                   "new",
                                                                   "--initial-cluster-token",
                                                                   dir_,
                                                                   "--heartbeat-interval",
                                                                   "50",
                                                                   "--election-timeout",
                                                                   "500"});
    }
    // Each member says so once it has joined the cluster and has a leader.
    const auto deadline = std::chrono::steady_clock::now() + ready_limit;
    for (auto& n : nodes_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (!n.proc->wait_for_output("ready to serve client requests", left)) {
        const std::string why = "etcd member " + n.name + " did not start within " +
                                std::to_string(ready_limit.count()) + " ms:\n" + outputs();
        throw std::runtime_error(why);
      }
    }
  }

  struct node {
    std::string name;
    std::uint16_t client_port = 0;
    std::uint16_t peer_port = 0;
    std::unique_ptr<child_process> proc;
    bool ended = false;

    std::string client_url() const { return "http://127.0.0.1:" + std::to_string(client_port); }
    std::string peer_url() const { return "http://127.0.0.1:" + std::to_string(peer_port); }
  };

  std::string dir_;
  std::vector<node> nodes_;
};

}  // namespace troupe::test
