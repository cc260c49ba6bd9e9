// The configuration file of `troupe serve`: reading, checking, printing.
//
// Every check lives in parse_config and works on JSON values, so that a
// problem reads the same whether it came from the file or, through
// validate_config, from flags: "<key path>: expected <what>, got <value>".

#include "server/config.hpp"

#include "troupe/convention.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <string_view>
#include <utility>

namespace troupe {
namespace {

using nlohmann::json;

constexpr unsigned max_shards = 4096;
constexpr unsigned max_workers = 64;
constexpr std::uint32_t max_engine_id = 0xFFFFFFFEu;
constexpr unsigned min_heartbeat_ms = 10, max_heartbeat_ms = 600'000;
constexpr unsigned min_peer_timeout_ms = 20, max_peer_timeout_ms = 3'600'000;
constexpr std::uint64_t min_max_frame = 1024, max_max_frame = 1u << 30;
// The handshake carries the convention's name; a short one keeps it small.
constexpr std::size_t max_convention_bytes = 255;

const std::vector<std::string_view> top_keys = {
    "shards",           "io",         "engine_id",    "workers",         "listen",    "peers",
    "secret_file",      "convention", "heartbeat_ms", "peer_timeout_ms", "log_level", "admin",
    "admin_token_file", "modules",    "actors",       "limits"};
const std::vector<std::string_view> actor_keys = {"type", "name", "shard", "args"};
const std::vector<std::string_view> limit_keys = {"max_frame", "mailbox_limit"};
const std::vector<std::string_view> convention_keys = {
    "name", "leader", "advertise", "capabilities", "module_cache", "forward_logs", "membership"};
const std::vector<std::string_view> io_choices = {"auto", "uring", "epoll"};
const std::vector<std::string_view> log_levels = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};

std::string join(const std::vector<std::string_view>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

/// A value as the file spells it, cut short when long.
std::string shown(const json& v) {
  constexpr std::size_t most = 60;
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > most) s = s.substr(0, most - 3) + "...";
  return s;
}

std::string in_quotes(std::string_view s) { return shown(json(std::string(s))); }

std::string child(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

std::string element(std::string_view path, std::size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

/// Levenshtein distance, for "did you mean".
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// The problems found so far, one line each.
class problems {
 public:
  void add(std::string_view path, std::string_view what) {
    lines_.push_back(path.empty() ? std::string(what)
                                  : std::string(path) + ": " + std::string(what));
  }
  void expected(std::string_view path, std::string_view what, const json& got) {
    add(path, "expected " + std::string(what) + ", got " + shown(got));
  }
  bool empty() const { return lines_.empty(); }
  std::size_t size() const { return lines_.size(); }
  std::string text(std::string_view prefix = {}) const {
    std::string out;
    for (const auto& l : lines_) {
      if (!out.empty()) out += '\n';
      out += prefix;
      out += l;
    }
    return out;
  }

 private:
  std::vector<std::string> lines_;
};

/// Reports each key of `object` that is not one of `known`.
void check_keys(const json& object, std::string_view path,
                const std::vector<std::string_view>& known, problems& p) {
  for (const auto& item : object.items()) {
    const std::string& key = item.key();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string what = "unknown key '" + key + "'";
    std::string_view best;
    std::size_t best_distance = 3;  // farther than 2 edits is no typo
    for (const auto& k : known) {
      const std::size_t d = edit_distance(key, k);
      if (d < best_distance && d < k.size()) best = k, best_distance = d;
    }
    if (!best.empty()) what += ", did you mean '" + std::string(best) + "'?";
    what += " (known keys: " + join(known) + ")";
    p.add(path, what);
  }
}

/// An integer of `v` within [lo, hi]; floats, booleans and strings are not.
std::optional<std::uint64_t> integer_in(const json& v, std::uint64_t lo, std::uint64_t hi) {
  std::uint64_t n = 0;
  if (v.is_number_unsigned()) {
    n = v.get<std::uint64_t>();
  } else if (v.is_number_integer()) {
    const auto s = v.get<std::int64_t>();
    if (s < 0) return std::nullopt;
    n = static_cast<std::uint64_t>(s);
  } else {
    return std::nullopt;
  }
  if (n < lo || n > hi) return std::nullopt;
  return n;
}

template <class T>
bool read_integer(const json& v, std::string_view path, std::uint64_t lo, std::uint64_t hi, T& out,
                  problems& p) {
  const auto n = integer_in(v, lo, hi);
  if (!n) {
    p.expected(path, "an integer between " + std::to_string(lo) + " and " + std::to_string(hi), v);
    return false;
  }
  out = static_cast<T>(*n);
  return true;
}

bool read_choice(const json& v, std::string_view path, const std::vector<std::string_view>& choices,
                 std::string& out, problems& p) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (std::find(choices.begin(), choices.end(), s) != choices.end()) {
      out = s;
      return true;
    }
  }
  p.expected(path, "one of " + join(choices), v);
  return false;
}

bool read_nonempty_string(const json& v, std::string_view path, std::string& out, problems& p) {
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
    p.expected(path, "a non-empty string", v);
    return false;
  }
  out = v.get<std::string>();
  return true;
}

