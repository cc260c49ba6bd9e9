// Actor modules: loading a .so, checking its entry point, registering its
// types whole or not at all, and unloading it once none of its actors live.
// Actors of a module are found by their vtable: it lies in the module's
// loaded segments.

#include "troupe/module.hpp"

#include <dlfcn.h>
#include <link.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>

#include "core/actor_access.hpp"
#include "core/system_impl.hpp"

namespace troupe::internal {

namespace {

struct loaded_module {
  module_info info;
  void* handle = nullptr;
  std::uintptr_t lo = 0, hi = 0;  ///< its loaded segments
};

struct module_table {
  std::mutex lock;
  std::vector<loaded_module> loaded;
};

module_table& modules_table() {
  static module_table t;
  return t;
}

struct range_query {
  std::uintptr_t base;
  std::uintptr_t lo = UINTPTR_MAX, hi = 0;
};

int find_segments(dl_phdr_info* info, std::size_t, void* data) {
  auto* q = static_cast<range_query*>(data);
  if (info->dlpi_addr != q->base) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    q->lo = std::min<std::uintptr_t>(q->lo, info->dlpi_addr + ph.p_vaddr);
    q->hi = std::max<std::uintptr_t>(q->hi, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
  }
  return 1;
}

}  // namespace

bool read_whole_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return false;
  const std::streamoff size = in.tellg();
  if (size < 0) return false;
  out.resize(static_cast<std::size_t>(size));
  in.seekg(0);
  in.read(out.data(), size);  // in one go: a module is megabytes
  return static_cast<bool>(in) || in.gcount() == size;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 0xf]);
  }
  return out;
}

result<module_info> system_impl::load_module(const std::string& path) {
  auto fail = [&](const std::string& why) -> result<module_info> {
    return error(errc::misuse, "module " + path + ": " + why);
  };
  char resolved[PATH_MAX];
  if (!::realpath(path.c_str(), resolved)) return fail("cannot be read: no such file");
  std::string bytes;
  if (!read_whole_file(resolved, bytes)) return fail("cannot be read");
  module_table& t = modules_table();
  std::lock_guard g(t.lock);
  for (const loaded_module& m : t.loaded) {
    if (m.info.path == resolved) return fail("already loaded as module '" + m.info.name + "'");
  }
  ::dlerror();
  void* h = ::dlopen(resolved, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = ::dlerror();
    return fail(std::string("not a loadable shared object: ") + (why ? why : "dlopen failed"));
  }
  auto close_fail = [&](const std::string& why) {
    ::dlclose(h);
    return fail(why);
  };
  using entry_fn = const module_descriptor* (*)();
  auto entry = reinterpret_cast<entry_fn>(::dlsym(h, "troupe_module_v1"));
  if (!entry) {
    return close_fail(
        "not a troupe module: it has no troupe_module_v1 entry point (TROUPE_MODULE)");
  }
  const module_descriptor* d = entry();
  if (!d || d->abi != module_abi) {
    return close_fail("built for module ABI " + std::to_string(d ? d->abi : 0) +
                      ", this engine loads ABI " + std::to_string(module_abi));
  }
  if (std::string(d->engine_version ? d->engine_version : "") != TROUPE_VERSION_STRING) {
    return close_fail(std::string("built with troupe ") +
                      (d->engine_version ? d->engine_version : "?") + ", this engine is " +
                      TROUPE_VERSION_STRING);
  }
  const std::string name = d->name ? d->name : "";
  if (name.empty()) return close_fail("its descriptor has no name");
  for (const loaded_module& m : t.loaded) {
    if (m.info.name == name) {
      return close_fail("a module named '" + name + "' is already loaded from " + m.info.path);
    }
  }
  module_registry reg;
  try {
    d->register_types(reg);
  } catch (const std::exception& ex) {
    return close_fail(std::string("its registration threw: ") + ex.what());
  }
  // Whole or not at all: every name must be free first.
  for (const auto& a : reg.actors()) {
    if (actor_type_named(a.name)) {
      return close_fail("actor type name '" + a.name + "' is already registered");
    }
  }
  for (const auto& m : reg.messages()) {
    if (codec_named(m.name)) {
      return close_fail("message name '" + m.name + "' is already registered");
    }
  }
  loaded_module lm;
  lm.info.name = name;
  lm.info.path = resolved;
  lm.info.sha256 = sha256_hex(bytes);
  lm.handle = h;
  try {
    for (const auto& m : reg.messages()) {
      m.apply();
      lm.info.message_types.push_back(m.name);
    }
    for (const auto& a : reg.actors()) {
      register_actor_type(a.name, a.type);
      lm.info.actor_types.push_back(a.name);
    }
  } catch (const std::exception& ex) {
    for (const std::string& n : lm.info.message_types) retire_codec(n);
    for (const std::string& n : lm.info.actor_types) unregister_actor_type(n);
    return close_fail(std::string("registering its types failed: ") + ex.what());
  }
  Dl_info where{};
  if (::dladdr(reinterpret_cast<void*>(entry), &where) && where.dli_fbase) {
    range_query q{reinterpret_cast<std::uintptr_t>(where.dli_fbase)};
    ::dl_iterate_phdr(&find_segments, &q);
    lm.lo = q.lo;
    lm.hi = q.hi;
  }
  module_info info = lm.info;
  t.loaded.push_back(std::move(lm));
  spdlog::info("engine {}: loaded module '{}' from {}: {} actor types, {} message types", engine(),
               info.name, info.path, info.actor_types.size(), info.message_types.size());
  return info;
}

