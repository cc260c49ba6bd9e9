#include "resp.hpp"

#include <charconv>
#include <climits>

namespace troupe::kv {

namespace {

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool parse_int64(std::string_view s, std::int64_t& out) noexcept {
  if (s.empty() || s.size() > 20) return false;
  std::size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative) i = 1;
  if (i == s.size()) return false;
  if (s[i] == '0') {  // "0" alone; "-0" and "007" are not integers to Redis
    if (s.size() != 1) return false;
    out = 0;
    return true;
  }
  std::uint64_t v = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c < '0' || c > '9') return false;
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (negative) {
    if (v > static_cast<std::uint64_t>(INT64_MAX) + 1) return false;
    out = static_cast<std::int64_t>(0 - v);
  } else {
    if (v > static_cast<std::uint64_t>(INT64_MAX)) return false;
    out = static_cast<std::int64_t>(v);
  }
  return true;
}

bool split_inline(std::string_view line, std::string& storage,
                  std::vector<std::string_view>& args) {
  storage.clear();
  storage.reserve(line.size());  // decoding never grows: the views stay put
  args.clear();
  const std::size_t n = line.size();
  auto at = [&](std::size_t i) { return i < n ? line[i] : '\0'; };
  std::size_t p = 0;
  for (;;) {
    while (p < n && is_space(line[p])) ++p;
    if (p >= n) return true;
    const std::size_t begin = storage.size();
    bool in_double = false, in_single = false, done = false;
    while (!done) {
      const char c = at(p);
      if (in_double) {
        if (c == '\\' && at(p + 1) == 'x' && hex_value(at(p + 2)) >= 0 &&
            hex_value(at(p + 3)) >= 0) {
          storage += static_cast<char>(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3)));
          p += 3;
        } else if (c == '\\' && at(p + 1) != '\0') {
          ++p;
          switch (line[p]) {
            case 'n': storage += '\n'; break;
            case 'r': storage += '\r'; break;
            case 't': storage += '\t'; break;
            case 'b': storage += '\b'; break;
            case 'a': storage += '\a'; break;
            default: storage += line[p]; break;
          }
        } else if (c == '"') {
          // A closing quote must be followed by a space or the end.
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;  // unterminated quotes
        } else {
          storage += c;
        }
      } else if (in_single) {
        if (c == '\\' && at(p + 1) == '\'') {
          ++p;
          storage += '\'';
        } else if (c == '\'') {
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          storage += c;
        }
      } else {
        switch (c) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0': done = true; break;
          case '"': in_double = true; break;
          case '\'': in_single = true; break;
          default: storage += c; break;
        }
      }
      if (p < n) ++p;
    }
    args.emplace_back(storage.data() + begin, storage.size() - begin);
  }
}

parse_result resp_parser::next(std::string_view in, std::vector<std::string_view>& args) {
  if (in.empty()) return {parse_status::incomplete};
  if (in[0] == '*') return multibulk(in, args);
  return inline_command(in, args);
}

parse_result resp_parser::inline_command(std::string_view in, std::vector<std::string_view>& args) {
  const std::size_t nl = in.find('\n');
  if (nl == std::string_view::npos) {
    if (in.size() > max_inline_bytes) return {parse_status::error, 0, "too big inline request"};
    return {parse_status::incomplete};
  }
  std::string_view line = in.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!split_inline(line, inline_args_, args)) {
    return {parse_status::error, 0, "unbalanced quotes in request"};
  }
  return {args.empty() ? parse_status::empty : parse_status::command, nl + 1};
}

parse_result resp_parser::multibulk(std::string_view in, std::vector<std::string_view>& args) {
  args.clear();
  std::size_t cr = in.find('\r', 1);
  if (cr == std::string_view::npos) {
    if (in.size() > max_inline_bytes) return {parse_status::error, 0, "too big mbulk count string"};
    return {parse_status::incomplete};
  }
  if (cr + 1 >= in.size()) return {parse_status::incomplete};  // the '\n' is still to come
  std::int64_t count = 0;
  if (!parse_int64(in.substr(1, cr - 1), count) || count > INT_MAX) {
    return {parse_status::error, 0, "invalid multibulk length"};
  }
  std::size_t pos = cr + 2;
  if (count <= 0) return {parse_status::empty, pos};
  args.reserve(static_cast<std::size_t>(count < 1024 ? count : 1024));
  for (std::int64_t i = 0; i < count; ++i) {
    if (pos >= in.size()) return {parse_status::incomplete};
    if (in[pos] != '$') {
      error_ = "expected '$', got '";
      error_ += in[pos];
      error_ += '\'';
      return {parse_status::error, 0, error_.c_str()};
    }
    cr = in.find('\r', pos + 1);
    if (cr == std::string_view::npos) {
      if (in.size() - pos > max_inline_bytes) {
        return {parse_status::error, 0, "too big bulk count string"};
      }
      return {parse_status::incomplete};
    }
    if (cr + 1 >= in.size()) return {parse_status::incomplete};
    std::int64_t len = 0;
    if (!parse_int64(in.substr(pos + 1, cr - pos - 1), len) || len < 0 || len > max_bulk_bytes) {
      return {parse_status::error, 0, "invalid bulk length"};
    }
    pos = cr + 2;
    const auto need = static_cast<std::size_t>(len) + 2;  // the bytes and their "\r\n"
    if (in.size() - pos < need) return {parse_status::incomplete};
    args.emplace_back(in.data() + pos, static_cast<std::size_t>(len));
    pos += need;  // like Redis, the two bytes after the argument are not looked at
  }
  return {parse_status::command, pos};
}

void append_simple(std::string& out, std::string_view text) {
  out += '+';
  out += text;
  out += "\r\n";
}

void append_error(std::string& out, std::string_view text) {
  out += '-';
  out += text;
  out += "\r\n";
}

namespace {
void append_prefixed(std::string& out, char prefix, std::int64_t n) {
  char buf[24];
  buf[0] = prefix;
  auto [end, ec] = std::to_chars(buf + 1, buf + sizeof buf, n);
  (void)ec;
  out.append(buf, end);
  out += "\r\n";
}
}  // namespace

void append_int(std::string& out, std::int64_t n) { append_prefixed(out, ':', n); }

void append_bulk(std::string& out, std::string_view bytes) {
  append_prefixed(out, '$', static_cast<std::int64_t>(bytes.size()));
  out += bytes;
  out += "\r\n";
}

void append_null(std::string& out) { out += "$-1\r\n"; }

void append_array(std::string& out, std::size_t n) {
  append_prefixed(out, '*', static_cast<std::int64_t>(n));
}

void append_arity_error(std::string& out, std::string_view command) {
  out += "-ERR wrong number of arguments for '";
  out += command;
  out += "' command\r\n";
}

std::int64_t read_int_reply(std::string_view reply) noexcept {
  std::int64_t n = 0;
  if (reply.size() < 3 || reply[0] != ':') return 0;
  std::from_chars(reply.data() + 1, reply.data() + reply.size() - 2, n);
  return n;
}

}  // namespace troupe::kv