/// A file path, or null for none.
bool read_optional_path(const json& v, std::string_view path, std::string& out, problems& p) {
  if (v.is_null()) {
    out.clear();
    return true;
  }
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
    p.expected(path, "a file path or null", v);
    return false;
  }
  out = v.get<std::string>();
  return true;
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// A DNS name or a dotted IPv4 address; "[...]" holding an IPv6 address.
bool valid_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string inner(host.substr(1, host.size() - 2));
    in6_addr a{};
    return ::inet_pton(AF_INET6, inner.c_str(), &a) == 1;
  }
  if (host.empty() || host.size() > 253) return false;
  bool all_numeric = true;
  std::size_t start = 0;
  while (start <= host.size()) {
    std::size_t dot = host.find('.', start);
    if (dot == std::string_view::npos) dot = host.size();
    const std::string_view label = host.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!alnum && c != '-') return false;
    }
    all_numeric = all_numeric && is_digits(label);
    start = dot + 1;
  }
  if (all_numeric) {
    // Only digits and dots: it must be an IPv4 address, not a name.
    const std::string text(host);
    in_addr a{};
    return ::inet_pton(AF_INET, text.c_str(), &a) == 1;
  }
  return true;
}

struct host_port {
  std::string host;
  unsigned port = 0;
};

std::optional<host_port> split_host_port(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (!valid_host(host) || !is_digits(port)) return std::nullopt;
  // More than five digits is out of range whatever they say.
  const unsigned n =
      port.size() > 5 ? 100000u : static_cast<unsigned>(std::stoul(std::string(port)));
  return host_port{std::string(host), n};
}

/// "host:port" with a port of at least `min_port` (0: any free port).
bool read_host_port(const json& v, std::string_view path, unsigned min_port, std::string& out,
                    problems& p) {
  const auto hp = v.is_string() ? split_host_port(v.get_ref<const std::string&>()) : std::nullopt;
  if (!hp) {
    p.expected(path, "\"host:port\"", v);
    return false;
  }
  if (hp->port < min_port || hp->port > 65535) {
    p.expected(path, "a port between " + std::to_string(min_port) + " and 65535 in \"host:port\"",
               v);
    return false;
  }
  out = v.get<std::string>();
  return true;
}

