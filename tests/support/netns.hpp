#pragma once
// Test helper: a small network of Linux network namespaces made for one
// test, with iproute2 (`ip`, `bridge`), deleted when the test ends.
//
//        ns <tag>-0           ns <tag>-1      ...      ns <tag>-hub
//     h<pid>-0 10.77.0.1   h<pid>-1 10.77.0.2         br<pid>: p<pid>-0, p<pid>-1, ...
//            \__________________\___________ veth ________/
//
// Each host namespace has its loopback up and one interface, a veth pair
// whose other end is a port of a bridge in a hub namespace of its own.
// Nothing is added to the caller's namespace, so addresses and ports
// cannot clash with the machine's, and namespace names (<tag> is
// troupe-<pid>-<n>) carry the process id, so that parallel runs cannot
// clash with each other.
//
// cut_silently() stops the hub forwarding a host's frames, both ways (its
// bridge port set to "disabled"): the interfaces stay up, no carrier
// changes, no route goes, nothing answers with a reset or an ICMP error —
// a cable cut somewhere along the path, as TCP sees it: silence. heal()
// lets the frames through again. (tc's netem loss would be silent too, but
// not every kernel has sch_netem; `ip link set down` would change carriers
// and routes on one side.)

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace troupe::test {

/// The path of an iproute2 tool ("ip", "bridge"), or throws saying it is missing.
inline std::string iproute2_tool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    const std::string path = dir + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  throw std::runtime_error("netns: iproute2's `" + name +
                           "` was not found in /usr/sbin, /sbin, /usr/bin or /bin (install "
                           "iproute2: scripts/setup.sh does)");
}

/// Runs `argv` (argv[0] a path) to its end, bounded by `limit`; returns its
/// output, or throws with the command, its exit status and its output.
inline std::string run_checked(const std::vector<std::string>& argv,
                               std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  child_process p(argv);
  const auto status = p.wait_exit(limit);
  if (status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return p.output();
  std::string command;
  for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
  std::string how = "did not end within " + std::to_string(limit.count()) + " ms";
  if (status && WIFEXITED(*status)) how = "exited with " + std::to_string(WEXITSTATUS(*status));
  if (status && WIFSIGNALED(*status))
    how = "was killed by signal " + std::to_string(WTERMSIG(*status));
  std::string output = p.output();
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  throw std::runtime_error("netns: `" + command + "` " + how + ": " + output +
                           (::geteuid() != 0 ? " (network namespaces need root or CAP_NET_ADMIN "
                                               "and CAP_SYS_ADMIN)"
                                             : ""));
}

/// `hosts` network namespaces on one bridge, for one test.
///
/// Used from the test's thread only. The constructor throws
/// std::runtime_error naming the command that failed (not root, no iproute2,
/// a kernel without veth or bridges); whatever it made by then is deleted.
/// The destructor deletes the namespaces, and with them their interfaces
/// and the bridge. Processes started in a namespace (exec()) must be ended
/// first: declare the network before them.
class netns_network {
 public:
  explicit netns_network(std::size_t hosts) : hosts_(hosts) {
    if (hosts == 0 || hosts > 200) throw std::invalid_argument("netns_network: 1 to 200 hosts");
    static std::atomic<int> made{0};
    const std::string pid = std::to_string(::getpid());
    tag_ = "troupe-" + pid + "-" + std::to_string(made++);
    ip_ = iproute2_tool("ip");
    bridge_ = iproute2_tool("bridge");
    bridge_name_ = "br" + pid;
    for (std::size_t i = 0; i < hosts; ++i) {
      host_if_.push_back("h" + pid + "-" + std::to_string(i));
      port_if_.push_back("p" + pid + "-" + std::to_string(i));
    }
    try {
      add_namespace(hub());
      ip({"-n", hub(), "link", "add", "name", bridge_name_, "type", "bridge"});
      ip({"-n", hub(), "link", "set", bridge_name_, "up"});
      for (std::size_t i = 0; i < hosts; ++i) {
        add_namespace(ns(i));
        ip({"-n", ns(i), "link", "set", "lo", "up"});
        ip({"-n", hub(), "link", "add", "name", port_if_[i], "type", "veth", "peer", "name",
            host_if_[i], "netns", ns(i)});
        ip({"-n", hub(), "link", "set", port_if_[i], "master", bridge_name_});
        ip({"-n", hub(), "link", "set", port_if_[i], "up"});
        ip({"-n", ns(i), "addr", "add", address(i) + "/24", "dev", host_if_[i]});
        ip({"-n", ns(i), "link", "set", host_if_[i], "up"});
      }
    } catch (...) {
      remove_all();
      throw;
    }
  }
  ~netns_network() { remove_all(); }
  netns_network(const netns_network&) = delete;
  netns_network& operator=(const netns_network&) = delete;

  std::size_t hosts() const noexcept { return hosts_; }
  /// The name of host `i`'s namespace.
  std::string ns(std::size_t i) const { return tag_ + "-" + std::to_string(i); }
  /// Host `i`'s IPv4 address: 10.77.0.(i + 1).
  std::string address(std::size_t i) const { return "10.77.0." + std::to_string(i + 1); }
  /// `argv` run in host `i`'s namespace: `ip netns exec NS argv...`, which
  /// execs argv[0] itself, so the child's PID is the program's own.
  std::vector<std::string> exec(std::size_t i, std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {ip_, "netns", "exec", ns(i)});
    return argv;
  }

  /// Host `i` hears nothing from the others, and they nothing from it.
  void cut_silently(std::size_t i) { set_port_state(i, "disabled"); }
  /// Host `i`'s frames flow again.
  void heal(std::size_t i) { set_port_state(i, "forwarding"); }

 private:
  std::string hub() const { return tag_ + "-hub"; }

  void ip(std::vector<std::string> args) const {
    args.insert(args.begin(), ip_);
    run_checked(args);
  }

  void add_namespace(const std::string& name) {
    ip({"netns", "add", name});
    made_.push_back(name);
  }

  void set_port_state(std::size_t i, const std::string& state) {
    // `ip link set ... type bridge_slave state N` is accepted but not applied
    // by some iproute2/kernel pairs; `bridge link set` is, and is checked.
    const std::string number = state == "disabled" ? "0" : "3";
    run_checked({bridge_, "-n", hub(), "link", "set", "dev", port_if_.at(i), "state", number});
    const std::string shown =
        run_checked({bridge_, "-n", hub(), "link", "show", "dev", port_if_[i]});
    if (shown.find("state " + state) == std::string::npos) {
      throw std::runtime_error("netns: bridge port " + port_if_[i] + " did not become " + state +
                               ": " + shown);
    }
  }

  void remove_all() noexcept {
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
      try {
        child_process p({ip_, "netns", "del", *it});
        p.wait_exit(std::chrono::seconds(10));
      } catch (...) {  // a failed clean-up must not hide the test's own failure
      }
    }
    made_.clear();
  }

  std::size_t hosts_;
  std::string tag_, ip_, bridge_, bridge_name_;
  std::vector<std::string> host_if_, port_if_;
  std::vector<std::string> made_;  ///< namespaces added, in order
};

}  // namespace troupe::test
