#include "connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <span>

#include <spdlog/spdlog.h>

#include "store.hpp"

namespace troupe::kv {

namespace {

constexpr std::size_t initial_input = 16 * 1024;
/// An input buffer grown past this for one big request shrinks back after.
constexpr std::size_t keep_input = 1024 * 1024;
constexpr auto ask_timeout = std::chrono::seconds(30);

/// What CONFIG GET answers: enough for clients that look before they start
/// (redis-benchmark reads "save" and "appendonly").
struct config_value {
  std::string_view name, value;
};
constexpr config_value config_values[] = {
    {"save", ""}, {"appendonly", "no"}, {"databases", "1"}, {"maxmemory", "0"}};

std::span<const std::byte> bytes_of(std::string_view s) noexcept {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

}  // namespace

connection::connection(net::socket s, std::shared_ptr<const service> svc)
    : sock_(std::move(s)), service_(std::move(svc)), batches_(service_->shards()),
      next_reply_(service_->shards()) {}

void connection::on_start() { tell(self(), serve{}); }

task<void> connection::on(const serve&) {
  net::adapt(sock_);
  int one = 1;  // replies go out at once, not after the peer's delayed ACK
  ::setsockopt(sock_.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  in_.resize(initial_input);
  for (;;) {
    if (in_len_ == in_.size()) in_.resize(in_.size() * 2);  // one request larger than the buffer
    auto n = co_await net::recv(
        sock_, std::span<std::byte>(reinterpret_cast<std::byte*>(in_.data()) + in_len_,
                                    in_.size() - in_len_));
    if (!n || *n == 0) break;  // closed by the client, or an error: either way it is over
    in_len_ += *n;
    take_commands();
    if (!plan_.empty()) {
      // With asks to several stores, all are in flight before this shard
      // runs its own batch and waits; with one, the ask leaves when awaited.
      std::uint32_t remote = 0;
      int last_remote = -1;
      const std::size_t here = shard_index();
      store* local = service_->local_store(here);
      for (std::size_t s = 0; s < batches_.size(); ++s) {
        if (!batches_[s].empty() && (s != here || !local)) {
          ++remote;
          last_remote = static_cast<int>(s);
        }
      }
      if (remote == 1) {
        const auto s = static_cast<std::uint16_t>(last_remote);
        shard_batch b = std::move(batches_[s]);
        auto asked = ask<shard_batch>(service_->store_at(s), std::move(b), ask_timeout);
        if (local && !batches_[here].empty()) local->run(batches_[here]);
        auto r = co_await asked;
        settle(s, r);
      } else if (remote > 1) {
        ask_group g;
        g.waiting = remote;
        for (std::size_t s = 0; s < batches_.size(); ++s) {
          if (!batches_[s].empty() && (s != here || !local)) {
            ask_store(static_cast<std::uint16_t>(s), &g);
          }
        }
        if (local && !batches_[here].empty()) local->run(batches_[here]);
        co_await group_awaiter{g};
      } else if (local && !batches_[here].empty()) {
        local->run(batches_[here]);
      }
      if (failed_) break;
      std::string_view bytes = assemble();
      bool sent = true;
      while (!bytes.empty()) {
        auto w = co_await net::send_some(sock_, bytes_of(bytes));
        if (!w) {
          sent = false;
          break;
        }
        bytes.remove_prefix(*w);
      }
      reset_round();
      if (!sent) break;
    }
    if (close_after_) break;
    if (in_.size() > keep_input && in_len_ <= initial_input) {
      in_.resize(initial_input);
      in_.shrink_to_fit();
    }
  }
  sock_.close();
  stop();
}

connection::detached_ask connection::ask_store(std::uint16_t shard, ask_group* g) {
  shard_batch b = std::move(batches_[shard]);
  auto asked = ask<shard_batch>(service_->store_at(shard), std::move(b), ask_timeout);
  auto r = co_await asked;
  settle(shard, r);
  if (--g->waiting == 0) g->waiter.resume();
}

void connection::settle(std::uint16_t shard, result<shard_batch>& r) {
  if (r) {
    batches_[shard] = std::move(r.value());
  } else {
    // A store that does not answer leaves replies missing: the client
    // cannot be answered in order any more, so the connection ends.
    spdlog::warn("kv: the store of shard {} did not answer: {}", shard, r.err().describe());
    failed_ = true;
  }
}

void connection::take_commands() {
  const std::string_view in(in_.data(), in_len_);
  std::size_t pos = 0;
  while (!close_after_) {
    const parse_result r = parser_.next(in.substr(pos), args_);
    if (r.status == parse_status::incomplete) break;
    if (r.status == parse_status::error) {
      begin_local();
      local_ += "-ERR Protocol error: ";
      local_ += r.error;
      local_ += "\r\n";
      end_local();
      close_after_ = true;
      break;
    }
    pos += r.consumed;
    if (r.status == parse_status::command) plan(args_);
  }
  // Every command taken has been copied into a batch or answered: the
  // bytes it came in can go.
  if (pos > 0) {
    std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
    in_len_ -= pos;
  }
}

void connection::begin_local() { local_begin_ = static_cast<std::uint32_t>(local_.size()); }

void connection::end_local() {
  plan_.push_back({step_kind::local, 0, local_begin_, static_cast<std::uint32_t>(local_.size())});
  only_shard_ = -2;
}

void connection::add_local_reply(std::string_view bytes) {
  begin_local();
  local_ += bytes;
  end_local();
}

void connection::plan(std::vector<std::string_view>& args) {
  const command_spec* spec = find_command(args[0]);
  if (!spec) {
    begin_local();
    append_unknown_command(local_, args[0], args);
    end_local();
    return;
  }
  if (!arity_ok(*spec, args.size()) || (spec->how == route::pairs && (args.size() - 1) % 2 != 0)) {
    begin_local();
    append_arity_error(local_, spec->name);
    end_local();
    return;
  }
  const std::span<const std::string_view> all(args);
  switch (spec->how) {
    case route::local: plan_local(*spec, args); return;
    case route::single: {
      const std::uint16_t s = service_->shard_of(args[1]);
      batches_[s].add(spec->operation, all.subspan(1));
      plan_.push_back({step_kind::one, s, 0, 0});
      if (only_shard_ == -1) {
        only_shard_ = s;
      } else if (only_shard_ != s) {
        only_shard_ = -2;
      }
      return;
    }
    case route::keys:
    case route::pairs: {
      const std::size_t per = spec->how == route::pairs ? 2 : 1;
      std::uint32_t count = 0;
      for (std::size_t i = 1; i < args.size(); i += per) {
        const std::uint16_t s = service_->shard_of(args[i]);
        batches_[s].add(spec->operation, all.subspan(i, per));
        key_shards_.push_back(s);
        ++count;
      }
      const step_kind kind = spec->how == route::pairs    ? step_kind::pairs
                             : spec->operation == op::get ? step_kind::mget
                                                          : step_kind::sum;
      plan_.push_back({kind, 0, count, 0});
      only_shard_ = -2;
      return;
    }
    case route::all: {
      if (spec->operation == op::flush && args.size() > 1 &&
          (args.size() > 2 ||
           !(equals_lowercase(args[1], "async") || equals_lowercase(args[1], "sync")))) {
        add_local_reply(reply_syntax_error);
        return;
      }
      for (std::size_t s = 0; s < batches_.size(); ++s) batches_[s].add(spec->operation, {});
      plan_.push_back(
          {spec->operation == op::dbsize ? step_kind::all_sum : step_kind::all_ok, 0, 0, 0});
      only_shard_ = -2;
      return;
    }
  }
}

void connection::plan_local(const command_spec& spec, std::vector<std::string_view>& args) {
  begin_local();
  switch (spec.local) {
    case local_command::ping:
      if (args.size() > 2) {
        append_arity_error(local_, spec.name);
      } else if (args.size() == 2) {
        append_bulk(local_, args[1]);
      } else {
        local_ += "+PONG\r\n";
      }
      break;
    case local_command::echo: append_bulk(local_, args[1]); break;
    case local_command::command: local_ += "*0\r\n"; break;
    case local_command::config:
      if (!equals_lowercase(args[1], "get")) {
        std::string text = "ERR unknown subcommand '";
        text += args[1].substr(0, 128);
        text += "'. Try CONFIG HELP.";
        append_error(local_, text);
      } else if (args.size() < 3) {
        append_arity_error(local_, "config|get");
      } else {
        std::size_t found = 0;
        std::string pairs;
        for (std::size_t i = 2; i < args.size(); ++i) {
          for (const config_value& c : config_values) {
            if (equals_lowercase(args[i], c.name)) {
              append_bulk(pairs, c.name);
              append_bulk(pairs, c.value);
              ++found;
            }
          }
        }
        append_array(local_, found * 2);
        local_ += pairs;
      }
      break;
    case local_command::select: {
      std::int64_t db = 0;
      if (!parse_int64(args[1], db)) {
        local_ += reply_not_integer;
      } else if (db != 0) {
        local_ += "-ERR DB index is out of range\r\n";
      } else {
        local_ += reply_ok;
      }
      break;
    }
    case local_command::quit:
      local_ += reply_ok;
      close_after_ = true;
      break;
    case local_command::none: break;
  }
  end_local();
}

std::string_view connection::assemble() {
  // Commonly every reply comes from one store, in order: they are the bytes to send.
  if (only_shard_ >= 0) return batches_[static_cast<std::size_t>(only_shard_)].replies;
  out_.clear();
  std::fill(next_reply_.begin(), next_reply_.end(), 0);
  std::size_t key = 0;
  auto next_of = [this](std::size_t s) { return batches_[s].reply(next_reply_[s]++); };
  for (const step& st : plan_) {
    switch (st.kind) {
      case step_kind::local: out_.append(local_, st.count, st.end - st.count); break;
      case step_kind::one: out_ += next_of(st.shard); break;
      case step_kind::mget:
        append_array(out_, st.count);
        for (std::uint32_t i = 0; i < st.count; ++i) out_ += next_of(key_shards_[key++]);
        break;
      case step_kind::sum: {
        std::int64_t total = 0;
        for (std::uint32_t i = 0; i < st.count; ++i) {
          total += read_int_reply(next_of(key_shards_[key++]));
        }
        append_int(out_, total);
        break;
      }
      case step_kind::pairs:
        for (std::uint32_t i = 0; i < st.count; ++i) next_of(key_shards_[key++]);
        out_ += reply_ok;
        break;
      case step_kind::all_sum: {
        std::int64_t total = 0;
        for (std::size_t s = 0; s < batches_.size(); ++s) total += read_int_reply(next_of(s));
        append_int(out_, total);
        break;
      }
      case step_kind::all_ok:
        for (std::size_t s = 0; s < batches_.size(); ++s) next_of(s);
        out_ += reply_ok;
        break;
    }
  }
  return out_;
}

void connection::reset_round() {
  plan_.clear();
  key_shards_.clear();
  local_.clear();
  for (shard_batch& b : batches_) b.clear();
  only_shard_ = -1;
}

}  // namespace troupe::kv
