#include <catch2/catch.hpp>

#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "remote/frame.hpp"
#include "troupe/troupe.hpp"
#include "troupe/wire.hpp"

using troupe::address;
namespace fr = troupe::internal::frame;
using troupe::internal::envelope;
using troupe::internal::make_envelope;

namespace {

struct point {
  int x, y;
};
struct order {
  std::string item;
  int qty = 0;
};
void to_json(nlohmann::json& j, const order& o) { j = {{"item", o.item}, {"qty", o.qty}}; }
void from_json(const nlohmann::json& j, order& o) {
  o.item = j.at("item").get<std::string>();
  o.qty = j.at("qty").get<int>();
}
struct never_registered {
  int v;
};
struct registered_elsewhere {
  int v;
};

void register_test_types() {
  troupe::register_message<point>("test.point");
  troupe::register_message<order>("test.order");
}

/// What arrived; `name` is copied, as incoming::type_name points into the
/// reader, which ends here.
struct arrived : fr::incoming {
  std::string name;
};

std::vector<arrived> read_all(const std::string& bytes, std::string& error,
                              std::size_t max_frame = fr::default_max_frame,
                              std::size_t chunk = 0) {
  fr::reader r(max_frame);
  std::vector<arrived> got;
  std::mt19937 rng(7);
  std::size_t at = 0;
  while (at < bytes.size() && error.empty()) {
    std::size_t n = chunk ? chunk : 1 + rng() % 64;
    n = std::min(n, bytes.size() - at);
    r.feed(reinterpret_cast<const std::byte*>(bytes.data() + at), n);
    at += n;
    error = r.drain(
        [&](fr::incoming&& m) {
          arrived a{m, std::string(m.type_name)};
          a.type_name = {};
          got.push_back(std::move(a));
        },
        [](fr::kind, std::string_view) {});
  }
  return got;
}

void free_all(std::vector<arrived>& v) {
  for (auto& m : v) {
    if (m.e) troupe::internal::destroy_envelope(m.e);
  }
}

}  // namespace

TEST_CASE("messages cross the wire by name and come back equal, however the bytes are cut",
          "[wire]") {
  register_test_types();
  const address a(1, 0, 5, 1), b(2, 1, 9, 3);
  fr::writer w;
  std::vector<envelope*> sent = {
      make_envelope(point{3, -4}, a, b),
      make_envelope(order{"tea", 12}, b, a),
      make_envelope(std::string("raw bytes \0 inside", 18), a, b),
      make_envelope(42, a, b),
      make_envelope(troupe::internal::ask_failure{troupe::errc::timeout, "late"}, b, a),
      make_envelope(point{7, 8}, a, b),
  };
  sent[4]->request = 77;
  sent[4]->flags |= troupe::internal::flag_reply;
  for (envelope* e : sent) REQUIRE(w.add(*e));
  w.heartbeat();
  const std::string bytes = w.take();
  std::string error;
  auto got = read_all(bytes, error);
  REQUIRE(error.empty());
  REQUIRE(got.size() == sent.size());
  CHECK(got[0].e->as<point>().x == 3);
  CHECK(got[0].e->as<point>().y == -4);
  CHECK(got[0].target == b);
  CHECK(got[0].sender == a);
  CHECK(got[1].e->as<order>().item == "tea");
  CHECK(got[1].e->as<order>().qty == 12);
  CHECK(got[2].e->as<std::string>() == std::string("raw bytes \0 inside", 18));
  CHECK(got[3].e->as<int>() == 42);
  CHECK(got[4].reply);
  CHECK(got[4].e->is_reply());
  CHECK(got[4].request == 77);
  CHECK(got[4].e->as<troupe::internal::ask_failure>().text == "late");
  CHECK(got[5].name == "test.point");
  free_all(got);
  for (envelope* e : sent) troupe::internal::destroy_envelope(e);
}

