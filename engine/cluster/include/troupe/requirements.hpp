#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <memory>
#include <string>

#include "troupe/result.hpp"

namespace troupe {

namespace internal {
struct requirement_clause;
}  // namespace internal

/// What a spawn asks of the engine it runs on: a predicate over the
/// capabilities an engine announces, written as JSON in a MongoDB-like form,
/// and compiled once by parse() into a small tree that matches() walks.
///
///     {"cores": {"$gte": 16}, "zone": {"$in": ["ams", "fra"]}, "gpu": false,
///      "$or": [{"role": "db"}, {"tags": {"$contains": "ssd"}}]}
///
/// - A key names a capability (a name that does not start with `$`). A
///   plain value must equal it (JSON equality, so 16 == 16.0; an object
///   with no `$` key, {} included, is a plain value). An object whose keys
///   all start with `$` is a set of operators that must all hold: `$eq`,
///   `$ne`, `$gt`, `$gte`, `$lt`, `$lte` (numbers compare numerically,
///   strings lexicographically; a number never compares with a string),
///   `$in`, `$nin` (an array of values), `$exists` (a bool), `$contains`
///   (the capability is an array holding the value).
/// - A missing capability fails every operator except `$ne`, `$nin` and
///   `$exists: false`.
/// - `$and` and `$or` take a non-empty array of predicates, `$not` one
///   predicate; they may appear beside capability keys, and nest.
/// - null and {} match every engine.
///
/// A value: immutable once parsed; copies share the compiled tree, and any
/// thread may call any member of a shared one. The default value matches
/// everything.
class requirements {
 public:
  /// How deep a predicate's JSON may nest objects and arrays ({} is 1).
  /// Predicates come from other engines too; the bound keeps parsing,
  /// copying and matching one from running off the end of the stack.
  static constexpr std::size_t max_depth = 64;

  // json's null constructor cannot throw; clang-tidy sees the throw in its
  // unreachable default case (nlohmann silences the same check on it).
  // NOLINTNEXTLINE(bugprone-exception-escape)
  requirements() = default;

  /// Compiles `predicate`. Fails with errc::misuse and a text naming the
  /// problem and its path: `requirements.cores: unknown operator "$gte2"
  /// (known: $eq, $ne, ...)`. Keeps a copy of `predicate` for json().
  static result<requirements> parse(const nlohmann::json& predicate);

  /// Whether an engine announcing `capabilities` (a JSON object) fits. A
  /// value that is not an object fits only a predicate that is null or {}.
  bool matches(const nlohmann::json& capabilities) const noexcept;

  /// Why an engine does not fit: the first clause that fails, e.g.
  /// `cores: 8 is not >= 16` or `gpu: missing`. Empty when it fits.
  std::string why_not(const nlohmann::json& capabilities) const;

  /// The predicate as it was given to parse(), to send to other engines
  /// (they parse it again). null for the default value.
  const nlohmann::json& json() const noexcept { return json_; }

 private:
  nlohmann::json json_;
  // Null for a predicate that matches everything.
  std::shared_ptr<const internal::requirement_clause> root_;
};

}  // namespace troupe
