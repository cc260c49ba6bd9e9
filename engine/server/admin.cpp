#include "server/admin.hpp"

#include <http_parser.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <thread>

#include "troupe/blocking.hpp"
#include "troupe/convention.hpp"
#include "troupe/troupe.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t max_request = 1u << 20;

struct http_request {
  std::string method, url, body;
  std::map<std::string, std::string> headers;  ///< names in lower case
  bool keep_alive = true;
};

struct http_response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

http_response json_reply(int status, const json& j) { return {status, j.dump() + "\n"}; }
http_response error_reply(int status, const std::string& why) {
  return json_reply(status, json{{"error", why}});
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

/// Requests read off one connection, through http_parser: pipelined
/// requests come out one by one, a malformed stream is an error.
class request_reader {
 public:
  request_reader() {
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
    http_parser_settings_init(&settings_);
    settings_.on_url = [](http_parser* p, const char* at, std::size_t n) {
      return self(p).grow(self(p).current_.url, at, n);
    };
    settings_.on_header_field = [](http_parser* p, const char* at, std::size_t n) {
      request_reader& r = self(p);
      if (r.in_value_) r.commit_header();
      r.in_value_ = false;
      return r.grow(r.field_, at, n);
    };
    settings_.on_header_value = [](http_parser* p, const char* at, std::size_t n) {
      request_reader& r = self(p);
      r.in_value_ = true;
      return r.grow(r.value_, at, n);
    };
    settings_.on_headers_complete = [](http_parser* p) {
      request_reader& r = self(p);
      if (r.in_value_) r.commit_header();
      r.in_value_ = false;
      return 0;
    };
    settings_.on_body = [](http_parser* p, const char* at, std::size_t n) {
      return self(p).grow(self(p).current_.body, at, n);
    };
    settings_.on_message_complete = [](http_parser* p) {
      request_reader& r = self(p);
      r.current_.method = http_method_str(static_cast<http_method>(p->method));
      r.current_.keep_alive = http_should_keep_alive(p) != 0;
      r.done_.push_back(std::move(r.current_));
      r.current_ = {};
      r.size_ = 0;
      return 0;
    };
  }
  request_reader(const request_reader&) = delete;

  /// False when the stream is not HTTP (or too large); error() says why.
  bool feed(const char* data, std::size_t n) {
    const std::size_t used = http_parser_execute(&parser_, &settings_, data, n);
    if (parser_.http_errno != HPE_OK || used != n) {
      if (error_.empty()) {
        error_ = std::string("malformed request: ") +
                 http_errno_description(static_cast<http_errno>(parser_.http_errno));
      }
      return false;
    }
    return true;
  }
  bool has_request() const noexcept { return !done_.empty(); }
  http_request next() {
    http_request r = std::move(done_.front());
    done_.pop_front();
    return r;
  }
  const std::string& error() const noexcept { return error_; }
  bool too_large() const noexcept { return too_large_; }

 private:
  static request_reader& self(http_parser* p) { return *static_cast<request_reader*>(p->data); }
  int grow(std::string& into, const char* at, std::size_t n) {
    size_ += n;
    if (size_ > max_request) {
      too_large_ = true;
      error_ = "request larger than " + std::to_string(max_request) + " bytes";
      return 1;
    }
    into.append(at, n);
    return 0;
  }
  void commit_header() {
    for (char& c : field_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    current_.headers[field_] = value_;
    field_.clear();
    value_.clear();
  }
  http_parser parser_{};
  http_parser_settings settings_{};
  http_request current_;
  std::string field_, value_;
  bool in_value_ = false;
  std::deque<http_request> done_;
  std::string error_;
  std::size_t size_ = 0;
  bool too_large_ = false;
};

std::string render(const http_response& r, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) +
                    "\r\nContent-Type: " + r.content_type +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) +
                    (keep_alive ? "\r\n" : "\r\nConnection: close\r\n") + "\r\n";
  return out + r.body;
}

