#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "troupe/requirements.hpp"

using nlohmann::json;
using troupe::errc;
using troupe::requirements;

namespace {

/// An engine that announces the usual capabilities.
const json engine = json::parse(R"({"cores": 16, "gpu": false, "zone": "ams", "role": "db",
                                    "mem_gb": 64, "tags": ["ssd", "fast"]})");

requirements parsed(const json& predicate) {
  auto r = requirements::parse(predicate);
  INFO(predicate.dump() << ": " << (r ? std::string() : r.err().text()));
  REQUIRE(r.ok());
  return *r;
}

requirements parsed(const std::string& predicate) { return parsed(json::parse(predicate)); }
requirements parsed(const char* predicate) { return parsed(json::parse(predicate)); }

/// Whether an engine announcing `capabilities` fits `predicate`; why_not()
/// must agree with matches().
bool fits(const std::string& predicate, const json& capabilities = engine) {
  const requirements r = parsed(predicate);
  const bool m = r.matches(capabilities);
  INFO(predicate << " on " << capabilities.dump());
  CHECK(r.why_not(capabilities).empty() == m);
  return m;
}

/// What parse says of `predicate`: its error text ("" when it accepts it).
std::string error_of(const json& predicate) {
  const auto r = requirements::parse(predicate);
  if (r.ok()) return "";
  CHECK(r.err().code() == errc::misuse);
  return r.err().text();
}

std::string error_of(const char* predicate) { return error_of(json::parse(predicate)); }

std::string why_not(const std::string& predicate, const json& capabilities = engine) {
  return parsed(predicate).why_not(capabilities);
}

constexpr const char* all_operators =
    "(known: $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $contains)";

/// {"zone": "ams"} inside `levels` of $not: it nests `levels` + 1 deep.
json nested_not(std::size_t levels) {
  json p = {{"zone", "ams"}};
  for (std::size_t i = 0; i < levels; ++i) {
    json outer = json::object();
    outer["$not"] = std::move(p);  // moved, not copied: copies recurse
    p = std::move(outer);
  }
  return p;
}

/// [[[...]]], `levels` deep.
json deep_array(int levels) {
  json a = json::array();
  for (int i = 1; i < levels; ++i) {
    json outer = json::array();
    outer.push_back(std::move(a));
    a = std::move(outer);
  }
  return a;
}

}  // namespace

// --- matching ---

TEST_CASE("null and {} match every engine, even one that announces nothing", "[requirements]") {
  for (const char* p : {"null", "{}"}) {
    CHECK(fits(p));
    CHECK(fits(p, json::object()));
    CHECK(fits(p, json(5)));
    CHECK(fits(p, json()));
  }
  const requirements none;
  CHECK(none.matches(engine));
  CHECK(none.matches(json()));
  CHECK(none.why_not(json("x")).empty());
  CHECK(none.json().is_null());
}

TEST_CASE("a non-object capabilities value matches no other predicate", "[requirements]") {
  const requirements r = parsed(R"({"gpu": {"$exists": false}})");
  CHECK(r.matches(json::object()));
  for (const json& caps : {json(), json(3), json("cores"), json::array({engine})}) {
    CHECK_FALSE(r.matches(caps));
  }
  CHECK(r.why_not(json(3)) == "capabilities: expected an object, got 3");
  CHECK(r.why_not(json::array()) == "capabilities: expected an object, got []");
}

TEST_CASE("json() gives back the predicate as it was given", "[requirements]") {
  for (const char* text : {"null", "{}", R"({"cores": {"$gte": 16}, "$or": [{"zone": "ams"}]})"}) {
    const json p = json::parse(text);
    const requirements r = parsed(p);
    CHECK(r.json() == p);
    // A copy (as another engine makes, from the JSON) decides the same.
    const requirements again = parsed(r.json());
    CHECK(again.matches(engine) == r.matches(engine));
  }
}

