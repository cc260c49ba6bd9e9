#include "commands.hpp"

#include <array>
#include <charconv>
#include <climits>

#include "resp.hpp"

namespace troupe::kv {

namespace {

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view lowercase) noexcept {
  return equals_lowercase(a, lowercase);
}

constexpr std::array commands{
    command_spec{"get", 2, route::single, op::get},
    command_spec{"set", -3, route::single, op::set},
    command_spec{"ping", -1, route::local, op::get, local_command::ping},
    command_spec{"echo", 2, route::local, op::get, local_command::echo},
    command_spec{"del", -2, route::keys, op::del},
    command_spec{"exists", -2, route::keys, op::exists},
    command_spec{"incr", 2, route::single, op::incr},
    command_spec{"decr", 2, route::single, op::decr},
    command_spec{"incrby", 3, route::single, op::incrby},
    command_spec{"decrby", 3, route::single, op::decrby},
    command_spec{"mget", -2, route::keys, op::get},
    command_spec{"mset", -3, route::pairs, op::set_pair},
    command_spec{"expire", -3, route::single, op::expire},
    command_spec{"pexpire", -3, route::single, op::pexpire},
    command_spec{"ttl", 2, route::single, op::ttl},
    command_spec{"pttl", 2, route::single, op::pttl},
    command_spec{"dbsize", 1, route::all, op::dbsize},
    command_spec{"flushall", -1, route::all, op::flush},
    command_spec{"flushdb", -1, route::all, op::flush},
    command_spec{"command", -1, route::local, op::get, local_command::command},
    command_spec{"config", -2, route::local, op::get, local_command::config},
    command_spec{"select", 2, route::local, op::get, local_command::select},
    command_spec{"quit", -1, route::local, op::get, local_command::quit},
};

// --- the operations a store runs -------------------------------------------

void append_invalid_expire(std::string& out, std::string_view command) {
  out += "-ERR invalid expire time in '";
  out += command;
  out += "' command\r\n";
}

void run_get(table& t, std::string_view key, std::int64_t now, std::string& out) {
  if (entry* e = t.find(key, now)) {
    append_bulk(out, e->value);
  } else {
    append_null(out);
  }
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]
void run_set(table& t, const std::vector<std::string_view>& a, std::int64_t now, std::string& out) {
  enum : unsigned { nx = 1, xx = 2, get = 4, keepttl = 8, ex = 16, px = 32, exat = 64, pxat = 128 };
  constexpr unsigned any_expire = ex | px | exat | pxat;
  unsigned flags = 0;
  std::string_view expire_arg;
  for (std::size_t j = 2; j < a.size(); ++j) {
    const std::string_view opt = a[j];
    const bool has_next = j + 1 < a.size();
    if (iequals(opt, "nx") && !(flags & xx)) {
      flags |= nx;
    } else if (iequals(opt, "xx") && !(flags & nx)) {
      flags |= xx;
    } else if (iequals(opt, "get")) {
      flags |= get;
    } else if (iequals(opt, "keepttl") && !(flags & any_expire)) {
      flags |= keepttl;
    } else if (has_next && !(flags & (keepttl | any_expire)) &&
               (iequals(opt, "ex") || iequals(opt, "px") || iequals(opt, "exat") ||
                iequals(opt, "pxat"))) {
      flags |= iequals(opt, "ex")     ? ex
               : iequals(opt, "px")   ? px
               : iequals(opt, "exat") ? exat
                                      : pxat;
      expire_arg = a[++j];
    } else {
      out += reply_syntax_error;
      return;
    }
  }
  if (flags == 0) {  // plain SET key value: one lookup
    bool created = false;
    entry& e = t.upsert(a[0], now, created);
    e.value.assign(a[1]);
    t.set_expiry(e, 0);
    out += reply_ok;
    return;
  }
  std::int64_t expires_at = 0;
  if (flags & any_expire) {
    std::int64_t ms = 0;
    if (!parse_int64(expire_arg, ms)) {
      out += reply_not_integer;
      return;
    }
    const bool seconds = flags & (ex | exat);
    if (ms <= 0 || (seconds && ms > LLONG_MAX / 1000)) {
      append_invalid_expire(out, "set");
      return;
    }
    if (seconds) ms *= 1000;
    if ((flags & (ex | px)) && __builtin_add_overflow(ms, now, &ms)) {
      append_invalid_expire(out, "set");
      return;
    }
    expires_at = ms;
  }
  entry* old = t.find(a[0], now);
  if (flags & get) {
    if (old) {
      append_bulk(out, old->value);
    } else {
      append_null(out);
    }
  }
  if (((flags & nx) && old) || ((flags & xx) && !old)) {
    if (!(flags & get)) append_null(out);
    return;
  }
  bool created = false;
  entry& e = old ? *old : t.upsert(a[0], now, created);
  e.value.assign(a[1]);
  if (!(flags & keepttl)) t.set_expiry(e, expires_at);
  if (!(flags & get)) out += reply_ok;
}

void run_incr(table& t, std::string_view key, std::int64_t by, std::int64_t now, std::string& out) {
  bool created = false;
  entry* e = t.find(key, now);
  std::int64_t value = 0;
  if (e && !parse_int64(e->value, value)) {
    out += reply_not_integer;
    return;
  }
  std::int64_t result;
  if (__builtin_add_overflow(value, by, &result)) {
    out += "-ERR increment or decrement would overflow\r\n";
    return;
  }
  if (!e) e = &t.upsert(key, now, created);
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, result);
  (void)ec;
  e->value.assign(buf, end);  // the expiry time, if any, stays
  append_int(out, result);
}

