#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "kv/resp.hpp"

using troupe::kv::parse_int64;
using troupe::kv::parse_status;
using troupe::kv::resp_parser;

namespace {

/// Parses every whole command in `in`; the last status tells how it ended.
struct parsed {
  std::vector<std::vector<std::string>> commands;
  parse_status last = parse_status::incomplete;
  std::string error;
  std::size_t consumed = 0;
};

parsed parse_all(resp_parser& p, const std::string& in) {
  parsed out;
  std::vector<std::string_view> args;
  for (int guard = 0; guard < 100000; ++guard) {
    auto r = p.next(std::string_view(in).substr(out.consumed), args);
    out.last = r.status;
    if (r.status == parse_status::incomplete) break;
    if (r.status == parse_status::error) {
      out.error = r.error;
      break;
    }
    out.consumed += r.consumed;
    if (r.status == parse_status::command) out.commands.emplace_back(args.begin(), args.end());
  }
  return out;
}

}  // namespace

TEST_CASE("the RESP parser takes several pipelined commands from one buffer", "[kv][resp]") {
  resp_parser p;
  auto r =
      parse_all(p, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv a b\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  REQUIRE(r.commands.size() == 2);
  CHECK(r.commands[0] == std::vector<std::string>{"SET", "k", "v a b"});
  CHECK(r.commands[1] == std::vector<std::string>{"GET", "k"});
  CHECK(r.last == parse_status::incomplete);
}

TEST_CASE("the RESP parser waits for a command split at any byte, then takes it whole",
          "[kv][resp]") {
  const std::string cmd = "*3\r\n$3\r\nSET\r\n$11\r\nkey\r\nwith\r\n\r\n$0\r\n\r\n";
  for (std::size_t cut = 0; cut < cmd.size(); ++cut) {
    resp_parser p;
    auto partial = parse_all(p, cmd.substr(0, cut));
    INFO("cut at " << cut);
    CHECK(partial.commands.empty());
    CHECK(partial.last == parse_status::incomplete);
    CHECK(partial.consumed == 0);
    auto whole = parse_all(p, cmd);
    REQUIRE(whole.commands.size() == 1);
    CHECK(whole.commands[0] == std::vector<std::string>{"SET", "key\r\nwith\r\n", ""});
    CHECK(whole.consumed == cmd.size());
  }
}

TEST_CASE("binary-safe arguments keep every byte, zeros included", "[kv][resp]") {
  resp_parser p;
  std::string value("a\0b\xff", 4);
  auto r = parse_all(p, "*2\r\n$4\r\nECHO\r\n$4\r\n" + value + "\r\n");
  REQUIRE(r.commands.size() == 1);
  CHECK(r.commands[0][1] == value);
}

TEST_CASE("inline commands split like redis-server's, quotes and escapes included", "[kv][resp]") {
  resp_parser p;
  auto r =
      parse_all(p, "PING\r\nSET \"a b\" \"x\\x41\\n\"\n  \r\nGET 'it\\'s'\r\n\r\nECHO \"\"\r\n");
  REQUIRE(r.commands.size() == 4);
  CHECK(r.commands[0] == std::vector<std::string>{"PING"});
  CHECK(r.commands[1] == std::vector<std::string>{"SET", "a b", "xA\n"});
  CHECK(r.commands[2] == std::vector<std::string>{"GET", "it's"});
  CHECK(r.commands[3] == std::vector<std::string>{"ECHO", ""});
}

TEST_CASE("empty arrays and empty lines are skipped, as Redis does", "[kv][resp]") {
  resp_parser p;
  auto r = parse_all(p, "*0\r\n*-1\r\n\r\n*1\r\n$4\r\nPING\r\n");
  REQUIRE(r.commands.size() == 1);
  CHECK(r.commands[0] == std::vector<std::string>{"PING"});
}

TEST_CASE("garbage is a protocol error with Redis's words", "[kv][resp]") {
  struct bad {
    std::string input, error;
  };
  const std::vector<bad> cases = {
      {"*abc\r\n", "invalid multibulk length"},
      {"*3000000000\r\n", "invalid multibulk length"},
      {"*+1\r\n", "invalid multibulk length"},
      {"*2\r\n$3\r\nGET\r\n+x\r\n", "expected '$', got '+'"},
      {"*1\r\n:1\r\n", "expected '$', got ':'"},
      {"*1\r\n$-1\r\n", "invalid bulk length"},
      {"*1\r\n$abc\r\n", "invalid bulk length"},
      {"*1\r\n$600000000\r\n", "invalid bulk length"},
      {"GET \"a\r\n", "unbalanced quotes in request"},
      {"GET 'a'b\r\n", "unbalanced quotes in request"},
      {std::string(70000, 'a'), "too big inline request"},
      {"*" + std::string(70000, '1'), "too big mbulk count string"},
      {"*1\r\n$" + std::string(70000, '1'), "too big bulk count string"},
  };
  for (const auto& c : cases) {
    resp_parser p;
    INFO(c.input.substr(0, 40));
    auto r = parse_all(p, c.input);
    CHECK(r.last == parse_status::error);
    CHECK(r.error == c.error);
  }
}

TEST_CASE("a good command before garbage is parsed before the error", "[kv][resp]") {
  resp_parser p;
  auto r = parse_all(p, "*1\r\n$4\r\nPING\r\n*x\r\n");
  CHECK(r.commands.size() == 1);
  CHECK(r.last == parse_status::error);
}

TEST_CASE("integers are read as strictly as Redis's string2ll", "[kv][resp]") {
  std::int64_t v = 0;
  CHECK((parse_int64("0", v) && v == 0));
  CHECK((parse_int64("-42", v) && v == -42));
  CHECK((parse_int64("9223372036854775807", v) && v == INT64_MAX));
  CHECK((parse_int64("-9223372036854775808", v) && v == INT64_MIN));
  for (const char* bad : {"", "-", "+1", "007", "-0", " 1", "1 ", "1a", "9223372036854775808",
                          "-9223372036854775809", "99999999999999999999999"}) {
    INFO(bad);
    CHECK_FALSE(parse_int64(bad, v));
  }
}