/// Reads an array, element by element; a value listed twice is a problem.
template <class Read>
void read_unique_list(const json& v, std::string_view path, std::vector<std::string>& out,
                      problems& p, Read read_one) {
  if (!v.is_array()) {
    p.expected(path, "an array", v);
    return;
  }
  out.clear();
  std::vector<std::size_t> index_of;  // out[k] is the array's element index_of[k]
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::string one;
    if (!read_one(v[i], element(path, i), one)) continue;
    const auto seen = std::find(out.begin(), out.end(), one);
    if (seen != out.end()) {
      p.add(element(path, i), in_quotes(one) + " is already listed as " +
                                  element(path, index_of[seen - out.begin()]));
      continue;
    }
    out.push_back(std::move(one));
    index_of.push_back(i);
  }
}

// --- the keys, table by table ------------------------------------------
//
// Each object of the file (the top level, "convention", "limits", each of
// "actors") is read by a table: a row per key, in the order its problems
// are reported, with the reader that checks the key's value and stores it.
// The *_keys lists above are the same keys in the order the file documents
// them, as an unknown key's problem lists them.

/// One key of an object: its name, and how its value is checked and stored
/// in `To`. Each problem is named by `path`, the key's path.
template <class To>
struct key_rule {
  std::string_view key;
  std::function<void(const json& v, const std::string& path, To& out, problems& p)> read;
  /// A missing key is a problem ("missing required key").
  bool required = false;
};

template <class To>
using key_rules = std::vector<key_rule<To>>;

/// Reads the keys of `object` that `rules` know, in the rules' order.
template <class To>
void read_keys(const json& object, std::string_view path, const key_rules<To>& rules, To& out,
               problems& p) {
  for (const key_rule<To>& r : rules) {
    const auto it = object.find(std::string(r.key));
    if (it != object.end()) {
      r.read(*it, child(path, r.key), out, p);
    } else if (r.required) {
      p.add(path, "missing required key '" + std::string(r.key) + "'");
    }
  }
}

/// An object read by `rules`, its unknown keys (not in `known`) reported;
/// anything else is expected to be `what`.
template <class To>
void read_object(const json& v, std::string_view path, std::string_view what,
                 const std::vector<std::string_view>& known, const key_rules<To>& rules, To& out,
                 problems& p) {
  if (!v.is_object()) {
    p.expected(path, what, v);
    return;
  }
  check_keys(v, path, known, p);
  read_keys(v, path, rules, out, p);
}

// The readers the tables are made of, one per kind of value: each stores
// into one field of `To`.

template <class To, class T>
auto integer_key(T To::*field, std::uint64_t lo, std::uint64_t hi) {
  return [=](const json& v, const std::string& path, To& out, problems& p) {
    read_integer(v, path, lo, hi, out.*field, p);
  };
}

template <class To>
auto choice_key(std::string To::*field, const std::vector<std::string_view>& choices) {
  return [field, &choices](const json& v, const std::string& path, To& out, problems& p) {
    read_choice(v, path, choices, out.*field, p);
  };
}

template <class To>
auto nonempty_string_key(std::string To::*field) {
  return [=](const json& v, const std::string& path, To& out, problems& p) {
    read_nonempty_string(v, path, out.*field, p);
  };
}

template <class To>
auto optional_path_key(std::string To::*field) {
  return [=](const json& v, const std::string& path, To& out, problems& p) {
    read_optional_path(v, path, out.*field, p);
  };
}

/// "host:port" with a port of at least `min_port`, or null for none.
template <class To>
auto host_port_or_null_key(std::string To::*field, unsigned min_port) {
  return [=](const json& v, const std::string& path, To& out, problems& p) {
    if (v.is_null()) {
      (out.*field).clear();
    } else {
      read_host_port(v, path, min_port, out.*field, p);
    }
  };
}

const key_rules<actor_spec> actor_rules = {
    {"type", nonempty_string_key(&actor_spec::type), /*required=*/true},
    {"name", nonempty_string_key(&actor_spec::name)},
    {"shard",
     [](const json& v, const std::string& path, actor_spec& a, problems& p) {
       unsigned shard = 0;
       if (read_integer(v, path, 0, max_shards - 1, shard, p)) a.shard = shard;
     }},
    {"args", [](const json& v, const std::string&, actor_spec& a, problems&) { a.args = v; }},
};