/// `f` on a blocking thread (troupe::run_blocking); what it throws becomes a 500.
template <class F>
task<http_response> answer_blocking(F f) {
  auto guarded = [f = std::move(f)]() mutable -> http_response {
    try {
      return f();
    } catch (const std::exception& ex) {
      return error_reply(500, ex.what());
    }
  };
  co_return co_await run_blocking(std::move(guarded));
}

/// The JSON of a reply that came back from an actor, by its wire codec.
std::optional<json> reply_json(internal::envelope* e) {
  using internal::type_id;
  const internal::message_type* t = e->type;
  if (t == type_id<int>()) return json(e->as<int>());
  if (t == type_id<std::int64_t>()) return json(e->as<std::int64_t>());
  if (t == type_id<std::uint64_t>()) return json(e->as<std::uint64_t>());
  if (t == type_id<double>()) return json(e->as<double>());
  if (t == type_id<bool>()) return json(e->as<bool>());
  if (t == type_id<done>()) return json::object();
  if (t == type_id<address>()) return json(e->as<address>().to_string());
  if (t == type_id<std::string>()) return json(e->as<std::string>());
  const internal::wire_codec* c = internal::codec_for(t);
  if (!c || c->kind != internal::wire_codec::form::json) return std::nullopt;
  std::string cbor;
  c->encode(e->payload(), cbor);
  return json::from_cbor(cbor);
}

/// A message of the type registered as `type` made from `body`, or null
/// with `why`.
internal::envelope* message_from_json(const std::string& type, const json& body, std::string& why) {
  using internal::make_envelope;
  const internal::wire_codec* c = internal::codec_named(type);
  if (!c) {
    why = "no message type is registered as '" + type + "'";
    return nullptr;
  }
  try {
    using internal::type_id;
    if (c->type == type_id<int>()) return make_envelope(body.get<int>(), address{}, address{});
    if (c->type == type_id<std::int64_t>())
      return make_envelope(body.get<std::int64_t>(), address{}, address{});
    if (c->type == type_id<std::uint64_t>())
      return make_envelope(body.get<std::uint64_t>(), address{}, address{});
    if (c->type == type_id<double>())
      return make_envelope(body.get<double>(), address{}, address{});
    if (c->type == type_id<bool>()) return make_envelope(body.get<bool>(), address{}, address{});
    if (c->type == type_id<done>() || c->type == type_id<exit_request>()) {
      return c->decode(nullptr, 0, why);
    }
  } catch (const json::exception& ex) {
    why = "the body does not suit " + type + ": " + ex.what();
    return nullptr;
  }
  switch (c->kind) {
    case internal::wire_codec::form::bytes: {
      if (!body.is_string()) {
        why = type + " is a byte string: the body must be a JSON string";
        return nullptr;
      }
      const std::string s = body.get<std::string>();
      return c->decode(reinterpret_cast<const std::byte*>(s.data()), s.size(), why);
    }
    case internal::wire_codec::form::json: {
      const std::vector<std::uint8_t> cbor = json::to_cbor(body);
      internal::envelope* e =
          c->decode(reinterpret_cast<const std::byte*>(cbor.data()), cbor.size(), why);
      if (!e) why = "the body does not suit " + type + ": " + why;
      return e;
    }
    case internal::wire_codec::form::object: break;
  }
  why = type + " crosses as its object's bytes and has no JSON form";
  return nullptr;
}

/// A raw ask: the reply envelope, whatever its type.
class raw_ask final : internal::pending_ask {
 public:
  raw_ask(internal::envelope* req, duration timeout) : req_(req), timeout_(timeout) {}
  raw_ask(const raw_ask&) = delete;
  ~raw_ask() {
    if (req_) internal::destroy_envelope(req_);
  }
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_ = h;
    internal::start_ask(*internal::this_shard, *this, std::exchange(req_, nullptr), timeout_);
  }
  internal::envelope* await_resume() noexcept { return reply_; }

 private:
  void complete(internal::envelope* reply) noexcept override {
    reply_ = reply;
    waiter_.resume();
  }
  internal::envelope* req_;
  duration timeout_;
  internal::envelope* reply_ = nullptr;
  std::coroutine_handle<> waiter_;
};

