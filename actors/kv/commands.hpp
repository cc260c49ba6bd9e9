#pragma once
// The commands: which ones exist, how a connection routes each, and how a
// store runs the operations that reach it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "batch.hpp"
#include "table.hpp"

namespace troupe::kv {

/// How a connection handles a command.
enum class route : std::uint8_t {
  local,   ///< answered by the connection itself (PING, ECHO, CONFIG, ...)
  single,  ///< one key: the store that owns it runs the whole command
  keys,    ///< DEL, EXISTS, MGET: one operation per key, at its store; replies combined
  pairs,   ///< MSET: one operation per key/value pair
  all,     ///< DBSIZE, FLUSHALL: one operation at every store
};

enum class local_command : std::uint8_t { none, ping, echo, command, config, select, quit };

struct command_spec {
  std::string_view name;  ///< lowercase, as Redis names it in errors
  int arity;              ///< Redis's: n exactly, or -n for at least n (the name counts)
  route how;
  op operation;  ///< for routes other than local
  local_command local = local_command::none;
};

/// True when `a` equals `lowercase` ignoring the case of ASCII letters.
bool equals_lowercase(std::string_view a, std::string_view lowercase) noexcept;

/// The command named `name` (any case), or null when there is none.
const command_spec* find_command(std::string_view name) noexcept;

/// True when `argc` arguments (the name counts) suit `spec`'s arity.
inline bool arity_ok(const command_spec& spec, std::size_t argc) noexcept {
  const auto n = static_cast<std::int64_t>(argc);
  return spec.arity >= 0 ? n == spec.arity : n >= -spec.arity;
}

/// Redis's reply to a command it does not know.
void append_unknown_command(std::string& out, std::string_view name,
                            const std::vector<std::string_view>& args);

/// Runs the operations of `b` on `t` in order, appending one reply each
/// to `b.replies` and its end to `b.ends`. `args` is scratch space.
/// On the table's shard only.
void run_batch(table& t, shard_batch& b, std::vector<std::string_view>& args, std::int64_t now);

}  // namespace troupe::kv
