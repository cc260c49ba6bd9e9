#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "kv_client.hpp"

using namespace std::chrono_literals;
using troupe::kv::test::bulk;
using troupe::kv::test::kv_process;
using troupe::kv::test::raw_client;
using troupe::kv::test::resp;

namespace {

/// A session of every command, as redis-cli reads it from its standard
/// input, and what redis-server 7.0 prints for it (taken from a real one).
const std::string session_script = R"(FLUSHALL
PING
PING "hello world"
ECHO "a b c"
GET missing
SET k1 v1
GET k1
SET k1 v2 XX
GET k1
SET k1 v3 NX
SET k2 v2 NX
SET k2 v9 XX GET
GET k2
SET k3 v PX 100000
TTL k3
SET k4 v EX 100
TTL k4
SET k4 w KEEPTTL
TTL k4
SET k4 x
TTL k4
SET k5 v EX 0
SET k5 v EX abc
SET k5 v EX
SET k5 v NX XX
SET k5 v BOGUS
INCR counter
INCR counter
INCRBY counter 40
INCRBY counter -2
DECR counter
DECRBY counter 10
INCRBY counter notanumber
INCR k1
SET big 9223372036854775807
INCR big
MSET m1 a m2 b m3 c
MGET m1 m2 missing m3
MSET m1
DEL m1 m2 missing
EXISTS m1 m2 m3 m3 k1
EXPIRE k1 100
TTL k1
EXPIRE k1 200 NX
EXPIRE k1 200 XX
TTL k1
EXPIRE missing 10
EXPIRE k1 abc
EXPIRE k1 10 BAD
TTL missing
TTL k2
EXPIRE k2 -1
EXISTS k2
DBSIZE
GET
SET onlykey
MGET
DEL
EXISTS
INCRBY counter
TTL
DBSIZE extra
ECHO
NOSUCHCOMMAND arg1 arg2
nosuch
FLUSHALL
DBSIZE
)";
const std::string session_expected = R"(OK
PONG
hello world
a b c

OK
v1
OK
v2

OK
v2
v9
OK
100
OK
100
OK
100
OK
-1
ERR invalid expire time in 'set' command

ERR value is not an integer or out of range

ERR syntax error

ERR syntax error

ERR syntax error

1
2
42
40
39
29
ERR value is not an integer or out of range

ERR value is not an integer or out of range

OK
ERR increment or decrement would overflow

OK
a
b

c
ERR wrong number of arguments for 'mset' command

2
3
1
100
0
1
200
0
ERR value is not an integer or out of range

ERR Unsupported option BAD

-2
-1
1
0
6
ERR wrong number of arguments for 'get' command

ERR wrong number of arguments for 'set' command

ERR wrong number of arguments for 'mget' command

ERR wrong number of arguments for 'del' command

ERR wrong number of arguments for 'exists' command

ERR wrong number of arguments for 'incrby' command

ERR wrong number of arguments for 'ttl' command

ERR wrong number of arguments for 'dbsize' command

ERR wrong number of arguments for 'echo' command

ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'arg1' 'arg2' 

ERR unknown command 'nosuch', with args beginning with: 

OK
0
)";

std::string require_redis_cli() {
  std::string cli = troupe::kv::test::redis_cli_path();
  if (cli.empty()) {
    FAIL("redis-cli is not installed: run scripts/setup.sh (Debian package redis-tools)");
  }
  return cli;
}

std::string write_temp(const std::string& content) {
  char path[] = "/tmp/troupe-kv-test-XXXXXX";
  const int fd = ::mkstemp(path);
  ::close(fd);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

/// The server ends on SIGTERM, cleanly (under AddressSanitizer: without leaks).
void require_clean_exit(kv_process& kv) {
  auto status = kv.terminate();
  INFO(kv.child().output());
  REQUIRE(status.has_value());
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}

}  // namespace

TEST_CASE("redis-cli runs a session of every command and prints what redis-server prints",
          "[kv][server]") {
  const std::string cli = require_redis_cli();
  kv_process kv;
  REQUIRE(kv.port() != 0);
  const std::string script = write_temp(session_script);
  const std::string out =
      troupe::kv::test::run_shell(cli + " -p " + std::to_string(kv.port()) + " < " + script);
  std::remove(script.c_str());
  CHECK(out == session_expected);
  // Arguments on redis-cli's command line, too.
  const std::string base = cli + " -p " + std::to_string(kv.port()) + " ";
  CHECK(troupe::kv::test::run_shell(base + "SET greeting 'hello there'") == "OK\n");
  CHECK(troupe::kv::test::run_shell(base + "GET greeting") == "hello there\n");
  CHECK(troupe::kv::test::run_shell(base + "CONFIG GET appendonly") == "appendonly\nno\n");
  require_clean_exit(kv);
}

