// The placer (see placer.hpp): one placement, member after member, with
// the type's module sent to a member that lacks it.

#include "cluster/placer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "core/shard.hpp"
#include "core/system_impl.hpp"
#include "troupe/blocking.hpp"

namespace troupe::internal {

namespace {

/// How often a placer looks whether the link it waits for is up.
constexpr auto link_poll = std::chrono::milliseconds(5);

}  // namespace

std::string no_link(std::uint32_t engine, duration waited) {
  return "engine " + std::to_string(engine) + " is a member, but no link to it came within " +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) +
         " ms";
}

task<result<address>> placer::place(place_request req) {
  req_ = std::move(req);
  std::string tried;
  errc last = errc::peer_lost;
  for (const candidate& c : candidates_) {
    result<address> a = co_await place_on(c);
    if (a || (a.err().code() != errc::peer_lost && a.err().code() != errc::not_found &&
              a.err().code() != errc::misuse)) {
      stop();
      co_return a;  // placed, or it failed for a reason another member would share
    }
    // That member cannot take it (gone, not linked, lacks the type,
    // refused the module): the next one may.
    if (candidates_.size() == 1) {
      stop();
      co_return a;
    }
    last = a.err().code();
    tried += (tried.empty() ? "" : "; ") + a.err().describe();
  }
  stop();
  co_return error(last, "no member that fits could take '" + req_.type + "': " + tried);
}

task<result<address>> placer::place_on(candidate c) {
  if (c.link_due != time_point{} && !co_await link_up(c.engine, c.link_due)) {
    co_return error(errc::peer_lost, no_link(c.engine, link_wait_));
  }
  result<address> a = co_await spawn_type_on(c.engine, req_.type, req_.args, req_.options.spawn,
                                             req_.options.timeout);
  if (!a && a.err().code() == errc::not_found && c.engine != home_) {
    // That engine lacks the type: send it the module that has it here.
    result<done> sent = co_await send_module(c, req_.type, req_.options.timeout);
    if (!sent) co_return sent.err();
    a = co_await spawn_type_on(c.engine, req_.type, req_.args, req_.options.spawn,
                               req_.options.timeout);
  }
  co_return a;
}

task<bool> placer::link_up(std::uint32_t engine, time_point due) {
  due = std::min(due, std::chrono::steady_clock::now() + req_.options.timeout);
  const system_impl& sys = this_shard->owner();
  while (std::chrono::steady_clock::now() < due) {
    const std::vector<std::uint32_t> up = sys.known_engines();
    if (std::binary_search(up.begin(), up.end(), engine)) co_return true;
    co_await sleep_for{link_poll};
  }
  const std::vector<std::uint32_t> up = sys.known_engines();
  co_return std::binary_search(up.begin(), up.end(), engine);
}

task<result<done>> placer::send_module(candidate c, std::string type, duration timeout) {
  std::optional<module_info> mod;
  for (const module_info& m : loaded_modules()) {
    if (std::find(m.actor_types.begin(), m.actor_types.end(), type) != m.actor_types.end()) {
      mod = m;
    }
  }
  if (!mod) {
    co_return error(errc::not_found, "engine " + std::to_string(c.engine) +
                                         " has no actor type named '" + type +
                                         "', and no module loaded on engine " +
                                         std::to_string(home_) + " provides it");
  }
  module_offer offer;
  offer.name = mod->name;
  offer.file_name = std::filesystem::path(mod->path).filename().string();
  offer.sha256 = mod->sha256;  // as loaded here: a file changed since is refused there
  auto read = [path = mod->path]() -> std::optional<std::string> {
    std::string bytes;
    if (!read_whole_file(path, bytes)) return std::nullopt;
    return bytes;
  };
  std::optional<std::string> bytes = co_await run_blocking(std::move(read));  // megabytes
  if (bytes) offer.bytes = std::move(*bytes);
  if (!bytes) {
    co_return error(errc::misuse, "module '" + mod->name + "' (" + mod->path +
                                      ") cannot be read to send to engine " +
                                      std::to_string(c.engine));
  }
  spdlog::info("engine {}: sending module '{}' ({} bytes) to engine {}", home_, offer.name,
               offer.bytes.size(), c.engine);
  result<done> r = co_await ask<done>(c.agent, std::move(offer), timeout);
  if (!r) {
    co_return error(r.err().code(), "module '" + mod->name + "' needed for '" + type +
                                        "' could not be installed on engine " +
                                        std::to_string(c.engine) + ": " + r.err().text());
  }
  co_return done{};
}

}  // namespace troupe::internal