TEST_CASE("a literal value must equal the capability, by JSON equality", "[requirements]") {
  CHECK(fits(R"({"cores": 16})"));
  CHECK(fits(R"({"cores": 16.0})"));
  CHECK_FALSE(fits(R"({"cores": 8})"));
  CHECK_FALSE(fits(R"({"cores": "16"})"));
  CHECK(fits(R"({"gpu": false})"));
  CHECK_FALSE(fits(R"({"gpu": 0})"));
  CHECK_FALSE(fits(R"({"gpu": null})"));
  CHECK(fits(R"({"zone": "ams"})"));
  CHECK_FALSE(fits(R"({"zone": "AMS"})"));
  // Arrays and objects are values too: equal as a whole, in order.
  CHECK(fits(R"({"tags": ["ssd", "fast"]})"));
  CHECK_FALSE(fits(R"({"tags": ["fast", "ssd"]})"));
  CHECK_FALSE(fits(R"({"tags": "ssd"})"));
  CHECK(fits(R"({"disk": {"kind": "nvme", "gb": 512}})",
             json::parse(R"({"disk": {"gb": 512, "kind": "nvme"}})")));
  CHECK(fits(R"({"meta": {}})", json::parse(R"({"meta": {}})")));
  CHECK_FALSE(fits(R"({"meta": {}})", json::parse(R"({"meta": {"a": 1}})")));
  CHECK(fits(R"({"note": null})", json::parse(R"({"note": null})")));
}

TEST_CASE("every key of a predicate must hold", "[requirements]") {
  CHECK(fits(R"({"cores": 16, "zone": "ams", "gpu": false})"));
  CHECK_FALSE(fits(R"({"cores": 16, "zone": "fra", "gpu": false})"));
}

TEST_CASE("a missing capability fails all but $ne, $nin and $exists false", "[requirements]") {
  CHECK_FALSE(fits(R"({"ram": null})"));
  CHECK_FALSE(fits(R"({"ram": {"$eq": null}})"));
  CHECK_FALSE(fits(R"({"ram": {"$gt": 0}})"));
  CHECK_FALSE(fits(R"({"ram": {"$gte": 0}})"));
  CHECK_FALSE(fits(R"({"ram": {"$lt": 0}})"));
  CHECK_FALSE(fits(R"({"ram": {"$lte": 0}})"));
  CHECK_FALSE(fits(R"({"ram": {"$in": [null, 0]}})"));
  CHECK_FALSE(fits(R"({"ram": {"$contains": 1}})"));
  CHECK_FALSE(fits(R"({"ram": {"$exists": true}})"));
  CHECK(fits(R"({"ram": {"$ne": 64}})"));
  CHECK(fits(R"({"ram": {"$nin": [64]}})"));
  CHECK(fits(R"({"ram": {"$exists": false}})"));
}

TEST_CASE("$eq and $ne compare by JSON equality", "[requirements]") {
  CHECK(fits(R"({"zone": {"$eq": "ams"}})"));
  CHECK_FALSE(fits(R"({"zone": {"$eq": "fra"}})"));
  CHECK(fits(R"({"cores": {"$eq": 16.0}})"));
  CHECK(fits(R"({"tags": {"$eq": ["ssd", "fast"]}})"));
  // $eq takes an object (or anything) as its value, literally.
  CHECK(fits(R"({"disk": {"$eq": {"gb": 512}}})", json::parse(R"({"disk": {"gb": 512}})")));
  CHECK_FALSE(fits(R"({"zone": {"$ne": "ams"}})"));
  CHECK(fits(R"({"zone": {"$ne": "fra"}})"));
  CHECK(fits(R"({"gpu": {"$ne": 0}})"));
  CHECK_FALSE(fits(R"({"cores": {"$ne": 16.0}})"));
}