int status_for(errc code) {
  switch (code) {
    case errc::timeout: return 504;
    case errc::dead_actor:
    case errc::not_found: return 404;
    case errc::unhandled:
    case errc::type_mismatch: return 422;
    case errc::mailbox_full:
    case errc::shutting_down: return 503;
    default: return 502;
  }
}

json module_json(const module_info& m) {
  return {{"name", m.name},
          {"path", m.path},
          {"sha256", m.sha256},
          {"actor_types", m.actor_types},
          {"message_types", m.message_types}};
}

json member_json(const member& m) {
  return {{"engine", m.engine},
          {"link_address", m.link_address},
          {"capabilities", m.capabilities},
          {"leader", m.leader},
          {"actors", m.actors},
          {"shards", m.shards}};
}

struct serve_connection {};

/// One admin client: reads requests, answers each in order.
struct admin_connection : actor<admin_connection, serve_connection> {
  net::socket sock;
  system* sys;
  std::string token;
  clock_type::time_point started;

  admin_connection(net::socket s, system* y, std::string t, clock_type::time_point st)
      : sock(std::move(s)), sys(y), token(std::move(t)), started(st) {}

  task<void> on(const serve_connection&) {
    net::adapt(sock);
    request_reader reader;
    std::array<std::byte, 16384> buf;
    bool open = true;
    while (open) {
      auto n = co_await net::recv(sock, buf);
      if (!n || *n == 0) break;
      if (!reader.feed(reinterpret_cast<const char*>(buf.data()), *n)) {
        const http_response r = error_reply(reader.too_large() ? 413 : 400, reader.error());
        const std::string out = render(r, false);
        co_await net::send_all(sock, std::as_bytes(std::span(out.data(), out.size())));
        break;
      }
      while (reader.has_request()) {
        http_request req = reader.next();
        http_response r = co_await answer(req);
        const std::string out = render(r, req.keep_alive);
        if (!co_await net::send_all(sock, std::as_bytes(std::span(out.data(), out.size())))) {
          open = false;
          break;
        }
        if (!req.keep_alive) {
          open = false;
          break;
        }
      }
    }
    stop();
  }

