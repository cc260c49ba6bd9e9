// Requirements: a JSON predicate over an engine's capabilities, compiled
// once into a tree of clauses.
//
// parse() walks the JSON once and checks everything it can (operators,
// operand types, nesting), so matching never meets a bad predicate: it only
// looks capabilities up and compares. Errors and why_not() texts name their
// place the same way: a dotted path from `requirements`, or the capability.

#include "troupe/requirements.hpp"

#include <algorithm>
#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe {
namespace internal {

/// One node of a compiled predicate. Field tests (eq ... contains) apply
/// `op` to the capability `field`; all/any/negate combine `children`.
/// (json's null constructor cannot throw; clang-tidy sees the throw in its
/// unreachable default case, and nlohmann silences the same check on it.)
// NOLINTNEXTLINE(bugprone-exception-escape)
struct requirement_clause {
  enum class kind : std::uint8_t {
    all,     // every child holds ({} holds always)
    any,     // some child holds
    negate,  // the one child does not hold
    eq,
    ne,
    gt,
    gte,
    lt,
    lte,
    in,
    nin,
    exists,
    contains,
  };

  kind op = kind::all;
  std::string field;
  // The value compared with (an array for in/nin, a bool for exists); for
  // negate, the negated predicate as given, for why_not().
  nlohmann::json operand;
  std::vector<requirement_clause> children;
};

}  // namespace internal

namespace {

using nlohmann::json;
using clause = internal::requirement_clause;
using kind = clause::kind;

struct operator_name {
  std::string_view name;
  kind op;
};

constexpr std::array<operator_name, 10> operators = {{
    {"$eq", kind::eq},
    {"$ne", kind::ne},
    {"$gt", kind::gt},
    {"$gte", kind::gte},
    {"$lt", kind::lt},
    {"$lte", kind::lte},
    {"$in", kind::in},
    {"$nin", kind::nin},
    {"$exists", kind::exists},
    {"$contains", kind::contains},
}};

constexpr std::string_view known_operators =
    "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $contains";
constexpr std::string_view known_combinators = "$and, $or, $not";

std::optional<kind> operator_kind(std::string_view name) {
  for (const auto& o : operators) {
    if (o.name == name) return o.op;
  }
  return std::nullopt;
}

std::string_view symbol(kind k) {
  switch (k) {
    case kind::gt: return ">";
    case kind::gte: return ">=";
    case kind::lt: return "<";
    case kind::lte: return "<=";
    default: return "?";
  }
}

bool is_operator_key(std::string_view key) { return !key.empty() && key.front() == '$'; }

// How deeply `v` nests arrays and objects (a scalar: 0), counted up to
// `limit` + 1 only. A loop, not a recursion: `v` may be deep enough to
// overflow the stack, which is what this is asked to find out.
std::size_t nesting(const json& v, std::size_t limit) {
  std::vector<std::pair<const json*, std::size_t>> todo{{&v, 0}};
  std::size_t deepest = 0;
  while (!todo.empty()) {
    const auto [j, above] = todo.back();
    todo.pop_back();
    if (!j->is_structured()) continue;
    const std::size_t depth = above + 1;
    if (depth > limit) return depth;
    deepest = std::max(deepest, depth);
    for (const auto& child : *j) todo.emplace_back(&child, depth);
  }
  return deepest;
}

// A value as JSON text, for messages: never throws on bad UTF-8, and cut
// short (on a character boundary) so that one huge value cannot swamp an
// error. A capability may nest too deep to print (dump() recurses).
std::string show(const json& v) {
  constexpr std::size_t max_bytes = 80;
  if (nesting(v, requirements::max_depth) > requirements::max_depth) {
    return "(a value nested deeper than " + std::to_string(requirements::max_depth) + " levels)";
  }
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() <= max_bytes) return text;
  std::size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text + "...";
}