TEST_CASE("$gt, $gte, $lt and $lte compare numbers numerically", "[requirements]") {
  CHECK(fits(R"({"cores": {"$gt": 15}})"));
  CHECK_FALSE(fits(R"({"cores": {"$gt": 16}})"));
  CHECK(fits(R"({"cores": {"$gte": 16}})"));
  CHECK_FALSE(fits(R"({"cores": {"$gte": 17}})"));
  CHECK(fits(R"({"cores": {"$lt": 17}})"));
  CHECK_FALSE(fits(R"({"cores": {"$lt": 16}})"));
  CHECK(fits(R"({"cores": {"$lte": 16}})"));
  CHECK_FALSE(fits(R"({"cores": {"$lte": 15}})"));
  // Integers against floats, and negative against unsigned.
  CHECK(fits(R"({"cores": {"$gt": 15.5}})"));
  CHECK_FALSE(fits(R"({"cores": {"$gt": 16.0}})"));
  CHECK(fits(R"({"cores": {"$gt": -1}})"));
  CHECK(fits(R"({"load": {"$lt": 0.75}})", json::parse(R"({"load": 0.5})")));
  CHECK(fits(R"({"temp": {"$lt": 0}})", json::parse(R"({"temp": -4})")));
  CHECK_FALSE(fits(R"({"temp": {"$gt": 3}})", json::parse(R"({"temp": -4})")));
  // Integers compare exactly, beyond what a double holds.
  const json big = {{"n", std::numeric_limits<std::uint64_t>::max()}};
  CHECK(fits(R"({"n": {"$gt": 9223372036854775807}})", big));
  CHECK(fits(R"({"n": {"$gt": -9223372036854775808}})", big));
  CHECK(fits(R"({"n": {"$gt": 18446744073709551614}})", big));
  CHECK_FALSE(fits(R"({"n": {"$lt": -1}})", big));
  const json odd = {{"n", std::int64_t{9007199254740993}}};
  CHECK(fits(R"({"n": {"$gt": 9007199254740992}})", odd));
}

TEST_CASE("$gt, $gte, $lt and $lte compare strings lexicographically", "[requirements]") {
  CHECK(fits(R"({"zone": {"$gt": "am"}})"));
  CHECK(fits(R"({"zone": {"$gte": "ams"}})"));
  CHECK_FALSE(fits(R"({"zone": {"$gt": "ams"}})"));
  CHECK(fits(R"({"zone": {"$lt": "b"}})"));
  CHECK(fits(R"({"zone": {"$lte": "ams"}})"));
  CHECK_FALSE(fits(R"({"zone": {"$lt": "ab"}})"));
  // Bytes, not numbers or locale: "10" < "9", "Z" < "a".
  CHECK(fits(R"({"v": {"$lt": "9"}})", json::parse(R"({"v": "10"})")));
  CHECK(fits(R"({"v": {"$lt": "a"}})", json::parse(R"({"v": "Z"})")));
}

TEST_CASE("comparisons across types never match, either way", "[requirements]") {
  for (const char* op : {"$gt", "$gte", "$lt", "$lte"}) {
    INFO(op);
    const auto with = [op](const char* capability, const json& operand) {
      return json{{capability, {{op, operand}}}}.dump();
    };
    CHECK_FALSE(fits(with("cores", "16")));  // a number against a string
    CHECK_FALSE(fits(with("zone", 1)));      // a string against a number
    CHECK_FALSE(fits(with("gpu", 0)));       // a bool is not a number
    CHECK_FALSE(fits(with("gpu", "false")));
    CHECK_FALSE(fits(with("tags", "ssd")));  // nor is an array
    CHECK_FALSE(fits(with("tags", 2)));
    CHECK_FALSE(fits(with("cores", 16), json{{"cores", nullptr}}));
    CHECK_FALSE(fits(with("cores", 16), json{{"cores", {{"n", 16}}}}));
  }
}

TEST_CASE("NaN compares with nothing", "[requirements]") {
  const json caps = {{"x", std::nan("")}};
  CHECK_FALSE(fits(R"({"x": {"$gt": 0}})", caps));
  CHECK_FALSE(fits(R"({"x": {"$lte": 0}})", caps));
  CHECK(fits(R"({"x": {"$exists": true}})", caps));
}

