#pragma once
// Which kernel interface a reactor uses: the choice alone, for options
// structs that name it without pulling in the reactor (troupe/io/reactor.hpp).

#include <optional>
#include <string_view>

namespace troupe::io {

/// What the caller asks for: io_uring if possible else epoll (auto), or one
/// of them strictly.
enum class backend_choice { automatic, uring, epoll };

/// Parses "auto", "uring" or "epoll". Returns nullopt for anything else.
std::optional<backend_choice> parse_backend_choice(std::string_view text);

}  // namespace troupe::io