TEST_CASE("10,000 pipelined commands in one write are all answered, in order", "[kv][server]") {
  kv_process kv;
  REQUIRE(kv.port() != 0);
  raw_client c(kv.port());
  REQUIRE(c.connected());
  std::string request, expected;
  for (int i = 0; i < 5000; ++i) {
    const std::string k = "key:" + std::to_string(i), v = "value:" + std::to_string(i * 7);
    request += resp({"SET", k, v});
    expected += "+OK\r\n";
  }
  for (int i = 0; i < 5000; ++i) {
    request += resp({"GET", "key:" + std::to_string(i)});
    expected += bulk("value:" + std::to_string(i * 7));
  }
  std::thread writer([&] { c.send(request); });  // the replies flow back meanwhile
  const std::string got = c.read(expected.size());
  writer.join();
  CHECK(got == expected);
  // Commands over keys of every store, with replies combined in order.
  std::vector<std::string> mget = {"MGET"};
  std::string values = "*400\r\n";
  for (int i = 0; i < 400; ++i) {
    mget.push_back("key:" + std::to_string(i));
    values += bulk("value:" + std::to_string(i * 7));
  }
  CHECK(c.roundtrip(resp(mget) + resp({"DBSIZE"}) + resp({"EXISTS", "key:1", "key:2", "nope"}) +
                        resp({"DEL", "key:1", "key:2", "key:3", "nope"}) + resp({"DBSIZE"}),
                    values + ":5000\r\n:2\r\n:3\r\n:4997\r\n") ==
        values + ":5000\r\n:2\r\n:3\r\n:4997\r\n");
  require_clean_exit(kv);
}

TEST_CASE("commands split over many small writes are answered once whole", "[kv][server]") {
  kv_process kv;
  REQUIRE(kv.port() != 0);
  raw_client c(kv.port());
  REQUIRE(c.connected());
  const std::string request = resp({"SET", "split", "across writes"}) + resp({"GET", "split"}) +
                              "PING\r\nECHO \"inline too\"\r\n";
  for (char ch : request) {
    REQUIRE(c.send(std::string(1, ch)));
    std::this_thread::sleep_for(1ms);
  }
  const std::string expected = "+OK\r\n" + bulk("across writes") + "+PONG\r\n" + bulk("inline too");
  CHECK(c.read(expected.size()) == expected);
  require_clean_exit(kv);
}

TEST_CASE("redis-cli --pipe loads 20,000 keys without an error", "[kv][server]") {
  const std::string cli = require_redis_cli();
  kv_process kv;
  REQUIRE(kv.port() != 0);
  std::string load;
  for (int i = 0; i < 20000; ++i) load += resp({"SET", "p:" + std::to_string(i), "v"});
  const std::string file = write_temp(load);
  const std::string out =
      troupe::kv::test::run_shell(cli + " -p " + std::to_string(kv.port()) + " --pipe < " + file);
  std::remove(file.c_str());
  INFO(out);
  CHECK(out.find("errors: 0, replies: 20000") != std::string::npos);
  CHECK(troupe::kv::test::run_shell(cli + " -p " + std::to_string(kv.port()) + " DBSIZE") ==
        "20000\n");
  require_clean_exit(kv);
}