TEST_CASE("$in and $nin test membership by JSON equality", "[requirements]") {
  CHECK(fits(R"({"zone": {"$in": ["fra", "ams"]}})"));
  CHECK_FALSE(fits(R"({"zone": {"$in": ["fra", "lon"]}})"));
  CHECK_FALSE(fits(R"({"zone": {"$in": []}})"));
  CHECK(fits(R"({"cores": {"$in": [8, 16.0]}})"));
  CHECK_FALSE(fits(R"({"cores": {"$in": ["16"]}})"));
  // An array capability is one value: $in does not look inside it.
  CHECK_FALSE(fits(R"({"tags": {"$in": ["ssd"]}})"));
  CHECK(fits(R"({"tags": {"$in": [["ssd", "fast"]]}})"));
  CHECK(fits(R"({"zone": {"$nin": ["fra", "lon"]}})"));
  CHECK_FALSE(fits(R"({"zone": {"$nin": ["fra", "ams"]}})"));
  CHECK(fits(R"({"zone": {"$nin": []}})"));
}

TEST_CASE("$exists tests whether the engine announces a capability", "[requirements]") {
  CHECK(fits(R"({"gpu": {"$exists": true}})"));
  CHECK_FALSE(fits(R"({"gpu": {"$exists": false}})"));
  CHECK(fits(R"({"fpga": {"$exists": false}})"));
  CHECK_FALSE(fits(R"({"fpga": {"$exists": true}})"));
  // A capability announced as null exists.
  CHECK(fits(R"({"fpga": {"$exists": true}})", json::parse(R"({"fpga": null})")));
}

TEST_CASE("$contains tests an array capability for an element", "[requirements]") {
  CHECK(fits(R"({"tags": {"$contains": "ssd"}})"));
  CHECK(fits(R"({"tags": {"$contains": "fast"}})"));
  CHECK_FALSE(fits(R"({"tags": {"$contains": "hdd"}})"));
  CHECK_FALSE(fits(R"({"tags": {"$contains": "SSD"}})"));
  // Only arrays contain: not strings, not objects.
  CHECK_FALSE(fits(R"({"zone": {"$contains": "a"}})"));
  CHECK_FALSE(fits(R"({"disk": {"$contains": "gb"}})", json::parse(R"({"disk": {"gb": 1}})")));
  const json caps = json::parse(R"({"ports": [80, 443, [1, 2], {"a": 1}]})");
  CHECK(fits(R"({"ports": {"$contains": 443.0}})", caps));
  CHECK(fits(R"({"ports": {"$contains": [1, 2]}})", caps));
  CHECK(fits(R"({"ports": {"$contains": {"a": 1}}})", caps));
  CHECK_FALSE(fits(R"({"ports": {"$contains": 1}})", caps));
  CHECK_FALSE(fits(R"({"ports": {"$contains": 1}})", json::parse(R"({"ports": []})")));
}

TEST_CASE("every operator in one object must hold", "[requirements]") {
  CHECK(fits(R"({"cores": {"$gte": 8, "$lt": 32}})"));
  CHECK_FALSE(fits(R"({"cores": {"$gte": 8, "$lt": 16}})"));
  CHECK_FALSE(fits(R"({"cores": {"$gte": 17, "$lt": 32}})"));
  CHECK(fits(R"({"tags": {"$contains": "ssd", "$ne": ["ssd"], "$exists": true}})"));
  CHECK_FALSE(fits(R"({"tags": {"$contains": "ssd", "$nin": [["ssd", "fast"]]}})"));
}