std::string_view type_name(const json& v) {
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a bool";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

// --- matching ---

template <class A, class B>
std::strong_ordering compare_integers(A a, B b) noexcept {
  if (std::cmp_less(a, b)) return std::strong_ordering::less;
  if (std::cmp_equal(a, b)) return std::strong_ordering::equal;
  return std::strong_ordering::greater;
}

// A number as a double. Precondition: is_number().
double as_double(const json& n) noexcept {
  if (const auto* f = n.get_ptr<const json::number_float_t*>()) return *f;
  if (const auto* u = n.get_ptr<const json::number_unsigned_t*>()) return static_cast<double>(*u);
  return static_cast<double>(*n.get_ptr<const json::number_integer_t*>());
}

// Integers compare exactly, whatever their signedness; a float makes both
// sides doubles. NaN is unordered with everything. Precondition: both are
// numbers. (get_ptr() and not get(): matching must not throw.)
std::partial_ordering compare_numbers(const json& a, const json& b) noexcept {
  if (a.is_number_float() || b.is_number_float()) return as_double(a) <=> as_double(b);
  const auto* ua = a.get_ptr<const json::number_unsigned_t*>();
  const auto* ub = b.get_ptr<const json::number_unsigned_t*>();
  const auto* sa = a.get_ptr<const json::number_integer_t*>();
  const auto* sb = b.get_ptr<const json::number_integer_t*>();
  if (ua && ub) return compare_integers(*ua, *ub);
  if (ua) return compare_integers(*ua, *sb);
  if (ub) return compare_integers(*sa, *ub);
  return compare_integers(*sa, *sb);
}

// Numbers with numbers, strings with strings; anything else is unordered,
// and so matches no comparison.
std::partial_ordering compare(const json& a, const json& b) noexcept {
  if (a.is_number() && b.is_number()) return compare_numbers(a, b);
  const auto* sa = a.get_ptr<const json::string_t*>();
  const auto* sb = b.get_ptr<const json::string_t*>();
  if (sa && sb) return *sa <=> *sb;
  return std::partial_ordering::unordered;
}

// Whether `array` (any JSON value) is an array with an element equal to `v`.
bool has_element(const json& array, const json& v) noexcept {
  const auto* elements = array.get_ptr<const json::array_t*>();
  if (!elements) return false;
  for (const json& e : *elements) {
    if (e == v) return true;
  }
  return false;
}

// Whether field test `c` holds for `v`, the capability's value (null when
// the engine does not announce it).
bool field_holds(const clause& c, const json* v) noexcept {
  switch (c.op) {
    case kind::eq: return v && *v == c.operand;
    case kind::ne: return !v || *v != c.operand;
    case kind::gt: return v && compare(*v, c.operand) > 0;
    case kind::gte: return v && compare(*v, c.operand) >= 0;
    case kind::lt: return v && compare(*v, c.operand) < 0;
    case kind::lte: return v && compare(*v, c.operand) <= 0;
    case kind::in: return v && has_element(c.operand, *v);
    case kind::nin: return !v || !has_element(c.operand, *v);
    case kind::exists: return (v != nullptr) == *c.operand.get_ptr<const json::boolean_t*>();
    case kind::contains: return v && has_element(*v, c.operand);
    default: return false;
  }
}

// The capability `name`, or null when the engine does not announce it.
// Precondition: `capabilities` is an object.
const json* lookup(const json& capabilities, const std::string& name) noexcept {
  const auto& object = *capabilities.get_ptr<const json::object_t*>();
  const auto it = object.find(name);
  return it == object.end() ? nullptr : &it->second;
}

// Precondition: `capabilities` is an object.
bool holds(const clause& c, const json& capabilities) noexcept {
  switch (c.op) {
    case kind::all:
      for (const auto& child : c.children) {
        if (!holds(child, capabilities)) return false;
      }
      return true;
    case kind::any:
      for (const auto& child : c.children) {
        if (holds(child, capabilities)) return true;
      }
      return false;
    case kind::negate: return !holds(c.children.front(), capabilities);
    default: return field_holds(c, lookup(capabilities, c.field));
  }
}

// Why field test `c` fails for `v`; precondition: it does.
std::string field_failure(const clause& c, const json* v) {
  const std::string prefix = c.field + ": ";
  if (!v) return prefix + "missing";
  switch (c.op) {
    case kind::eq: return prefix + show(*v) + " is not " + show(c.operand);
    case kind::ne: return prefix + "must not be " + show(c.operand);
    case kind::gt:
    case kind::gte:
    case kind::lt:
    case kind::lte: {
      std::string text =
          prefix + show(*v) + " is not " + std::string(symbol(c.op)) + " " + show(c.operand);
      const bool comparable =
          (v->is_number() && c.operand.is_number()) || (v->is_string() && c.operand.is_string());
      if (!comparable) {
        text += " (" + std::string(type_name(*v)) + " does not compare with " +
                std::string(type_name(c.operand)) + ")";
      }
      return text;
    }
    case kind::in: return prefix + show(*v) + " is not one of " + show(c.operand);
    case kind::nin: return prefix + show(*v) + " is one of the excluded " + show(c.operand);
    case kind::exists: return prefix + "present, must be missing";
    case kind::contains:
      if (!v->is_array()) {
        return prefix + show(*v) + " is not an array (must contain " + show(c.operand) + ")";
      }
      return prefix + show(*v) + " does not contain " + show(c.operand);
    default: return prefix + "fails";
  }
}

// Why `c` fails for `capabilities`: "" when it holds. Precondition:
// `capabilities` is an object.
std::string failure(const clause& c, const json& capabilities) {
  switch (c.op) {
    case kind::all:
      for (const auto& child : c.children) {
        std::string why = failure(child, capabilities);
        if (!why.empty()) return why;
      }
      return {};
    case kind::any: {
      if (holds(c, capabilities)) return {};
      std::string why = "$or: no alternative holds (";
      for (std::size_t i = 0; i < c.children.size(); ++i) {
        if (i > 0) why += "; ";
        why += failure(c.children[i], capabilities);
      }
      return why + ")";
    }
    case kind::negate:
      if (holds(c, capabilities)) return {};
      return "$not: " + show(c.operand) + " holds";
    default: {
      const json* v = lookup(capabilities, c.field);
      return field_holds(c, v) ? std::string() : field_failure(c, v);
    }
  }
}

// --- parsing ---

// "requirements.$or" and "cores": "requirements.$or.cores".
std::string member(const std::string& path, const std::string& key) {
  std::string joined;
  joined.reserve(path.size() + 1 + key.size());
  joined.append(path).append(".").append(key);
  return joined;
}

class compiler {
 public:
  // The problem that made a parse fail: "<path>: <what>".
  const std::string& problem() const { return problem_; }

  // A predicate object at `path`. Precondition: it nests no deeper than
  // max_depth, which bounds the recursion.
  std::optional<clause> predicate(const json& p, const std::string& path) {
    if (!p.is_object()) return fail(path, "expected a predicate object, got " + show(p));
    clause all;
    all.op = kind::all;
    for (const auto& [key, value] : p.items()) {
      if (!is_operator_key(key)) {
        if (!field(key, value, member(path, key), all.children)) return std::nullopt;
        continue;
      }
      std::optional<clause> c = combinator(key, value, path);
      if (!c) return std::nullopt;
      all.children.push_back(std::move(*c));
    }
    // One clause needs no "all" around it.
    if (all.children.size() == 1) return std::move(all.children.front());
    return all;
  }

 private:
  std::nullopt_t fail(const std::string& path, const std::string& what) {
    problem_ = path + ": " + what;
    return std::nullopt;
  }

  std::optional<clause> combinator(const std::string& key, const json& value,
                                   const std::string& path) {
    const std::string here = member(path, key);
    if (key == "$and" || key == "$or") {
      if (!value.is_array() || value.empty()) {
        return fail(here, "expected a non-empty array of predicates, got " + show(value));
      }
      clause c;
      c.op = key == "$and" ? kind::all : kind::any;
      for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string element = here + "[" + std::to_string(i) + "]";
        std::optional<clause> child = predicate(value[i], element);
        if (!child) return std::nullopt;
        c.children.push_back(std::move(*child));
      }
      return c;
    }
    if (key == "$not") {
      std::optional<clause> child = predicate(value, here);
      if (!child) return std::nullopt;
      clause c;
      c.op = kind::negate;
      c.operand = value;
      c.children.push_back(std::move(*child));
      return c;
    }
    if (operator_kind(key)) {
      return fail(path, "operator \"" + key + "\" needs a capability name, as in {\"cores\": {\"" +
                            key + "\": ...}}");
    }
    return fail(
        path, "unknown combinator \"" + key + "\" (known: " + std::string(known_combinators) + ")");
  }

  // The test(s) on capability `name`, appended to `out`.
  bool field(const std::string& name, const json& value, const std::string& path,
             std::vector<clause>& out) {
    if (!is_operator_object(value)) {
      out.push_back(clause{kind::eq, name, value, {}});
      return true;
    }
    std::string first_operator, first_plain;
    for (const auto& [key, operand] : value.items()) {
      std::string& first = is_operator_key(key) ? first_operator : first_plain;
      if (first.empty()) first = key;
      if (!first_operator.empty() && !first_plain.empty()) {
        std::string what = "mixes operators and plain keys (\"";
        what.append(first_operator).append("\" and \"").append(first_plain);
        fail(path, what + "\"); an object is either all operators or a literal value");
        return false;
      }
    }
    for (const auto& [key, operand] : value.items()) {
      const std::optional<kind> op = operator_kind(key);
      if (!op) {
        fail(path,
             "unknown operator \"" + key + "\" (known: " + std::string(known_operators) + ")");
        return false;
      }
      if (!operand_fits(*op, operand, member(path, key))) return false;
      out.push_back(clause{*op, name, operand, {}});
    }
    return true;
  }

  // An object with a `$` key is operators (and must be only operators);
  // any other value, {} included, is a literal to compare with.
  static bool is_operator_object(const json& value) {
    if (!value.is_object()) return false;
    for (const auto& [key, v] : value.items()) {
      if (is_operator_key(key)) return true;
    }
    return false;
  }

  bool operand_fits(kind op, const json& operand, const std::string& path) {
    switch (op) {
      case kind::gt:
      case kind::gte:
      case kind::lt:
      case kind::lte:
        if (operand.is_number() || operand.is_string()) return true;
        fail(path, "expected a number or a string, got " + show(operand));
        return false;
      case kind::in:
      case kind::nin:
        if (operand.is_array()) return true;
        fail(path, "expected an array, got " + show(operand));
        return false;
      case kind::exists:
        if (operand.is_boolean()) return true;
        fail(path, "expected true or false, got " + show(operand));
        return false;
      default: return true;
    }
  }

  std::string problem_;
};

}  // namespace

result<requirements> requirements::parse(const nlohmann::json& predicate) {
  // First of all, as copying and compiling recurse.
  if (nesting(predicate, max_depth) > max_depth) {
    return error(errc::misuse, "requirements: nests objects and arrays deeper than " +
                                   std::to_string(max_depth) + " levels");
  }
  requirements r;
  r.json_ = predicate;
  if (predicate.is_null() || (predicate.is_object() && predicate.empty())) return r;
  if (!predicate.is_object()) {
    return error(errc::misuse, "requirements: expected an object or null, got " + show(predicate));
  }
  compiler c;
  std::optional<clause> root = c.predicate(predicate, "requirements");
  if (!root) return error(errc::misuse, c.problem());
  r.root_ = std::make_shared<const clause>(std::move(*root));
  return r;
}

bool requirements::matches(const nlohmann::json& capabilities) const noexcept {
  if (!root_) return true;
  return capabilities.is_object() && holds(*root_, capabilities);
}

std::string requirements::why_not(const nlohmann::json& capabilities) const {
  if (!root_) return {};
  if (!capabilities.is_object()) {
    return "capabilities: expected an object, got " + show(capabilities);
  }
  return failure(*root_, capabilities);
}

}  // namespace troupe