void read_actors(const json& v, std::string_view path, std::vector<actor_spec>& out, problems& p) {
  if (!v.is_array()) {
    p.expected(path, "an array", v);
    return;
  }
  out.assign(v.size(), actor_spec{});
  for (std::size_t i = 0; i < v.size(); ++i) {
    read_object(v[i], element(path, i), "an object", actor_keys, actor_rules, out[i], p);
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i].name.empty()) continue;
    for (std::size_t j = 0; j < i; ++j) {
      if (out[j].name == out[i].name) {
        p.add(child(element(path, i), "name"),
              in_quotes(out[i].name) + " is already the name of " + element(path, j));
        break;
      }
    }
  }
}

const key_rules<serve_limits> limit_rules = {
    {"max_frame", integer_key(&serve_limits::max_frame, min_max_frame, max_max_frame)},
    {"mailbox_limit",
     integer_key(&serve_limits::mailbox_limit, 0, std::numeric_limits<std::uint32_t>::max())},
};

const key_rules<convention_config> convention_rules = {
    {"name",
     [](const json& v, const std::string& path, convention_config& out, problems& p) {
       if (!v.is_string() || v.get_ref<const std::string&>().empty() ||
           v.get_ref<const std::string&>().size() > max_convention_bytes) {
         p.expected(path, "a string of 1 to " + std::to_string(max_convention_bytes) + " bytes", v);
       } else {
         out.name = v.get<std::string>();
       }
     }},
    {"leader", host_port_or_null_key(&convention_config::leader, 1)},
    {"advertise", host_port_or_null_key(&convention_config::advertise, 1)},
    {"capabilities",
     [](const json& v, const std::string& path, convention_config& out, problems& p) {
       if (!v.is_object()) {
         p.expected(path, "an object", v);
       } else {
         out.capabilities = v;
       }
     }},
    {"membership",
     [](const json& v, const std::string& path, convention_config& out, problems& p) {
       if (v.is_null()) {
         out.membership.clear();
       } else if (!v.is_string() || !parse_membership_url(v.get<std::string>())) {
         p.expected(path, "\"etcd://host:port[,host:port...]\"", v);
       } else {
         out.membership = v.get<std::string>();
       }
     }},
    {"forward_logs",
     [](const json& v, const std::string& path, convention_config& out, problems& p) {
       if (!v.is_boolean()) {
         p.expected(path, "true or false", v);
       } else {
         out.forward_logs = v.get<bool>();
       }
     }},
    {"module_cache", optional_path_key(&convention_config::module_cache)},
};

/// The top level, in the order its keys are read.
const key_rules<serve_config> top_rules = {
    {"shards", integer_key(&serve_config::shards, 0, max_shards)},
    {"io", choice_key(&serve_config::io, io_choices)},
    {"workers", integer_key(&serve_config::workers, 0, max_workers)},
    {"engine_id", integer_key(&serve_config::engine_id, 1, max_engine_id)},
    {"listen", host_port_or_null_key(&serve_config::listen, 0)},
    {"peers",
     [](const json& v, const std::string& path, serve_config& c, problems& p) {
       read_unique_list(v, path, c.peers, p,
                        [&p](const json& e, const std::string& at, std::string& out) {
                          return read_host_port(e, at, 1, out, p);
                        });
     }},
    {"secret_file", optional_path_key(&serve_config::secret_file)},
    {"convention",
     [](const json& v, const std::string& path, serve_config& c, problems& p) {
       read_object(v, path, "an object such as {\"name\": \"troupe\", \"leader\": \"host:port\"}",
                   convention_keys, convention_rules, c.convention, p);
     }},
    {"heartbeat_ms", integer_key(&serve_config::heartbeat_ms, min_heartbeat_ms, max_heartbeat_ms)},
    {"peer_timeout_ms",
     integer_key(&serve_config::peer_timeout_ms, min_peer_timeout_ms, max_peer_timeout_ms)},
    {"log_level", choice_key(&serve_config::log_level, log_levels)},
    {"admin", host_port_or_null_key(&serve_config::admin, 0)},
    {"admin_token_file", optional_path_key(&serve_config::admin_token_file)},
    {"modules",
     [](const json& v, const std::string& path, serve_config& c, problems& p) {
       read_unique_list(v, path, c.modules, p,
                        [&p](const json& e, const std::string& at, std::string& out) {
                          return read_nonempty_string(e, at, out, p);
                        });
     }},
    {"actors", [](const json& v, const std::string& path, serve_config& c,
                  problems& p) { read_actors(v, path, c.actors, p); }},
    {"limits",
     [](const json& v, const std::string& path, serve_config& c, problems& p) {
       read_object(v, path, "an object", limit_keys, limit_rules, c.limits, p);
     }},
};