TEST_CASE("a message of a type the receiver does not know arrives without a body, by name",
          "[wire]") {
  troupe::register_message<registered_elsewhere>("test.elsewhere");
  fr::writer w;
  envelope* e = make_envelope(registered_elsewhere{1}, address(1, 0, 1, 1), address(2, 0, 1, 1));
  REQUIRE(w.add(*e));
  std::string bytes = w.take();
  // The receiver knows no such name: rename it in flight to one nobody has.
  const auto at = bytes.find("test.elsewhere");
  REQUIRE(at != std::string::npos);
  bytes.replace(at, 14, "test.elsewhat!");
  std::string error;
  auto got = read_all(bytes, error);
  REQUIRE(error.empty());
  REQUIRE(got.size() == 1);
  CHECK(got[0].e == nullptr);
  CHECK(got[0].name == "test.elsewhat!");
  troupe::internal::destroy_envelope(e);
  // And a type never registered cannot be sent at all.
  envelope* n = make_envelope(never_registered{1}, address{}, address{});
  CHECK(!w.add(*n));
  troupe::internal::destroy_envelope(n);
}

TEST_CASE("malformed frames are errors that say what is wrong", "[wire]") {
  register_test_types();
  auto frame = [](std::uint8_t kind, const std::string& body) {
    std::string f;
    const auto n = static_cast<std::uint32_t>(body.size());
    for (int i = 0; i < 4; ++i) f.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    f.push_back(static_cast<char>(kind));
    return f + body;
  };
  auto error_of = [](const std::string& bytes, std::size_t max_frame = fr::default_max_frame) {
    std::string error;
    auto got = read_all(bytes, error, max_frame, bytes.size() + 1);
    free_all(got);
    return error;
  };
  CHECK(error_of(frame(1, std::string(100, 'x')), 64) ==
        "frame of 100 bytes exceeds max_frame (64)");
  CHECK(error_of(std::string("\xff\xff\xff\x7f\x01", 5)).find("exceeds max_frame") !=
        std::string::npos);
  CHECK(error_of(frame(9, "")) == "unknown frame kind 9");
  CHECK(error_of(frame(1, "\x07")) == "unknown record tag 7");
  CHECK(error_of(frame(1, std::string("\x01\x01\x00", 3))) == "truncated type definition");
  CHECK(error_of(frame(1, std::string("\x01\x01\x00\x09\x00"
                                      "abc",
                                      8))) == "truncated type name");
  CHECK(error_of(frame(1, std::string("\x01\x02\x00\x01\x00"
                                      "a",
                                      6))) == "type id 2 defined out of order");
  CHECK(error_of(frame(1, std::string("\x02\x01\x00", 3))) == "truncated message record");
  std::string undefined("\x02\x05\x00\x00", 4);
  undefined += std::string(16 + 16 + 8 + 4, '\0');
  CHECK(error_of(frame(1, undefined)) == "message of type id 5, which was never defined");
  // A point is 8 bytes: 3 is a bad payload; 1000 overruns the frame.
  std::string define("\x01\x01\x00\x0a\x00test.point", 15);
  std::string msg("\x02\x01\x00\x08", 4);  // target, sender and a request id
  msg += std::string(16 + 16 + 8, '\0');
  CHECK(error_of(frame(1, define + std::string("\x02\x01\x00\x20", 4))) ==
        "unknown message flags 32");
  CHECK(error_of(frame(1, define + std::string("\x02\x01\x00\x02", 4) + std::string(20, '\0'))) ==
        "a message refers to a previous one, but it is the first of its frame");
  CHECK(error_of(frame(1, define + msg + std::string("\x08\x00\x00\x00", 4) + std::string(8, 'p') +
                              std::string("\x02\x01\x00\x06\x08", 5))) ==
        "truncated message record");
  CHECK(error_of(frame(1, define + msg + std::string("\x03\x00\x00\x00xyz", 7))) ==
        "bad payload for test.point: expected 8 bytes, got 3");
  CHECK(error_of(frame(1, define + msg + std::string("\xe8\x03\x00\x00xyz", 7))) ==
        "payload of 1000 bytes overruns its frame");
  // Garbage CBOR for a JSON type.
  std::string define_order("\x01\x01\x00\x0a\x00test.order", 15);
  CHECK(error_of(frame(1, define_order + msg + std::string("\x02\x00\x00\x00\xff\xff", 6)))
            .rfind("bad payload for test.order: ", 0) == 0);
}

TEST_CASE("a name belongs to one type", "[wire]") {
  register_test_types();
  CHECK_NOTHROW(troupe::register_message<point>("test.point"));  // the same again
  CHECK_THROWS_WITH(troupe::register_message<never_registered>("test.point"),
                    Catch::Contains("'test.point' is already registered"));
  CHECK_THROWS_WITH(troupe::register_message<point>("test.point2"),
                    Catch::Contains("already registered as 'test.point'"));
}