  task<http_response> answer(const http_request& req) {
    if (!token.empty()) {
      auto it = req.headers.find("authorization");
      if (it == req.headers.end() || it->second != "Bearer " + token) {
        co_return error_reply(401, "a valid 'Authorization: Bearer <token>' header is required");
      }
    }
    const std::string path = req.url.substr(0, req.url.find('?'));
    if (path == "/status" || path == "/metrics" || path == "/modules" || path == "/members") {
      if (req.method != "GET") co_return error_reply(405, path + " answers GET only");
      if (path == "/status") co_return json_reply(200, status());
      if (path == "/members") {
        system* s = sys;
        auto job = [s] {
          auto r = troupe::members(*s);
          if (!r) return error_reply(r.err().code() == errc::misuse ? 409 : 503, r.err().text());
          json list = json::array();
          for (const member& m : r.value()) list.push_back(member_json(m));
          return json_reply(200, list);
        };
        co_return co_await answer_blocking(std::move(job));
      }
      if (path == "/modules") {
        json list = json::array();
        for (const module_info& m : system::modules()) list.push_back(module_json(m));
        co_return json_reply(200, list);
      }
      co_return http_response{200, metrics(), "text/plain; version=0.0.4; charset=utf-8"};
    }
    static const std::array<const char*, 7> posts = {
        "/spawn", "/tell", "/ask", "/modules/load", "/modules/unload", "/stop", "/capabilities"};
    if (std::find(posts.begin(), posts.end(), path) == posts.end()) {
      co_return error_reply(404, "no such endpoint: " + path);
    }
    if (req.method != "POST") co_return error_reply(405, path + " answers POST only");
    json body = json::object();
    if (!req.body.empty()) {
      body = json::parse(req.body, nullptr, false);
      if (body.is_discarded()) co_return error_reply(400, "the body is not valid JSON");
    }
    if (!body.is_object()) co_return error_reply(400, "the body must be a JSON object");
    if (path == "/stop") {
      ::kill(::getpid(), SIGTERM);
      co_return json_reply(202, json{{"stopping", true}});
    }
    if (path == "/spawn") co_return co_await spawn(body);
    if (path == "/capabilities") {
      if (!body.contains("capabilities") || !body["capabilities"].is_object()) {
        co_return error_reply(400, "'capabilities' (a JSON object) is required");
      }
      system* s = sys;
      json caps = body["capabilities"];
      auto job = [s, caps] {
        auto r = troupe::update_capabilities(*s, caps);
        if (r) return json_reply(200, json{{"capabilities", caps}});
        return error_reply(r.err().code() == errc::misuse ? 409 : 503, r.err().text());
      };
      co_return co_await answer_blocking(std::move(job));
    }
    if (path == "/tell" || path == "/ask") co_return co_await deliver(body, path == "/ask");
    if (path == "/modules/load") {
      if (!body.contains("path") || !body["path"].is_string()) {
        co_return error_reply(400, "'path' (a string) is required");
      }
      std::string p = body["path"].get<std::string>();
      system* s = sys;
      auto job = [s, p] {
        auto r = s->load_module(p);
        return r ? json_reply(200, module_json(r.value())) : error_reply(422, r.err().text());
      };
      co_return co_await answer_blocking(std::move(job));
    }
    // /modules/unload
    if (!body.contains("name") || !body["name"].is_string()) {
      co_return error_reply(400, "'name' (a string) is required");
    }
    if (body.contains("stop") && !body["stop"].is_boolean()) {
      co_return error_reply(400, "'stop' must be true or false");
    }
    std::string name = body["name"].get<std::string>();
    const bool stop_actors = body.value("stop", false);
    system* s = sys;
    auto job = [s, name, stop_actors] {
      auto r = s->unload_module(name, stop_actors);
      if (r) return json_reply(200, json{{"unloaded", name}});
      return error_reply(r.err().code() == errc::not_found ? 404 : 409, r.err().text());
    };
    co_return co_await answer_blocking(std::move(job));
  }

  task<http_response> spawn(const json& body) {
    if (!body.contains("type") || !body["type"].is_string()) {
      co_return error_reply(400, "'type' (a string) is required");
    }
    if (body.contains("name") && !body["name"].is_string()) {
      co_return error_reply(400, "'name' must be a string");
    }
    if (body.contains("shard") && !body["shard"].is_number_unsigned()) {
      co_return error_reply(400, "'shard' must be an integer >= 0");
    }
    if (body.contains("prefer_local") && !body["prefer_local"].is_boolean()) {
      co_return error_reply(400, "'prefer_local' must be true or false");
    }
    std::string type = body["type"].get<std::string>();
    std::string name = body.value("name", std::string());
    spawn_options o;
    if (body.contains("shard")) o.shard = body["shard"].get<int>();
    json args = body.value("args", json());
    system* s = sys;
    if (body.contains("requirements") || body.contains("prefer_local")) {
      // Over the convention: on a member whose capabilities fit.
      if (!name.empty()) co_return error_reply(400, "a placed spawn takes no 'name'");
      place_options po;
      po.requirements = body.value("requirements", json());
      po.prefer_local = body.value("prefer_local", true);
      po.spawn = o;
      auto job = [s, type, args, po] {
        auto r = troupe::spawn_placed(*s, type, args, po);
        if (r) {
          return json_reply(
              200, json{{"address", r.value().to_string()}, {"engine", r.value().engine()}});
        }
        const errc c = r.err().code();
        return error_reply(c == errc::not_found ? 404
                           : c == errc::misuse  ? 422
                                                : 503,
                           r.err().text());
      };
      co_return co_await answer_blocking(std::move(job));
    }
    auto job = [s, type, name, o, args] {
      auto r = s->spawn_type(type, args, o, name);
      if (r) return json_reply(200, json{{"address", r.value().to_string()}});
      return error_reply(r.err().code() == errc::not_found ? 404 : 422, r.err().text());
    };
    co_return co_await answer_blocking(std::move(job));
  }