TEST_CASE("$and needs every predicate, $or one, $not none", "[requirements]") {
  CHECK(fits(R"({"$and": [{"cores": {"$gte": 8}}, {"zone": "ams"}]})"));
  CHECK_FALSE(fits(R"({"$and": [{"cores": {"$gte": 8}}, {"zone": "fra"}]})"));
  CHECK(fits(R"({"$and": [{}]})"));
  CHECK(fits(R"({"$or": [{"zone": "fra"}, {"role": "db"}]})"));
  CHECK_FALSE(fits(R"({"$or": [{"zone": "fra"}, {"role": "web"}]})"));
  CHECK(fits(R"({"$or": [{"zone": "fra"}, {}]})"));
  CHECK(fits(R"({"$not": {"gpu": true}})"));
  CHECK_FALSE(fits(R"({"$not": {"gpu": false}})"));
  CHECK_FALSE(fits(R"({"$not": {}})"));
  CHECK(fits(R"({"$not": {"fpga": {"$exists": true}}})"));
  // Combinators sit beside capability keys, and all of them must hold.
  CHECK(fits(R"({"cores": 16, "$or": [{"zone": "fra"}, {"zone": "ams"}], "$not": {"gpu": true}})"));
  CHECK_FALSE(fits(R"({"cores": 8, "$or": [{"zone": "fra"}, {"zone": "ams"}]})"));
  CHECK_FALSE(fits(R"({"cores": 16, "$or": [{"zone": "fra"}, {"zone": "lon"}]})"));
}

TEST_CASE("combinators nest", "[requirements]") {
  const char* p = R"({"$or": [
      {"$and": [{"zone": "ams"}, {"$not": {"role": {"$in": ["web", "cache"]}}}]},
      {"$and": [{"zone": "fra"}, {"gpu": true}]}]})";
  CHECK(fits(p));
  CHECK(fits(p, json::parse(R"({"zone": "fra", "gpu": true})")));
  CHECK_FALSE(fits(p, json::parse(R"({"zone": "fra", "gpu": false})")));
  CHECK_FALSE(fits(p, json::parse(R"({"zone": "ams", "role": "web"})")));
  CHECK(fits(p, json::parse(R"({"zone": "ams"})")));
  CHECK(fits(R"({"$not": {"$not": {"zone": "ams"}}})"));
  CHECK_FALSE(fits(R"({"$not": {"$or": [{"zone": "ams"}, {"gpu": true}]}})"));
}

TEST_CASE("matching never throws, even on odd capabilities", "[requirements]") {
  const requirements r =
      parsed(R"({"name": {"$gt": "a"}, "tags": {"$contains": "x"}, "$not": {"n": {"$lt": 1}}})");
  json caps = {{"name", "\xff\xfe"}, {"tags", {"\xff", "x"}}, {"n", 1}};
  CHECK(r.matches(caps));
  caps["n"] = 0;
  CHECK_FALSE(r.matches(caps));
  CHECK(r.why_not(caps) == R"($not: {"n":{"$lt":1}} holds)");
  caps["tags"] = "\xff";
  CHECK(r.why_not(caps) == "$not: {\"n\":{\"$lt\":1}} holds");
  caps["n"] = 5;
  CHECK(r.why_not(caps) == "tags: \"\xEF\xBF\xBD\" is not an array (must contain \"x\")");
}

// --- bad predicates ---

TEST_CASE("a predicate that is not an object or null is refused", "[requirements]") {
  CHECK(error_of("5") == "requirements: expected an object or null, got 5");
  CHECK(error_of(R"("cores >= 16")") ==
        R"(requirements: expected an object or null, got "cores >= 16")");
  CHECK(error_of(R"([{"cores": 16}])") ==
        R"(requirements: expected an object or null, got [{"cores":16}])");
  CHECK(error_of("true") == "requirements: expected an object or null, got true");
  const auto r = requirements::parse(json(5));
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().describe() == "misuse: requirements: expected an object or null, got 5");
}

TEST_CASE("an unknown operator is named, with the known ones", "[requirements]") {
  CHECK(error_of(R"({"cores": {"$gte2": 16}})") ==
        std::string(R"(requirements.cores: unknown operator "$gte2" )") + all_operators);
  CHECK(error_of(R"({"cores": {"$gte": 8, "$between": [8, 16]}})") ==
        std::string(R"(requirements.cores: unknown operator "$between" )") + all_operators);
  CHECK(error_of(R"({"cores": {"$not": {"$gt": 8}}})") ==
        std::string(R"(requirements.cores: unknown operator "$not" )") + all_operators);
  CHECK(error_of(R"({"cores": {"$": 8}})") ==
        std::string(R"(requirements.cores: unknown operator "$" )") + all_operators);
}