/// Rules between keys, checked once every key is valid on its own.
void check_across(const serve_config& c, problems& p) {
  if (c.peer_timeout_ms <= c.heartbeat_ms) {
    p.expected("peer_timeout_ms", "more than heartbeat_ms (" + std::to_string(c.heartbeat_ms) + ")",
               json(c.peer_timeout_ms));
  }
  if (c.shards > 0) {
    for (std::size_t i = 0; i < c.actors.size(); ++i) {
      const auto& s = c.actors[i].shard;
      if (s && *s >= c.shards) {
        p.expected(child(element("actors", i), "shard"),
                   "a shard below shards (" + std::to_string(c.shards) + ")", json(*s));
      }
    }
  }
  if (!c.admin.empty() && !c.listen.empty()) {
    const auto admin = split_host_port(c.admin);
    const auto listen = split_host_port(c.listen);
    const auto any = [](const std::string& h) { return h == "0.0.0.0" || h == "[::]"; };
    if (admin && listen && admin->port != 0 && admin->port == listen->port &&
        (admin->host == listen->host || any(admin->host) || any(listen->host))) {
      p.add("admin",
            in_quotes(c.admin) + " takes the port of listen (" + in_quotes(c.listen) + ")");
    }
  }
  if (!c.convention.leader.empty() && !c.convention.membership.empty()) {
    p.add("convention.membership",
          "a convention has a leader or keeps its membership in etcd, "
          "not both");
  }
  if (!c.convention.leader.empty() || !c.convention.membership.empty()) {
    if (c.listen.empty()) {
      p.add("convention.leader", "a member of a convention listens for its peers: set listen");
    } else if (c.convention.advertise.empty()) {
      const auto listen = split_host_port(c.listen);
      if (listen && (listen->host == "0.0.0.0" || listen->host == "[::]" || listen->host == "::")) {
        p.add("convention.advertise",
              "needed when listen is " + in_quotes(c.listen) +
                  ": the address the other members dial to reach this engine");
      }
    }
  }
}

/// Where a key was given twice, as "path: duplicate key 'k'". nlohmann keeps
/// the last value silently; a file that says two things is a problem.
class duplicate_finder {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: frames_.push_back({true}); break;
      case json::parse_event_t::array_start: frames_.push_back({false}); break;
      case json::parse_event_t::key: {
        auto& top = frames_.back();
        top.key = parsed.get<std::string>();
        if (!top.keys.insert(top.key).second) p_->add(path(), "duplicate key '" + top.key + "'");
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        next_element();
        break;
      case json::parse_event_t::value: next_element(); break;
    }
    return true;
  }
  explicit duplicate_finder(problems& p) : p_(&p) {}

 private:
  struct frame {
    bool object;
    std::string key{};
    std::size_t index = 0;
    std::set<std::string> keys{};
  };
  void next_element() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
  }
  /// The path of the innermost object.
  std::string path() const {
    std::string out;
    for (std::size_t i = 0; i + 1 < frames_.size(); ++i) {
      out = frames_[i].object ? child(out, frames_[i].key) : element(out, frames_[i].index);
    }
    return out;
  }
  std::vector<frame> frames_;
  problems* p_;
};