  task<http_response> deliver(const json& body, bool is_ask) {
    if (!body.contains("to") || !body["to"].is_string()) {
      co_return error_reply(400, "'to' (an address or a name) is required");
    }
    if (!body.contains("type") || !body["type"].is_string()) {
      co_return error_reply(400, "'type' (a registered message name) is required");
    }
    if (body.contains("timeout_ms") && !body["timeout_ms"].is_number_unsigned()) {
      co_return error_reply(400, "'timeout_ms' must be an integer >= 0");
    }
    const std::string to_text = body["to"].get<std::string>();
    address to;
    if (auto a = address::parse(to_text)) {
      to = *a;
    } else {
      auto found = co_await lookup_name(to_text);
      if (!found) co_return error_reply(404, found.err().text());
      to = found.value();
    }
    std::string why;
    internal::envelope* e =
        message_from_json(body["type"].get<std::string>(), body.value("body", json()), why);
    if (!e) co_return error_reply(415, why);
    e->target = to;
    if (!is_ask) {
      e->sender = address{};
      internal::send(*internal::this_shard, e);
      co_return json_reply(202, json{{"sent", to.to_string()}});
    }
    e->sender = self();
    const auto timeout = std::chrono::milliseconds(body.value("timeout_ms", 5000u));
    internal::envelope* reply = co_await raw_ask(e, timeout);
    if (reply->type == internal::type_id<internal::ask_failure>()) {
      const auto& f = reply->as<internal::ask_failure>();
      http_response r = error_reply(status_for(f.code), f.text);
      internal::destroy_envelope(reply);
      co_return r;
    }
    std::optional<json> value;
    try {
      value = reply_json(reply);
    } catch (const json::exception& ex) {
      why = ex.what();
    }
    const std::string type_name = internal::type_name(reply->type);
    const internal::wire_codec* c = internal::codec_for(reply->type);
    internal::destroy_envelope(reply);
    if (!value) {
      co_return error_reply(502, "the reply, of type " + type_name + ", has no JSON form" +
                                     (why.empty() ? "" : ": " + why));
    }
    co_return json_reply(200, json{{"type", c ? c->name : type_name}, {"reply", *value}});
  }

  json status() const {
    const stats total = sys->counters();
    json dead = json::object();
    for (std::size_t i = 0; i < total.dead_by_reason.size(); ++i) {
      dead[to_string(static_cast<dead_reason>(i))] = total.dead_by_reason[i];
    }
    json shards = json::array();
    const auto each = sys->shard_counters();
    for (std::size_t i = 0; i < each.size(); ++i) {
      shards.push_back({{"shard", i},
                        {"actors", each[i].actors_live},
                        {"delivered", each[i].delivered},
                        {"sent", each[i].sent},
                        {"sent_remote", each[i].sent_remote},
                        {"links", each[i].links},
                        {"dead_letters", each[i].dead_letters}});
    }
    json peers = json::array();
    for (std::uint32_t e : sys->engines()) {
      if (e != sys->engine_id()) peers.push_back(e);
    }
    json mods = json::array();
    for (const module_info& m : system::modules()) mods.push_back(module_json(m));
    return {{"engine", sys->engine_id()},
            {"uptime_s", std::chrono::duration<double>(clock_type::now() - started).count()},
            {"io", sys->io_description()},
            {"shards", shards},
            {"actors", total.actors_live},
            {"actors_spawned", total.actors_spawned},
            {"sent", total.sent},
            {"delivered", total.delivered},
            {"sent_remote", total.sent_remote},
            {"failures", total.failures},
            {"restarts", total.restarts},
            {"poisoned", total.poisoned},
            {"dead_letters", total.dead_letters},
            {"dead_letters_by_reason", dead},
            {"peers", peers},
            {"modules", mods}};
  }