void run_incr_by(table& t, const std::vector<std::string_view>& a, bool negate, std::int64_t now,
                 std::string& out) {
  std::int64_t by = 0;
  if (!parse_int64(a[1], by)) {
    out += reply_not_integer;
    return;
  }
  if (negate) {
    if (by == LLONG_MIN) {
      out += "-ERR decrement would overflow\r\n";
      return;
    }
    by = -by;
  }
  run_incr(t, a[0], by, now, out);
}

/// EXPIRE key amount [NX | XX | GT | LT], and PEXPIRE.
void run_expire(table& t, const std::vector<std::string_view>& a, bool seconds, std::int64_t now,
                std::string& out) {
  enum : unsigned { nx = 1, xx = 2, gt = 4, lt = 8 };
  unsigned flags = 0;
  for (std::size_t j = 2; j < a.size(); ++j) {
    if (iequals(a[j], "nx")) {
      flags |= nx;
    } else if (iequals(a[j], "xx")) {
      flags |= xx;
    } else if (iequals(a[j], "gt")) {
      flags |= gt;
    } else if (iequals(a[j], "lt")) {
      flags |= lt;
    } else {
      out += "-ERR Unsupported option ";
      out += a[j];
      out += "\r\n";
      return;
    }
  }
  if ((flags & nx) && (flags & (xx | gt | lt))) {
    out += "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n";
    return;
  }
  if ((flags & gt) && (flags & lt)) {
    out += "-ERR GT and LT options at the same time are not compatible\r\n";
    return;
  }
  std::int64_t when = 0;
  if (!parse_int64(a[1], when)) {
    out += reply_not_integer;
    return;
  }
  const std::string_view name = seconds ? "expire" : "pexpire";
  if (seconds) {
    if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) {
      append_invalid_expire(out, name);
      return;
    }
    when *= 1000;
  }
  if (when > LLONG_MAX - now) {
    append_invalid_expire(out, name);
    return;
  }
  when += now;
  entry* e = t.find(a[0], now);
  if (!e) {
    append_int(out, 0);
    return;
  }
  const std::int64_t current = e->expires_at;  // 0: none, an infinite time to live
  if (((flags & nx) && current != 0) || ((flags & xx) && current == 0) ||
      ((flags & gt) && (current == 0 || when <= current)) ||
      ((flags & lt) && current != 0 && when >= current)) {
    append_int(out, 0);
    return;
  }
  if (when <= now) {
    t.erase(a[0], now);
  } else {
    t.set_expiry(*e, when);
  }
  append_int(out, 1);
}

void run_ttl(table& t, std::string_view key, bool seconds, std::int64_t now, std::string& out) {
  entry* e = t.find(key, now);
  if (!e) {
    append_int(out, -2);
  } else if (e->expires_at == 0) {
    append_int(out, -1);
  } else {
    std::int64_t left = e->expires_at - now;
    if (left < 0) left = 0;
    append_int(out, seconds ? (left + 500) / 1000 : left);
  }
}

void run_one(table& t, op o, const std::vector<std::string_view>& a, std::int64_t now,
             std::string& out) {
  switch (o) {
    case op::get: run_get(t, a[0], now, out); break;
    case op::set: run_set(t, a, now, out); break;
    case op::del: append_int(out, t.erase(a[0], now) ? 1 : 0); break;
    case op::exists: append_int(out, t.find(a[0], now) ? 1 : 0); break;
    case op::incr: run_incr(t, a[0], 1, now, out); break;
    case op::decr: run_incr(t, a[0], -1, now, out); break;
    case op::incrby: run_incr_by(t, a, false, now, out); break;
    case op::decrby: run_incr_by(t, a, true, now, out); break;
    case op::expire: run_expire(t, a, true, now, out); break;
    case op::pexpire: run_expire(t, a, false, now, out); break;
    case op::ttl: run_ttl(t, a[0], true, now, out); break;
    case op::pttl: run_ttl(t, a[0], false, now, out); break;
    case op::set_pair: {
      bool created = false;
      entry& e = t.upsert(a[0], now, created);
      e.value.assign(a[1]);
      t.set_expiry(e, 0);
      out += reply_ok;
      break;
    }
    case op::dbsize: append_int(out, static_cast<std::int64_t>(t.size())); break;
    case op::flush:
      t.clear();
      out += reply_ok;
      break;
  }
}

}  // namespace

bool equals_lowercase(std::string_view a, std::string_view lowercase) noexcept {
  if (a.size() != lowercase.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lowercase[i]) return false;
  }
  return true;
}

const command_spec* find_command(std::string_view name) noexcept {
  for (const command_spec& c : commands) {
    if (iequals(name, c.name)) return &c;
  }
  return nullptr;
}

void append_unknown_command(std::string& out, std::string_view name,
                            const std::vector<std::string_view>& args) {
  // As Redis: the name and the arguments cut to about 128 bytes each, and
  // line breaks made spaces so that the error stays one line.
  std::string text = "ERR unknown command '";
  text += name.substr(0, 128);
  text += "', with args beginning with: ";
  std::string listed;
  for (std::size_t i = 1; i < args.size() && listed.size() < 128; ++i) {
    listed += '\'';
    listed += args[i].substr(0, 128 - listed.size());
    listed += "' ";
  }
  text += listed;
  for (char& c : text) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  append_error(out, text);
}

void run_batch(table& t, shard_batch& b, std::vector<std::string_view>& args, std::int64_t now) {
  b.replies.clear();
  b.ends.clear();
  batch_reader in(b.ops);
  op o;
  while (in.next(o, args)) {
    run_one(t, o, args, now, b.replies);
    b.ends.push_back(static_cast<std::uint32_t>(b.replies.size()));
  }
}

}  // namespace troupe::kv