std::size_t system_impl::census(std::uintptr_t lo, std::uintptr_t hi, bool stop) {
  struct state {
    std::mutex m;
    std::condition_variable cv;
    std::size_t pending;
    std::size_t count = 0;
  };
  auto st = std::make_shared<state>();
  st->pending = shards_.size();
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    envelope* e = make_envelope(module_census{lo, hi, stop,
                                              [st](std::size_t n) {
                                                std::lock_guard g(st->m);
                                                st->count += n;
                                                if (--st->pending == 0) st->cv.notify_all();
                                              }},
                                address{}, address(engine(), static_cast<std::uint16_t>(i), 0, 0));
    e->flags |= flag_control;
    outside_send(e);
  }
  if (options_.inline_mode) run_until_idle();
  std::unique_lock g(st->m);
  st->cv.wait_for(g, std::chrono::seconds(10), [&] { return st->pending == 0; });
  return st->pending == 0 ? st->count : SIZE_MAX;
}

result<done> system_impl::unload_module(const std::string& name, bool stop_actors) {
  module_table& t = modules_table();
  std::unique_lock g(t.lock);
  auto it = std::find_if(t.loaded.begin(), t.loaded.end(),
                         [&](const loaded_module& m) { return m.info.name == name; });
  if (it == t.loaded.end())
    return error(errc::not_found, "no module named '" + name + "' is loaded");
  const std::uintptr_t lo = it->lo, hi = it->hi;
  std::size_t live = census(lo, hi, false);
  if (live > 0 && !stop_actors) {
    return error(errc::misuse, "module '" + name + "' has " + std::to_string(live) +
                                   " live actors; unload with stop to end them first");
  }
  if (live > 0) {
    census(lo, hi, true);
    for (int i = 0; i < 500 && live > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      live = census(lo, hi, false);
    }
    if (live > 0) {
      return error(errc::timeout, "module '" + name + "' still has " + std::to_string(live) +
                                      " live actors after being told to stop them");
    }
  }
  for (const std::string& n : it->info.actor_types) unregister_actor_type(n);
  for (const std::string& n : it->info.message_types) retire_codec(n);
  ::dlclose(it->handle);
  spdlog::info("engine {}: unloaded module '{}'", engine(), name);
  t.loaded.erase(it);
  return done{};
}

std::vector<module_info> loaded_modules() {
  module_table& t = modules_table();
  std::lock_guard g(t.lock);
  std::vector<module_info> out;
  for (const loaded_module& m : t.loaded) out.push_back(m.info);
  return out;
}

void shard::handle_census(envelope* e) {
  module_census& m = e->as<module_census>();
  std::size_t n = 0;
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    actor_base* a = slots_[i].actor;
    if (!a) continue;
    const auto vptr = *reinterpret_cast<const std::uintptr_t*>(a);
    if (vptr < m.lo || vptr >= m.hi) continue;
    ++n;
    if (m.stop) {
      envelope* h = make_envelope(halt{"its module is being unloaded"}, address{}, a->self());
      h->flags |= flag_control;
      send(h);
    }
  }
  m.done(n);
}

}  // namespace troupe::internal
