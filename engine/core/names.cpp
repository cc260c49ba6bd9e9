// Names of codes, reasons and types, for logs and error texts.

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <unordered_map>

#include "core/describe.hpp"
#include "troupe/actor.hpp"
#include "troupe/internal/envelope.hpp"
#include "troupe/result.hpp"
#include "troupe/system.hpp"

namespace troupe {

const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::timeout: return "timeout";
    case errc::dead_actor: return "dead actor";
    case errc::unhandled: return "unhandled";
    case errc::failed: return "failed";
    case errc::shutting_down: return "shutting down";
    case errc::type_mismatch: return "type mismatch";
    case errc::misuse: return "misuse";
    case errc::mailbox_full: return "mailbox full";
    case errc::not_found: return "not found";
    case errc::io: return "i/o error";
    case errc::peer_lost: return "peer lost";
  }
  return "unknown";
}

const char* to_string(dead_reason r) noexcept {
  switch (r) {
    case dead_reason::no_such_actor: return "no such actor";
    case dead_reason::actor_stopped: return "actor stopped";
    case dead_reason::unhandled: return "unhandled";
    case dead_reason::shutting_down: return "shutting down";
    case dead_reason::no_route: return "no route";
    case dead_reason::late_reply: return "late reply";
    case dead_reason::mailbox_full: return "mailbox full";
    case dead_reason::unknown_type: return "unknown type";
    case dead_reason::peer_lost: return "peer lost";
    case dead_reason::count_: break;
  }
  return "unknown";
}

const char* to_string(exit_kind k) noexcept {
  switch (k) {
    case exit_kind::normal: return "normal";
    case exit_kind::requested: return "requested";
    case exit_kind::failed: return "failed";
    case exit_kind::restart_limit: return "restart limit reached";
    case exit_kind::stopped: return "stopped by its supervisor";
    case exit_kind::shutdown: return "shutdown";
  }
  return "unknown";
}

namespace internal {

std::string type_name_of(const std::type_info& t) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(t.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(t.name());
}

std::string type_name(const message_type* t) { return type_name_of(*t->info); }

std::string actor_name(const actor_base* a) {
  return a ? type_name_of(typeid(*a)) : std::string("?");
}

std::string describe(const failure& f) {
  if (!f.ptr) return f.reason;
  if (!f.type) return "an exception that is not a std::exception";
  // Demangling allocates and is slow; a shard sees few distinct types.
  thread_local std::unordered_map<const std::type_info*, std::string> names;
  auto it = names.find(f.type);
  if (it == names.end()) it = names.emplace(f.type, type_name_of(*f.type)).first;
  return it->second + ": " + f.what;
}

std::string describe_failure(std::exception_ptr failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& ex) {
    return type_name_of(typeid(ex)) + ": " + ex.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

}  // namespace internal
}  // namespace troupe