TEST_CASE("a protocol error is answered as Redis does and closes that connection only",
          "[kv][server]") {
  kv_process kv;
  REQUIRE(kv.port() != 0);
  raw_client other(kv.port());
  REQUIRE(other.connected());
  REQUIRE(other.roundtrip(resp({"SET", "x", "1"}), "+OK\r\n") == "+OK\r\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {resp({"PING"}) + "*x\r\n", "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"},
      {"*2\r\n$3\r\nGET\r\n+x\r\n", "-ERR Protocol error: expected '$', got '+'\r\n"},
      {"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
      {"SET \"a b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
      {resp({"SET", "y", "2"}) + std::string(70000, 'z'),
       "+OK\r\n-ERR Protocol error: too big inline request\r\n"},
  };
  for (const auto& [request, reply] : cases) {
    raw_client c(kv.port());
    REQUIRE(c.connected());
    CHECK(c.roundtrip(request, reply) == reply);
    CHECK(c.closed_by_peer());
  }
  CHECK(other.roundtrip(resp({"GET", "y"}) + resp({"QUIT"}), bulk("2") + "+OK\r\n") ==
        bulk("2") + "+OK\r\n");
  CHECK(other.closed_by_peer());
  require_clean_exit(kv);
}

TEST_CASE("clients that disconnect mid-command or mid-pipeline leave the server serving others",
          "[kv][server]") {
  kv_process kv;
  REQUIRE(kv.port() != 0);
  const std::string set = resp({"SET", "half", "never stored"});
  for (std::size_t cut = 1; cut < set.size(); cut += 3) {
    raw_client c(kv.port());
    REQUIRE(c.connected());
    REQUIRE(c.send(set.substr(0, cut)));
  }  // each closes with its command half written
  // A client that writes a big pipeline and goes without reading a reply.
  for (int round = 0; round < 20; ++round) {
    raw_client c(kv.port());
    REQUIRE(c.connected());
    std::string pipeline;
    for (int i = 0; i < 2000; ++i) pipeline += resp({"INCR", "gone:" + std::to_string(i % 7)});
    c.send(pipeline);
  }
  raw_client c(kv.port());
  REQUIRE(c.connected());
  CHECK(c.roundtrip(resp({"GET", "half"}) + resp({"PING"}), "$-1\r\n+PONG\r\n") ==
        "$-1\r\n+PONG\r\n");
  CHECK(kv.alive());
  require_clean_exit(kv);
}

TEST_CASE("1,000 clients connected at once are each answered correctly", "[kv][server]") {
  constexpr int clients = 1000;
  REQUIRE(troupe::kv::test::raise_descriptor_limit() > clients + 64);
  kv_process kv;
  REQUIRE(kv.port() != 0);
  std::vector<std::unique_ptr<raw_client>> cs;
  for (int i = 0; i < clients; ++i) {
    cs.push_back(std::make_unique<raw_client>(kv.port()));
    REQUIRE(cs.back()->connected());
  }
  // Every client has a request in flight before any reply is read.
  for (int i = 0; i < clients; ++i) {
    REQUIRE(cs[i]->send(resp({"SET", "c:" + std::to_string(i), "v" + std::to_string(i)})));
  }
  int ok = 0;
  for (int i = 0; i < clients; ++i) ok += cs[i]->read(5) == "+OK\r\n";
  CHECK(ok == clients);
  for (int i = 0; i < clients; ++i) {
    REQUIRE(cs[i]->send(resp({"GET", "c:" + std::to_string(clients - 1 - i)})));
  }
  int right = 0;
  for (int i = 0; i < clients; ++i) {
    const std::string v = "v" + std::to_string(clients - 1 - i);
    right += cs[i]->read(bulk(v).size()) == bulk(v);
  }
  CHECK(right == clients);
  raw_client last(kv.port());
  CHECK(last.roundtrip(resp({"DBSIZE"}), ":1000\r\n") == ":1000\r\n");
  require_clean_exit(kv);  // with the 1,000 still connected
}

TEST_CASE("expired keys vanish when read and are swept when not", "[kv][server]") {
  kv_process kv;
  REQUIRE(kv.port() != 0);
  raw_client c(kv.port());
  REQUIRE(c.connected());
  std::string request, expected;
  for (int i = 0; i < 200; ++i) {
    request += resp({"SET", "t:" + std::to_string(i), "v", "PX", "50"});
    expected += "+OK\r\n";
  }
  request += resp({"SET", "keep", "v"}) + resp({"SET", "read", "v"}) +
             resp({"PEXPIRE", "read", "50"}) + resp({"DBSIZE"});
  expected += "+OK\r\n+OK\r\n:1\r\n:202\r\n";
  REQUIRE(c.roundtrip(request, expected) == expected);
  std::this_thread::sleep_for(400ms);
  CHECK(c.roundtrip(resp({"GET", "read"}) + resp({"TTL", "t:3"}), "$-1\r\n:-2\r\n") ==
        "$-1\r\n:-2\r\n");
  // Nothing read the other keys: the sweep took them.
  CHECK(c.roundtrip(resp({"DBSIZE"}), ":1\r\n") == ":1\r\n");
  // Times left, in milliseconds and in rounded seconds.
  REQUIRE(c.roundtrip(resp({"SET", "long", "v", "PX", "100000"}), "+OK\r\n") == "+OK\r\n");
  REQUIRE(c.send(resp({"PTTL", "long"}) + resp({"TTL", "long"}) + resp({"PTTL", "keep"})));
  const std::string pttl = c.read_line();
  REQUIRE(pttl.size() > 1);
  const long ms = std::stol(pttl.substr(1));
  CHECK(ms > 90000);
  CHECK(ms <= 100000);
  CHECK(c.read_line() == ":100");
  CHECK(c.read_line() == ":-1");
  require_clean_exit(kv);
}

TEST_CASE("one shard or four: the same answers", "[kv][server]") {
  for (unsigned shards : {1u, 4u}) {
    kv_process kv(shards);
    REQUIRE(kv.port() != 0);
    raw_client c(kv.port());
    REQUIRE(c.connected());
    std::vector<std::string> mset = {"MSET"}, mget = {"MGET"};
    std::string values = "*50\r\n";
    for (int i = 0; i < 50; ++i) {
      mset.push_back("s:" + std::to_string(i));
      mset.push_back(std::to_string(i));
      mget.push_back("s:" + std::to_string(i));
      values += bulk(std::to_string(i));
    }
    std::vector<std::string> exists = mget;
    exists[0] = "EXISTS";
    const std::string expected = "+OK\r\n" + values + ":50\r\n:50\r\n+OK\r\n:0\r\n";
    CHECK(c.roundtrip(resp(mset) + resp(mget) + resp({"DBSIZE"}) + resp(exists) +
                          resp({"FLUSHALL"}) + resp({"DBSIZE"}),
                      expected) == expected);
    require_clean_exit(kv);
  }
}