TEST_CASE("an operator object cannot mix operators and plain keys", "[requirements]") {
  CHECK(error_of(R"({"cores": {"$gte": 8, "max": 16}})") ==
        R"(requirements.cores: mixes operators and plain keys ("$gte" and "max"); )"
        "an object is either all operators or a literal value");
  CHECK(error_of(R"({"$or": [{"disk": {"$gt": 1, "$lt": 9, "kind": "ssd", "type": "x"}}]})") ==
        R"(requirements.$or[0].disk: mixes operators and plain keys ("$gt" and "kind"); )"
        "an object is either all operators or a literal value");
}

TEST_CASE("operators refuse operands of the wrong type", "[requirements]") {
  CHECK(error_of(R"({"zone": {"$in": "ams"}})") ==
        R"(requirements.zone.$in: expected an array, got "ams")");
  CHECK(error_of(R"({"zone": {"$nin": {"a": 1}}})") ==
        R"(requirements.zone.$nin: expected an array, got {"a":1})");
  CHECK(error_of(R"({"gpu": {"$exists": 1}})") ==
        "requirements.gpu.$exists: expected true or false, got 1");
  CHECK(error_of(R"({"gpu": {"$exists": "yes"}})") ==
        R"(requirements.gpu.$exists: expected true or false, got "yes")");
  for (const char* op : {"$gt", "$gte", "$lt", "$lte"}) {
    for (const json& bad : {json(true), json(), json::array({1}), json::object({{"n", 1}})}) {
      CHECK(error_of(json{{"cores", {{op, bad}}}}) == "requirements.cores." + std::string(op) +
                                                          ": expected a number or a string, got " +
                                                          bad.dump());
    }
  }
  // $eq, $ne and $contains take any value.
  CHECK(error_of(R"({"x": {"$eq": [1], "$ne": {"a": null}, "$contains": null}})").empty());
}

TEST_CASE("combinators refuse malformed operands", "[requirements]") {
  CHECK(error_of(R"({"$and": {"cores": 16}})") ==
        R"(requirements.$and: expected a non-empty array of predicates, got {"cores":16})");
  CHECK(error_of(R"({"$and": []})") ==
        "requirements.$and: expected a non-empty array of predicates, got []");
  CHECK(error_of(R"({"$and": [{"cores": 16}, "zone"]})") ==
        R"(requirements.$and[1]: expected a predicate object, got "zone")");
  CHECK(error_of(R"({"$and": [null]})") ==
        "requirements.$and[0]: expected a predicate object, got null");
  CHECK(error_of(R"({"$or": 5})") ==
        "requirements.$or: expected a non-empty array of predicates, got 5");
  CHECK(error_of(R"({"$or": []})") ==
        "requirements.$or: expected a non-empty array of predicates, got []");
  CHECK(error_of(R"({"$or": [[{"zone": "ams"}]]})") ==
        R"(requirements.$or[0]: expected a predicate object, got [{"zone":"ams"}])");
  CHECK(error_of(R"({"$not": [{"gpu": true}]})") ==
        R"(requirements.$not: expected a predicate object, got [{"gpu":true}])");
  CHECK(error_of(R"({"$not": null})") ==
        "requirements.$not: expected a predicate object, got null");
}

TEST_CASE("keys starting with $ outside an operator object must be combinators", "[requirements]") {
  CHECK(error_of(R"({"$nor": [{"gpu": true}]})") ==
        R"(requirements: unknown combinator "$nor" (known: $and, $or, $not))");
  CHECK(error_of(R"({"$gte": 16})") ==
        R"(requirements: operator "$gte" needs a capability name, as in {"cores": {"$gte": ...}})");
}

