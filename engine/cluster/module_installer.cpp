// The module_installer (see module_installer.hpp): a module another member
// sent, checked, written to the module cache and loaded.

#include "cluster/module_installer.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "core/shard.hpp"
#include "core/system_impl.hpp"
#include "troupe/blocking.hpp"

namespace troupe::internal {

task<result<done>> module_installer::on(const module_offer& m) {
  system_impl* sys = &this_shard->owner();
  const std::uint32_t from = sender().engine(), here = sys->engine();
  auto job = [sys, offer = m, cache = cache_, from, here]() -> result<done> {
    return install(*sys, offer, cache, from, here);
  };
  result<done> r = co_await run_blocking(std::move(job));
  stop();
  co_return r;
}

result<done> module_installer::install(system_impl& sys, const module_offer& m,
                                       const std::string& cache, std::uint32_t from,
                                       std::uint32_t here) {
  const std::string origin = "module '" + m.name + "' from engine " + std::to_string(from);
  for (const module_info& have : loaded_modules()) {
    if (have.name != m.name) continue;
    if (have.sha256 == m.sha256) return done{};
    return error(errc::misuse, origin +
                                   " refused: a module of that name with another hash is "
                                   "loaded here (" +
                                   have.sha256 + ")");
  }
  const std::string got = sha256_hex(m.bytes);
  if (got != m.sha256) {
    spdlog::warn("engine {}: refused {}: its bytes hash to {}, not {}", here, origin, got,
                 m.sha256);
    return error(errc::misuse, origin + " refused: its bytes hash to " + got + ", not the " +
                                   m.sha256 + " it was sent with");
  }
  std::string file = std::filesystem::path(m.file_name).filename().string();
  if (file.empty() || file == "." || file == "..") file = "module.so";
  std::error_code ec;
  std::filesystem::create_directories(cache, ec);
  const std::string path = cache + "/" + m.sha256.substr(0, 16) + "-" + file;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(m.bytes.data(), static_cast<std::streamsize>(m.bytes.size()));
    if (!out) {
      return error(errc::io,
                   origin + ": cannot write " + path + " on engine " + std::to_string(here));
    }
  }
  result<module_info> loaded = sys.load_module(path);
  if (!loaded) return loaded.err();
  if (loaded->sha256 != m.sha256) {  // changed on disk in between
    (void)sys.unload_module(loaded->name, true);
    return error(errc::misuse, origin + ": the file written differs from the one sent");
  }
  spdlog::info("engine {}: installed {} (sha256 {})", here, origin, m.sha256);
  return done{};
}

}  // namespace troupe::internal
