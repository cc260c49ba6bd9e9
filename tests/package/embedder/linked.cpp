// Two engines in one program, linked over 127.0.0.1: an embedder of the
// installed engine that uses the remote layer (troupe::remote).
#include <troupe/remote.hpp>
#include <troupe/troupe.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

struct echo : troupe::actor<echo, std::string> {
  std::string on(const std::string& s) { return "echo: " + s; }
};

int main() {
  using namespace std::chrono_literals;
  troupe::system a({.shards = 1, .engine_id = 1}, troupe::with_links({.listen = "127.0.0.1:0"}));
  const std::string at = "127.0.0.1:" + std::to_string(troupe::listen_port(a));
  troupe::system b({.shards = 1, .engine_id = 2}, troupe::with_links({.peers = {at}}));
  const troupe::address e = a.spawn<echo>();
  for (int i = 0; i < 200; ++i) {  // until the link is up: at most 10 s
    auto r = b.ask<std::string>(e, std::string("hi"), 50ms);
    if (r) {
      std::printf("%s\n", r.value().c_str());
      return 0;
    }
    std::this_thread::sleep_for(50ms);
  }
  std::printf("no answer from engine 1\n");
  return 1;
}