TEST_CASE("errors inside combinators give the whole path", "[requirements]") {
  CHECK(error_of(R"({"$and": [{"zone": "ams"}, {"$or": [{"cores": {"$gte2": 1}}]}]})") ==
        std::string(R"(requirements.$and[1].$or[0].cores: unknown operator "$gte2" )") +
            all_operators);
  CHECK(error_of(R"({"$not": {"tags": {"$in": 1}}})") ==
        "requirements.$not.tags.$in: expected an array, got 1");
  CHECK(error_of(R"({"$or": [{"$not": {"$xor": 1}}]})") ==
        R"(requirements.$or[0].$not: unknown combinator "$xor" (known: $and, $or, $not))");
}

TEST_CASE("predicates nest only so deep", "[requirements]") {
  const std::size_t most = requirements::max_depth - 1;
  CHECK(parsed(nested_not(most)).matches(engine) == (most % 2 == 0));
  const std::string too_deep = "requirements: nests objects and arrays deeper than 64 levels";
  CHECK(error_of(nested_not(most + 1)) == too_deep);
  // Literal values count too, and a hostile peer cannot overflow the stack.
  CHECK(error_of(json{{"x", json::object()}}).empty());
  json p = json::object();
  p["x"] = deep_array(200'000);
  CHECK(error_of(p) == too_deep);
  CHECK(error_of(nested_not(200'000)) == too_deep);
}

TEST_CASE("why_not prints no capability too deep to print", "[requirements]") {
  json caps = json::object();
  caps["x"] = deep_array(200'000);
  const requirements r = parsed(R"({"x": [1]})");
  CHECK_FALSE(r.matches(caps));
  CHECK(r.why_not(caps) == "x: (a value nested deeper than 64 levels) is not [1]");
}

TEST_CASE("long values are cut short in messages", "[requirements]") {
  const std::string long_zone(500, 'z');
  const std::string e = error_of(json{{"zone", {{"$in", long_zone}}}});
  CHECK(e.size() < 150);
  CHECK(e.starts_with("requirements.zone.$in: expected an array, got \"zzzz"));
  CHECK(e.ends_with("zzz..."));
  // Never in the middle of a UTF-8 character.
  std::string euros;
  for (int i = 0; i < 100; ++i) euros += "\xE2\x82\xAC";
  const std::string w = why_not(json{{"zone", euros}}.dump());
  CHECK(w.ends_with("\xE2\x82\xAC..."));
}

// --- why_not ---

TEST_CASE("why_not is empty when the engine fits", "[requirements]") {
  CHECK(why_not(R"({"cores": {"$gte": 16}, "zone": "ams"})").empty());
  CHECK(why_not("{}").empty());
  CHECK(why_not("null", json(1)).empty());
}

TEST_CASE("why_not names a missing capability", "[requirements]") {
  for (const char* p : {R"({"fpga": true})", R"({"fpga": {"$eq": 1}})", R"({"fpga": {"$gt": 1}})",
                        R"({"fpga": {"$lte": "x"}})", R"({"fpga": {"$in": [1]}})",
                        R"({"fpga": {"$exists": true}})", R"({"fpga": {"$contains": 1}})"}) {
    CHECK(why_not(p) == "fpga: missing");
  }
}

TEST_CASE("why_not says how a field test fails", "[requirements]") {
  CHECK(why_not(R"({"cores": 32})") == "cores: 16 is not 32");
  CHECK(why_not(R"({"zone": {"$eq": "fra"}})") == R"(zone: "ams" is not "fra")");
  CHECK(why_not(R"({"zone": {"$ne": "ams"}})") == R"(zone: must not be "ams")");
  CHECK(why_not(R"({"cores": {"$gte": 32}})") == "cores: 16 is not >= 32");
  CHECK(why_not(R"({"cores": {"$gt": 16}})") == "cores: 16 is not > 16");
  CHECK(why_not(R"({"cores": {"$lt": 8}})") == "cores: 16 is not < 8");
  CHECK(why_not(R"({"cores": {"$lte": 8.5}})") == "cores: 16 is not <= 8.5");
  CHECK(why_not(R"({"zone": {"$lt": "ab"}})") == R"(zone: "ams" is not < "ab")");
  CHECK(why_not(R"({"zone": {"$in": ["fra", "lon"]}})") ==
        R"(zone: "ams" is not one of ["fra","lon"])");
  CHECK(why_not(R"({"zone": {"$nin": ["ams", "lon"]}})") ==
        R"(zone: "ams" is one of the excluded ["ams","lon"])");
  CHECK(why_not(R"({"gpu": {"$exists": false}})") == "gpu: present, must be missing");
  CHECK(why_not(R"({"tags": {"$contains": "hdd"}})") ==
        R"(tags: ["ssd","fast"] does not contain "hdd")");
  CHECK(why_not(R"({"zone": {"$contains": "a"}})") ==
        R"(zone: "ams" is not an array (must contain "a"))");
}

TEST_CASE("why_not says when types do not compare", "[requirements]") {
  CHECK(why_not(R"({"cores": {"$gte": "8"}})") ==
        R"(cores: 16 is not >= "8" (a number does not compare with a string))");
  CHECK(why_not(R"({"zone": {"$lt": 3}})") ==
        R"(zone: "ams" is not < 3 (a string does not compare with a number))");
  CHECK(why_not(R"({"gpu": {"$gt": 0}})") ==
        "gpu: false is not > 0 (a bool does not compare with a number)");
  CHECK(why_not(R"({"tags": {"$gt": "a"}})") ==
        R"(tags: ["ssd","fast"] is not > "a" (an array does not compare with a string))");
  CHECK(why_not(R"({"x": {"$gt": 1}})", json::parse(R"({"x": null})")) ==
        "x: null is not > 1 (null does not compare with a number)");
  CHECK(why_not(R"({"x": {"$gt": 1}})", json::parse(R"({"x": {}})")) ==
        "x: {} is not > 1 (an object does not compare with a number)");
}

TEST_CASE("why_not names the first failing clause, in key order", "[requirements]") {
  // Objects keep their keys sorted: "cores" is tested before "zone".
  CHECK(why_not(R"({"zone": "fra", "cores": {"$gte": 32}})") == "cores: 16 is not >= 32");
  CHECK(why_not(R"({"zone": "fra", "cores": {"$gte": 8}})") == R"(zone: "ams" is not "fra")");
  CHECK(why_not(R"({"cores": {"$lt": 8, "$gte": 32}})") == "cores: 16 is not >= 32");
  CHECK(why_not(R"({"cores": {"$lt": 8, "$gte": 8}})") == "cores: 16 is not < 8");
}

TEST_CASE("why_not explains combinators", "[requirements]") {
  CHECK(why_not(R"({"$and": [{"zone": "ams"}, {"cores": 8}, {"gpu": true}]})") ==
        "cores: 16 is not 8");
  CHECK(why_not(R"({"$or": [{"zone": "fra"}, {"cores": {"$gt": 32}}, {"fpga": true}]})") ==
        R"($or: no alternative holds (zone: "ams" is not "fra"; cores: 16 is not > 32; )"
        "fpga: missing)");
  CHECK(why_not(R"({"$or": [{"$and": [{"zone": "ams"}, {"gpu": true}]}, {"role": "web"}]})") ==
        R"($or: no alternative holds (gpu: false is not true; role: "db" is not "web"))");
  CHECK(why_not(R"({"$not": {"zone": "ams", "gpu": false}})") ==
        R"($not: {"gpu":false,"zone":"ams"} holds)");
  CHECK(why_not(R"({"$not": {"$not": {"gpu": true}}})") == R"($not: {"$not":{"gpu":true}} holds)");
  CHECK(why_not(R"({"cores": 16, "$not": {"role": "db"}})") == R"($not: {"role":"db"} holds)");
}
