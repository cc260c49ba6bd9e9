// What the `troupe` subcommands share (cli.hpp): the admin token and the
// convention's secret, read from their files.

#include "server/cli.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <optional>
#include <sstream>

namespace troupe {

namespace {

/// A file's bytes; nullopt if it cannot be read.
std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream all;
  all << in.rdbuf();
  return all.str();
}

}  // namespace

std::string read_token(const std::string& path, bool& ok) {
  std::string t = read_file(path).value_or("");
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  ok = !t.empty();
  return t;
}

bool read_secret(const std::string& path, std::string& secret) {
  auto bytes = read_file(path);
  if (!bytes) {
    spdlog::error("secret file {}: cannot be read", path);
    return false;
  }
  secret = std::move(*bytes);
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) {
    spdlog::error("secret file {}: the file is empty; a secret needs at least one byte", path);
    return false;
  }
  return true;
}

}  // namespace troupe