/// "at byte 17, line 3, column 6: syntax error ..." from nlohmann's message.
std::string describe_parse_error(const json::parse_error& e) {
  std::string text = e.what();
  if (const auto close = text.find("] "); close != std::string::npos) text.erase(0, close + 2);
  const std::string_view lead = "parse error at ";
  std::string out = "invalid JSON at byte " + std::to_string(e.byte);
  if (text.compare(0, lead.size(), lead) == 0) {
    out += ", " + text.substr(lead.size());
  } else {
    out += ": " + text;
  }
  return out;
}

bool read_file(const std::string& path, std::string& bytes, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = path + ": cannot be read: " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    error = path + ": cannot be read: it is a directory";
    return false;
  }
  bytes.clear();
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      error = path + ": cannot be read: " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    bytes.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return true;
}

void resolve(std::string& file, const std::filesystem::path& dir) {
  if (file.empty() || dir.empty()) return;
  const std::filesystem::path p(file);
  if (p.is_relative()) file = (dir / p).lexically_normal().string();
}

/// The configuration `doc` describes, or nullopt with what is wrong in `p`.
std::optional<serve_config> parse_into(const json& doc, problems& p) {
  if (!doc.is_object()) {
    p.add("", "expected a JSON object at the top level, got " + shown(doc));
    return std::nullopt;
  }
  const std::size_t before = p.size();
  check_keys(doc, "", top_keys, p);
  serve_config c;
  read_keys(doc, "", top_rules, c, p);
  if (p.size() == before) check_across(c, p);
  if (p.size() != before) return std::nullopt;
  return c;
}

}  // namespace

std::optional<serve_config> parse_config(const nlohmann::json& doc, std::string& error) {
  problems p;
  auto c = parse_into(doc, p);
  error = p.text();
  return c;
}

