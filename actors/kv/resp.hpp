#pragma once
// RESP2, the Redis protocol: an incremental request parser (multibulk
// arrays and inline text lines, as redis-server accepts them) and the
// writers of replies.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::kv {

/// The largest bulk argument accepted (Redis's proto-max-bulk-len).
inline constexpr std::int64_t max_bulk_bytes = 512ll * 1024 * 1024;
/// The longest inline request or count line without its end (Redis's
/// PROTO_INLINE_MAX_SIZE).
inline constexpr std::size_t max_inline_bytes = 64 * 1024;

/// What one call of resp_parser::next found.
enum class parse_status : std::uint8_t {
  command,     ///< a whole command: its arguments are in `args`
  empty,       ///< an empty line or an empty array, consumed: no command
  incomplete,  ///< more bytes are needed; nothing consumed
  error,       ///< a protocol error: reply it and close the connection
};

struct parse_result {
  parse_status status;
  std::size_t consumed = 0;     ///< bytes of the input this request took
  const char* error = nullptr;  ///< for status error: "invalid bulk length", ...
};

/// Splits a byte stream into commands. It keeps no bytes of its own: the
/// caller keeps the unconsumed tail of its buffer and calls again with more.
///
/// Threads: one connection's, so one shard's. The views put in `args` point
/// into the input, or into the parser's own storage for inline commands;
/// they stay valid until the next call or until the input moves.
class resp_parser {
 public:
  /// Parses the request at the start of `in`.
  parse_result next(std::string_view in, std::vector<std::string_view>& args);

 private:
  parse_result multibulk(std::string_view in, std::vector<std::string_view>& args);
  parse_result inline_command(std::string_view in, std::vector<std::string_view>& args);
  std::string inline_args_;  // decoded inline arguments
  std::string error_;        // the text of the last protocol error
};

/// Redis's string2ll: an optional '-', then digits, no leading zero (but
/// "0"), no sign '+', no spaces, within int64. False for anything else.
bool parse_int64(std::string_view s, std::int64_t& out) noexcept;

/// Splits an inline command line as Redis's sdssplitargs does: spaces
/// separate; "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes;
/// 'single quotes' take \'. False for unbalanced quotes. The decoded bytes
/// go to `storage` (cleared first), which the views in `args` point into.
bool split_inline(std::string_view line, std::string& storage, std::vector<std::string_view>& args);

// --- replies ---------------------------------------------------------------

void append_simple(std::string& out, std::string_view text);  // +text
void append_error(std::string& out, std::string_view text);   // -text
void append_int(std::string& out, std::int64_t n);            // :n
void append_bulk(std::string& out, std::string_view bytes);   // $len bytes
void append_null(std::string& out);                           // $-1
void append_array(std::string& out, std::size_t n);           // *n
/// Redis's reply for a wrong number of arguments to `command` (its
/// lowercase full name, e.g. "get" or "config|get").
void append_arity_error(std::string& out, std::string_view command);

inline constexpr std::string_view reply_ok = "+OK\r\n";
inline constexpr std::string_view reply_syntax_error = "-ERR syntax error\r\n";
inline constexpr std::string_view reply_not_integer =
    "-ERR value is not an integer or out of range\r\n";

/// Reads a RESP integer reply (":n\r\n") written by append_int.
std::int64_t read_int_reply(std::string_view reply) noexcept;

}  // namespace troupe::kv