  std::string metrics() const {
    const stats total = sys->counters();
    const auto each = sys->shard_counters();
    std::string out;
    auto family = [&out](const char* name, const char* type, const char* help) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    };
    auto line = [&out](const std::string& name, const std::string& labels, double v) {
      out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + fmt::format("{}", v) + "\n";
    };
    family("troupe_messages_sent_total", "counter", "Messages sent, by shard.");
    for (std::size_t i = 0; i < each.size(); ++i) {
      line("troupe_messages_sent_total", "shard=\"" + std::to_string(i) + "\"",
           static_cast<double>(each[i].sent));
    }
    family("troupe_messages_delivered_total", "counter", "Messages handled, by shard.");
    for (std::size_t i = 0; i < each.size(); ++i) {
      line("troupe_messages_delivered_total", "shard=\"" + std::to_string(i) + "\"",
           static_cast<double>(each[i].delivered));
    }
    family("troupe_actors", "gauge", "Live actors, by shard.");
    for (std::size_t i = 0; i < each.size(); ++i) {
      line("troupe_actors", "shard=\"" + std::to_string(i) + "\"",
           static_cast<double>(each[i].actors_live));
    }
    family("troupe_dead_letters_total", "counter",
           "Messages that could not be delivered, by reason.");
    for (std::size_t i = 0; i < total.dead_by_reason.size(); ++i) {
      std::string reason = to_string(static_cast<dead_reason>(i));
      for (char& c : reason) {
        if (c == ' ') c = '_';
      }
      line("troupe_dead_letters_total", "reason=\"" + reason + "\"",
           static_cast<double>(total.dead_by_reason[i]));
    }
    family("troupe_failures_total", "counter", "Handler failures.");
    line("troupe_failures_total", "", static_cast<double>(total.failures));
    family("troupe_restarts_total", "counter", "Restarts of failed actors.");
    line("troupe_restarts_total", "", static_cast<double>(total.restarts));
    family("troupe_messages_sent_remote_total", "counter", "Messages handed to links.");
    line("troupe_messages_sent_remote_total", "", static_cast<double>(total.sent_remote));
    family("troupe_peer_connections", "gauge", "Connections to peer engines, by shard.");
    {
      const auto each = sys->shard_counters();
      for (std::size_t i = 0; i < each.size(); ++i) {
        line("troupe_peer_connections", "shard=\"" + std::to_string(i) + "\"",
             static_cast<double>(each[i].links));
      }
    }
    family("troupe_peers", "gauge", "Peer engines linked.");
    line("troupe_peers", "", static_cast<double>(sys->engines().size() - 1));
    family("troupe_modules", "gauge", "Modules loaded.");
    line("troupe_modules", "", static_cast<double>(system::modules().size()));
    family("troupe_uptime_seconds", "gauge", "Seconds since the engine started.");
    line("troupe_uptime_seconds", "",
         std::chrono::duration<double>(clock_type::now() - started).count());
    return out;
  }
};

struct accept_clients {};

struct admin_listener : actor<admin_listener, accept_clients> {
  net::socket sock;
  system* sys;
  std::string token;
  clock_type::time_point started = clock_type::now();
  admin_listener(net::socket s, system* y, std::string t)
      : sock(std::move(s)), sys(y), token(std::move(t)) {}

  task<void> on(const accept_clients&) {
    net::adapt(sock);
    for (;;) {
      auto c = co_await net::accept(sock);
      if (!c) {
        // Cancelled at shutdown: the endpoint ends with the engine.
        if (c.err().text().find("anceled") != std::string::npos) break;
        spdlog::warn("admin: accept failed: {}", c.err().describe());
        co_await sleep_for{std::chrono::milliseconds(50)};
        continue;
      }
      // Served on this shard: the socket suits its reactor.
      address a = spawn<admin_connection>(spawn_options{.where = placement::local}, std::move(*c),
                                          sys, token, started);
      tell(a, serve_connection{});
    }
  }
};

}  // namespace

address start_admin(system& sys, net::socket listener, admin_options o) {
  address a = sys.spawn<admin_listener>(spawn_options{.shard = 0}, std::move(listener), &sys,
                                        std::move(o.token));
  sys.tell(a, accept_clients{});
  return a;
}

}  // namespace troupe