std::optional<serve_config> load_config_file(const std::string& path, std::string& error) {
  error.clear();
  std::string text;
  if (!read_file(path, text, error)) return std::nullopt;
  problems p;
  json doc;
  try {
    doc = json::parse(text, duplicate_finder(p), /*allow_exceptions=*/true,
                      /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    error = path + ": " + describe_parse_error(e);
    return std::nullopt;
  }
  auto c = parse_into(doc, p);
  if (!p.empty()) {
    error = p.text(path + ": ");
    return std::nullopt;
  }
  const auto dir = std::filesystem::path(path).parent_path();
  resolve(c->secret_file, dir);
  resolve(c->admin_token_file, dir);
  resolve(c->convention.module_cache, dir);
  for (auto& m : c->modules) resolve(m, dir);
  return c;
}

std::string validate_config(const serve_config& config) {
  std::string error;
  parse_config(nlohmann::json(to_json(config)), error);
  return error;
}

void apply_overrides(serve_config& config, const serve_overrides& flags) {
  if (flags.shards) config.shards = *flags.shards;
  if (flags.workers) config.workers = *flags.workers;
  if (flags.io) config.io = *flags.io;
  if (flags.engine_id) config.engine_id = *flags.engine_id;
  if (flags.listen) config.listen = *flags.listen;
  if (flags.peers) config.peers = *flags.peers;
  if (flags.secret_file) config.secret_file = *flags.secret_file;
  if (flags.convention) config.convention.leader = *flags.convention;
  if (flags.convention_name) config.convention.name = *flags.convention_name;
  if (flags.capabilities) config.convention.capabilities = *flags.capabilities;
  if (flags.advertise) config.convention.advertise = *flags.advertise;
  if (flags.forward_logs) config.convention.forward_logs = *flags.forward_logs;
  if (flags.membership) config.convention.membership = *flags.membership;
  if (flags.heartbeat_ms) config.heartbeat_ms = *flags.heartbeat_ms;
  if (flags.peer_timeout_ms) config.peer_timeout_ms = *flags.peer_timeout_ms;
  if (flags.log_level) config.log_level = *flags.log_level;
  if (flags.admin) config.admin = *flags.admin;
  if (flags.admin_token_file) config.admin_token_file = *flags.admin_token_file;
  if (flags.modules) config.modules = *flags.modules;
  if (flags.max_frame) config.limits.max_frame = *flags.max_frame;
  if (flags.mailbox_limit) config.limits.mailbox_limit = *flags.mailbox_limit;
}

nlohmann::ordered_json to_json(const serve_config& c) {
  using ojson = nlohmann::ordered_json;
  const auto or_null = [](const std::string& s) { return s.empty() ? ojson() : ojson(s); };
  ojson actors = ojson::array();
  for (const auto& a : c.actors) {
    ojson one = {{"type", a.type}};
    if (!a.name.empty()) one["name"] = a.name;
    if (a.shard) one["shard"] = *a.shard;
    if (!a.args.is_null()) one["args"] = ojson(a.args);
    actors.push_back(std::move(one));
  }
  ojson out;
  out["shards"] = c.shards;
  out["io"] = c.io;
  out["engine_id"] = c.engine_id;
  out["workers"] = c.workers;
  out["listen"] = or_null(c.listen);
  out["peers"] = c.peers;
  out["secret_file"] = or_null(c.secret_file);
  out["convention"] = {{"name", c.convention.name},
                       {"leader", or_null(c.convention.leader)},
                       {"advertise", or_null(c.convention.advertise)},
                       {"capabilities", ojson(c.convention.capabilities)},
                       {"module_cache", or_null(c.convention.module_cache)},
                       {"forward_logs", c.convention.forward_logs},
                       {"membership", or_null(c.convention.membership)}};
  out["heartbeat_ms"] = c.heartbeat_ms;
  out["peer_timeout_ms"] = c.peer_timeout_ms;
  out["log_level"] = c.log_level;
  out["admin"] = or_null(c.admin);
  out["admin_token_file"] = or_null(c.admin_token_file);
  out["modules"] = c.modules;
  out["actors"] = std::move(actors);
  out["limits"] = {{"max_frame", c.limits.max_frame}, {"mailbox_limit", c.limits.mailbox_limit}};
  return out;
}

engine_options to_engine_options(const serve_config& c) {
  engine_options o;
  o.core.shards = c.shards;
  o.core.io = io::parse_backend_choice(c.io).value_or(io::backend_choice::automatic);
  o.core.engine_id = c.engine_id;
  const bool in_convention = !c.convention.leader.empty() || !c.convention.membership.empty();
  if (!c.listen.empty() || !c.peers.empty() || in_convention) {
    link_options& l = o.links.emplace();
    l.listen = c.listen;
    l.peers = c.peers;
    l.convention = c.convention.name;
    l.heartbeat = std::chrono::milliseconds(c.heartbeat_ms);
    l.peer_timeout = std::chrono::milliseconds(c.peer_timeout_ms);
    l.max_frame = c.limits.max_frame;
  }
  if (in_convention) {
    troupe::convention_options& v = o.convention.emplace();
    v.leader = c.convention.leader;
    v.membership = c.convention.membership;
    v.advertise = c.convention.advertise;
    v.capabilities = c.convention.capabilities;
    v.module_cache = c.convention.module_cache;
    v.forward_logs = c.convention.forward_logs;
  }
  return o;
}

std::vector<extension_ptr> engine_options::layers() const {
  std::vector<extension_ptr> list;
  if (links) list.push_back(with_links(*links));
  if (convention) list.push_back(with_convention(*convention));
  return list;
}

std::unique_ptr<system> engine_options::start() const {
  return std::make_unique<system>(core, layers());
}

}  // namespace troupe
