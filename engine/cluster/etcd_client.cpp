#include "cluster/etcd_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <stdexcept>

namespace troupe::internal {

namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// ---- base64 (the gateway's encoding of keys and values) ----

constexpr std::string_view b64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v = std::uint32_t(std::uint8_t(in[i])) << 16 |
                            std::uint32_t(std::uint8_t(in[i + 1])) << 8 | std::uint8_t(in[i + 2]);
    out += b64_alphabet[v >> 18 & 63];
    out += b64_alphabet[v >> 12 & 63];
    out += b64_alphabet[v >> 6 & 63];
    out += b64_alphabet[v & 63];
  }
  if (const std::size_t rest = in.size() - i; rest > 0) {
    std::uint32_t v = std::uint32_t(std::uint8_t(in[i])) << 16;
    if (rest == 2) v |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
    out += b64_alphabet[v >> 18 & 63];
    out += b64_alphabet[v >> 12 & 63];
    out += rest == 2 ? b64_alphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

/// Decodes standard base64 (padding optional); nullopt on any other byte.
std::optional<std::string> b64_decode(std::string_view in) {
  static const std::array<std::int8_t, 256> value = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    for (std::size_t i = 0; i < b64_alphabet.size(); ++i) {
      t[std::uint8_t(b64_alphabet[i])] = std::int8_t(i);
    }
    return t;
  }();
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value[std::uint8_t(c)];  // NOLINT(bugprone-signed-char-misuse): -1 or a digit
    if (v < 0) return std::nullopt;
    acc = acc << 6 | std::uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char(acc >> bits & 0xff);
    }
  }
  return out;
}

// ---- the gateway's JSON ----

/// An int64 field, which the gateway writes as a string; 0 when absent
/// (proto3 leaves out zero values).
std::int64_t int_field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc{} && end == s.data() + s.size()) return v;
  }
  return 0;
}

bool bool_field(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

/// A bytes field (base64); "" when absent or not base64.
std::string bytes_field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return {};
  return b64_decode(it->get_ref<const std::string&>()).value_or(std::string{});
}

etcd_kv to_kv(const json& j) {
  return etcd_kv{bytes_field(j, "key"), bytes_field(j, "value"), int_field(j, "create_revision"),
                 int_field(j, "mod_revision"), int_field(j, "lease")};
}

/// The end of the range of keys that start with `prefix`: the prefix with its
/// last byte below 0xff incremented; "\0" (no end) when there is none.
std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (std::uint8_t(end.back()) != 0xff) {
      end.back() = char(std::uint8_t(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

/// {"key", "range_end"} for every key under `prefix`.
json prefix_range(std::string_view prefix) {
  // "" is every key: from "\0" to no end.
  const std::string key = prefix.empty() ? std::string(1, '\0') : std::string(prefix);
  return json{{"key", b64_encode(key)}, {"range_end", b64_encode(prefix_end(prefix))}};
}

// gRPC status codes that etcd's answers carry.
constexpr int grpc_invalid_argument = 3;
constexpr int grpc_deadline_exceeded = 4;
constexpr int grpc_not_found = 5;
constexpr int grpc_unavailable = 14;

errc errc_of_grpc(int code) {
  switch (code) {
    case grpc_invalid_argument: return errc::misuse;
    case grpc_deadline_exceeded: return errc::timeout;
    case grpc_not_found: return errc::not_found;
    case grpc_unavailable: return errc::io;
    default: return errc::failed;
  }
}

/// An error the gateway sent, in either of its forms: unary replies
/// {"error": "text", "message": "text", "code": N}, streams
/// {"error": {"grpc_code": N, "message": "text", ...}}. nullopt: not one.
struct etcd_status {
  int code = 0;
  std::string message;
};
std::optional<etcd_status> status_of(const json& j) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find("error");
  if (it == j.end()) return std::nullopt;
  if (it->is_object()) {
    auto m = it->find("message");
    return etcd_status{int(int_field(*it, "grpc_code")),
                       m != it->end() && m->is_string() ? m->get<std::string>() : it->dump()};
  }
  auto m = j.find("message");
  return etcd_status{int(int_field(j, "code")), m != j.end() && m->is_string()
                                                    ? m->get<std::string>()
                                                : it->is_string() ? it->get<std::string>()
                                                                  : it->dump()};
}

std::string clip(std::string_view text, std::size_t limit = 200) {
  std::string out(text.substr(0, limit));
  if (text.size() > limit) out.append("...");
  return out;
}

std::string ms_text(milliseconds d) { return std::to_string(d.count()) + " ms"; }

size_t append_body(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

/// The watch whose thread this is, if any: stop() from its own callbacks
/// must not wait for itself.
thread_local const etcd_watch* current_watch = nullptr;

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

/// Options both the calls and the watch streams set on a fresh handle.
void set_common(CURL* h, const std::string& url, const std::string& payload, curl_slist* headers,
                char* error_buffer, milliseconds connect_timeout) {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(payload.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  // Why: libcurl's timeouts would otherwise use SIGALRM, process-wide, and
  // we run on several threads.
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  // Why: etcd is reached directly; an http_proxy meant for the internet
  // must not capture 127.0.0.1 or the cluster's private addresses.
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, long(std::max<long>(1, connect_timeout.count())));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  error_buffer[0] = '\0';
}

std::string curl_failure(CURLcode rc, const char* error_buffer) {
  return error_buffer[0] != '\0' ? std::string(error_buffer) : std::string(curl_easy_strerror(rc));
}

/// The headers of every request. "hasleader" (sent as gRPC metadata through
/// the gateway): a member without a leader refuses at once instead of
/// waiting, so we try another. "Expect:": no 100-continue round trip.
curl_slist* make_headers() {
  curl_slist* h = nullptr;
  h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Grpc-Metadata-hasleader: true");
  h = curl_slist_append(h, "Expect:");
  return h;
}

}  // namespace

// ---- etcd://HOST:PORT[,HOST:PORT...] ----

result<std::vector<std::string>> parse_etcd_url(std::string_view url) {
  const auto bad = [&](const std::string& why) {
    return error(errc::misuse, "bad etcd URL '" + std::string(url) + "': " + why +
                                   " (expected etcd://HOST:PORT[,HOST:PORT...])");
  };
  constexpr std::string_view scheme = "etcd://";
  if (url.substr(0, scheme.size()) != scheme) return bad("it does not start with etcd://");
  std::string_view rest = url.substr(scheme.size());
  if (rest.empty()) return bad("it names no endpoint");
  std::vector<std::string> endpoints;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view ep = rest.substr(0, comma);
    const std::string quoted = "'" + std::string(ep) + "'";
    if (ep.empty()) return bad("it has an empty endpoint");
    std::size_t colon;
    if (ep.front() == '[') {
      const std::size_t close = ep.find(']');
      if (close == std::string_view::npos) return bad("endpoint " + quoted + " has no closing ]");
      if (close == 1) return bad("endpoint " + quoted + " has an empty host");
      if (close + 1 >= ep.size() || ep[close + 1] != ':') {
        return bad("endpoint " + quoted + " has no :PORT");
      }
      colon = close + 1;
    } else {
      colon = ep.rfind(':');
      if (colon == std::string_view::npos) return bad("endpoint " + quoted + " has no :PORT");
      if (colon == 0) return bad("endpoint " + quoted + " has an empty host");
    }
    const std::string_view host = ep.substr(0, colon);
    for (char c : host) {
      const bool ok = std::isalnum(std::uint8_t(c)) || c == '.' || c == '-' || c == '_' ||
                      (ep.front() == '[' && (c == ':' || c == '[' || c == ']'));
      if (!ok) return bad("endpoint " + quoted + " has a bad host");
    }
    const std::string_view port = ep.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 ||
        value > 65535) {
      return bad("endpoint " + quoted + " has a bad port (1..65535)");
    }
    endpoints.emplace_back(ep);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return endpoints;
}

// ---- etcd_client ----

/// Idle easy handles (each keeps its connections open for the next call)
/// and the headers they all send.
struct etcd_client::handle_pool {
  std::mutex mutex;
  std::vector<CURL*> idle;
  curl_slist* headers = make_headers();

  ~handle_pool() {
    for (CURL* h : idle) curl_easy_cleanup(h);
    curl_slist_free_all(headers);
  }
  CURL* take() {
    {
      std::lock_guard lock(mutex);
      if (!idle.empty()) {
        CURL* h = idle.back();
        idle.pop_back();
        return h;
      }
    }
    CURL* h = curl_easy_init();
    if (h == nullptr) throw std::bad_alloc();
    return h;
  }
  void give_back(CURL* h) {
    curl_easy_reset(h);  // drops the pointers into the call's frame, keeps connections
    std::lock_guard lock(mutex);
    idle.push_back(h);
  }
};

etcd_client::etcd_client(std::vector<std::string> endpoints, milliseconds timeout)
    : endpoints_(std::move(endpoints)), timeout_(timeout) {
  if (endpoints_.empty()) throw std::invalid_argument("etcd_client needs at least one endpoint");
  init_curl_once();
  pool_ = std::make_unique<handle_pool>();
}

etcd_client::~etcd_client() = default;

result<json> etcd_client::call(std::string_view path, const json& body) {
  const std::string payload = body.dump();
  const auto start = steady_clock::now();
  const auto deadline = start + timeout_;
  const std::size_t n = endpoints_.size();
  // The last failure at each endpoint, for the error if none answers.
  std::vector<std::string> failures(n);
  bool timed_out = false;
  // One attempt gets a third of the timeout (at least 1 s, at most all of
  // it): a member that forwarded the request to a leader that just died
  // never answers it, and another member, after the election, will.
  const milliseconds attempt_limit = std::min(timeout_, std::max(timeout_ / 3, milliseconds(1000)));

  CURL* h = pool_->take();
  struct give_back {
    handle_pool& pool;
    CURL* h;
    ~give_back() { pool.give_back(h); }
  } returned{*pool_, h};

  std::size_t at = preferred_.load(std::memory_order_relaxed);
  for (;;) {
    for (std::size_t tried = 0; tried < n; ++tried) {
      const std::size_t i = (at + tried) % n;
      const auto left = std::min(
          attempt_limit, std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()));
      if (left.count() <= 0) break;
      const std::string& ep = endpoints_[i];

      std::string reply;
      char error_buffer[CURL_ERROR_SIZE];
      curl_easy_reset(h);  // keeps the handle's open connections
      set_common(h, "http://" + ep + std::string(path), payload, pool_->headers, error_buffer,
                 std::min(left, milliseconds(1000)));
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, long(left.count()));
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
      curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
      const CURLcode rc = curl_easy_perform(h);
      if (rc != CURLE_OK) {
        timed_out = rc == CURLE_OPERATION_TIMEDOUT;
        const bool no_connection = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST;
        failures[i] = "etcd at " + ep +
                      (no_connection ? " unreachable: "
                       : timed_out   ? " did not answer: "
                                     : " failed: ") +
                      curl_failure(rc, error_buffer);
        continue;
      }
      long http = 0;
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
      json j = json::parse(reply, nullptr, false);
      const auto status = j.is_discarded() ? std::nullopt : status_of(j);
      if (http == 503 || (status && status->code == grpc_unavailable)) {
        failures[i] = "etcd at " + ep +
                      " unavailable: " + (status ? status->message : "HTTP 503 " + clip(reply));
        timed_out = false;
        continue;
      }
      preferred_.store(i, std::memory_order_relaxed);
      const std::string where = "etcd at " + ep + " " + std::string(path);
      if (http != 200 || (status && !status->message.empty() && !j.contains("header"))) {
        if (status) return error(errc_of_grpc(status->code), where + ": " + status->message);
        return error(errc::failed, where + ": HTTP " + std::to_string(http) + " " + clip(reply));
      }
      if (j.is_discarded() || !j.is_object()) {
        return error(errc::failed,
                     where + " answered with something that is not a JSON object: " + clip(reply));
      }
      return j;
    }
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) break;
    // Every endpoint failed: a leader election takes a few hundred ms.
    std::this_thread::sleep_for(std::min(left, milliseconds(100)));
  }

  std::string text;
  for (const auto& f : failures) {
    if (f.empty()) continue;
    if (!text.empty()) text += "; ";
    text += f;
  }
  if (text.empty()) text = "no etcd endpoint tried";
  const auto spent = std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
  return error(timed_out ? errc::timeout : errc::io,
               text + " (" + std::string(path) + ", gave up after " + ms_text(spent) + ")");
}

result<std::int64_t> etcd_client::grant_lease(std::chrono::seconds ttl) {
  auto r = call("/v3/lease/grant", json{{"TTL", std::to_string(ttl.count())}});
  if (!r) return r.err();
  // LeaseGrantResponse has an error field of its own.
  if (auto e = r->find("error");
      e != r->end() && e->is_string() && !e->get<std::string>().empty()) {
    return error(errc::failed, "etcd did not grant a lease: " + e->get<std::string>());
  }
  const std::int64_t id = int_field(*r, "ID");
  if (id == 0) return error(errc::failed, "etcd granted no lease id: " + clip(r->dump()));
  return id;
}

result<std::chrono::seconds> etcd_client::keep_alive(std::int64_t lease) {
  // A stream endpoint: one request, one {"result": ...} line, then the end.
  auto r = call("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}});
  if (!r) return r.err();
  auto it = r->find("result");
  if (it == r->end() || !it->is_object()) {
    return error(errc::failed, "etcd answered a keep-alive with " + clip(r->dump()));
  }
  const std::int64_t ttl = int_field(*it, "TTL");
  // etcd answers a lease it does not know with TTL 0 (left out).
  if (ttl <= 0) {
    return error(errc::not_found,
                 "etcd lease " + std::to_string(lease) + " has expired or was revoked");
  }
  return std::chrono::seconds(ttl);
}

result<done> etcd_client::revoke(std::int64_t lease) {
  auto r = call("/v3/lease/revoke", json{{"ID", std::to_string(lease)}});
  if (!r && r.err().code() != errc::not_found) return r.err();
  return done{};
}

result<done> etcd_client::put(std::string_view key, std::string_view value, std::int64_t lease) {
  json body{{"key", b64_encode(key)}, {"value", b64_encode(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  auto r = call("/v3/kv/put", body);
  if (!r) return r.err();
  return done{};
}

result<std::optional<std::string>> etcd_client::get(std::string_view key) {
  auto r = call("/v3/kv/range", json{{"key", b64_encode(key)}});
  if (!r) return r.err();
  auto kvs = r->find("kvs");
  if (kvs == r->end() || !kvs->is_array() || kvs->empty()) {
    return std::optional<std::string>{};
  }
  return std::optional<std::string>(bytes_field(kvs->front(), "value"));
}

result<etcd_range> etcd_client::range_prefix(std::string_view prefix) {
  auto r = call("/v3/kv/range", prefix_range(prefix));
  if (!r) return r.err();
  etcd_range out;
  if (auto h = r->find("header"); h != r->end()) out.revision = int_field(*h, "revision");
  if (auto kvs = r->find("kvs"); kvs != r->end() && kvs->is_array()) {
    out.kvs.reserve(kvs->size());
    for (const auto& kv : *kvs) out.kvs.push_back(to_kv(kv));
  }
  return out;
}

result<bool> etcd_client::remove(std::string_view key) {
  auto r = call("/v3/kv/deleterange", json{{"key", b64_encode(key)}});
  if (!r) return r.err();
  return int_field(*r, "deleted") > 0;
}

result<bool> etcd_client::put_if_absent(std::string_view key, std::string_view value,
                                        std::int64_t lease) {
  auto r = create_or_read(key, value, lease);
  if (!r) return r.err();
  return r->created;
}

result<etcd_read> etcd_client::read(std::string_view key) {
  auto r = call("/v3/kv/range", json{{"key", b64_encode(key)}});
  if (!r) return r.err();
  etcd_read out;
  if (auto h = r->find("header"); h != r->end()) out.revision = int_field(*h, "revision");
  if (auto kvs = r->find("kvs"); kvs != r->end() && kvs->is_array() && !kvs->empty()) {
    out.kv = to_kv(kvs->front());
  }
  return out;
}

result<etcd_claim> etcd_client::create_or_read(std::string_view key, std::string_view value,
                                               std::int64_t lease) {
  const std::string k = b64_encode(key);
  json put{{"key", k}, {"value", b64_encode(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  const json txn{
      {"compare",
       json::array(
           {{{"key", k}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}}})},
      {"success", json::array({{{"request_put", put}}})},
      // On failure, read the key: it may be ours from an attempt whose
      // answer was lost.
      {"failure", json::array({{{"request_range", {{"key", k}}}}})}};
  auto r = call("/v3/kv/txn", txn);
  if (!r) return r.err();
  etcd_claim out;
  if (auto h = r->find("header"); h != r->end()) out.revision = int_field(*h, "revision");
  if (bool_field(*r, "succeeded")) {
    out.created = true;
    out.holder = etcd_kv{std::string(key), std::string(value), out.revision, out.revision, lease};
    return out;
  }
  auto responses = r->find("responses");
  if (responses != r->end() && responses->is_array() && !responses->empty()) {
    const json& range = responses->front().value("response_range", json::object());
    if (auto kvs = range.find("kvs"); kvs != range.end() && kvs->is_array() && !kvs->empty()) {
      out.holder = to_kv(kvs->front());
    }
  }
  // Gone again between the compare and the read cannot happen (one txn);
  // no key here means etcd answered with something unexpected.
  if (out.holder.key.empty()) {
    return error(errc::failed,
                 "etcd neither created nor read '" + std::string(key) + "': " + clip(r->dump()));
  }
  out.created = lease != 0 && out.holder.lease == lease && out.holder.value == value;
  return out;
}

namespace {

/// The txn that does `op` only if the key `k` (base64) holds exactly `value`.
json if_value_txn(const std::string& k, std::string_view value, json op) {
  return json{
      {"compare",
       json::array(
           {{{"key", k}, {"target", "VALUE"}, {"result", "EQUAL"}, {"value", b64_encode(value)}}})},
      {"success", json::array({std::move(op)})}};
}

}  // namespace

result<bool> etcd_client::remove_if(std::string_view key, std::string_view value) {
  const std::string k = b64_encode(key);
  auto r = call("/v3/kv/txn", if_value_txn(k, value, {{"request_delete_range", {{"key", k}}}}));
  if (!r) return r.err();
  return bool_field(*r, "succeeded");
}

result<bool> etcd_client::reattach(std::string_view key, std::string_view value,
                                   std::int64_t lease) {
  const std::string k = b64_encode(key);
  json put{{"key", k}, {"value", b64_encode(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  auto r = call("/v3/kv/txn", if_value_txn(k, value, {{"request_put", std::move(put)}}));
  if (!r) return r.err();
  return bool_field(*r, "succeeded");
}

std::unique_ptr<etcd_watch> etcd_client::watch_prefix(
    std::string prefix, std::int64_t start_revision,
    std::function<void(const std::vector<etcd_event>&)> on_events,
    std::function<void(const error& e, bool final)> on_error) {
  if (!on_events) throw std::invalid_argument("etcd_client::watch_prefix needs an event callback");
  return std::unique_ptr<etcd_watch>(
      new etcd_watch(endpoints_, std::min(timeout_, milliseconds(1000)), preferred_.load(),
                     std::move(prefix), start_revision, std::move(on_events), std::move(on_error)));
}

// ---- etcd_watch ----

/// One watch stream: the bytes of a line not yet complete, and how it went.
struct etcd_watch::stream {
  etcd_watch& watch;
  const std::string& endpoint;
  std::string partial;
  std::optional<error> broke;  ///< why the stream must end, when it must
  bool final = false;          ///< ... and the watch with it
  bool created = false;        ///< etcd accepted the watch

  static size_t on_bytes(char* data, size_t size, size_t count, void* self) {
    auto& s = *static_cast<stream*>(self);
    s.partial.append(data, size * count);
    std::size_t from = 0;
    for (std::size_t nl; (nl = s.partial.find('\n', from)) != std::string::npos; from = nl + 1) {
      if (!s.watch.on_line(s, std::string_view(s.partial).substr(from, nl - from))) {
        return 0;  // ends the transfer (CURLE_WRITE_ERROR)
      }
    }
    s.partial.erase(0, from);
    return size * count;
  }
};

etcd_watch::etcd_watch(std::vector<std::string> endpoints, milliseconds connect_timeout,
                       std::size_t first, std::string prefix, std::int64_t start_revision,
                       std::function<void(const std::vector<etcd_event>&)> on_events,
                       std::function<void(const error&, bool)> on_error)
    : endpoints_(std::move(endpoints)), connect_timeout_(connect_timeout), first_(first),
      prefix_(std::move(prefix)), on_events_(std::move(on_events)), on_error_(std::move(on_error)),
      next_revision_(start_revision), headers_(make_headers()) {
  thread_ = std::thread([this] { run(); });
}

etcd_watch::~etcd_watch() {
  stop();
  curl_slist_free_all(headers_);
}

void etcd_watch::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true);
    if (multi_ != nullptr) curl_multi_wakeup(static_cast<CURLM*>(multi_));
  }
  wake_.notify_all();
  if (current_watch == this) return;  // from a callback: run() ends on its own
  std::lock_guard lock(join_mutex_);
  if (thread_.joinable()) thread_.join();
}

bool etcd_watch::pause(milliseconds d) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, d, [this] { return stopping_.load(); });
}

void etcd_watch::report(const error& e, bool final) {
  if (!on_error_ || stopping_.load()) return;
  try {
    on_error_(e, final);
  } catch (...) {
    // A callback's failure must not unwind through libcurl or end the thread.
  }
}

void etcd_watch::run() {
  current_watch = this;
  const std::size_t n = endpoints_.size();
  std::size_t i = first_ % n;
  std::size_t failed_in_a_row = 0;
  milliseconds backoff(100);
  while (!stopping_.load()) {
    const outcome out = run_stream(endpoints_[i]);
    if (stopping_.load()) break;
    if (out.final) {
      report(out.why, true);
      break;
    }
    report(out.why, false);
    if (out.created) {
      failed_in_a_row = 0;
      backoff = milliseconds(100);
    }
    i = (i + 1) % n;
    // Straight on to the next endpoint; after a whole round of failures,
    // wait (longer each round, up to 2 s): the cluster may be electing.
    if (++failed_in_a_row >= n) {
      if (!pause(backoff)) break;
      backoff = std::min(backoff * 2, milliseconds(2000));
    }
  }
  done_.store(true);
}

etcd_watch::outcome etcd_watch::run_stream(const std::string& endpoint) {
  const std::int64_t from = next_revision_.load();
  json create = prefix_range(prefix_);
  if (from > 0) create["start_revision"] = std::to_string(from);
  const std::string payload = json{{"create_request", create}}.dump();

  stream s{*this, endpoint, {}, std::nullopt, false, false};
  char error_buffer[CURL_ERROR_SIZE];
  CURL* h = curl_easy_init();
  CURLM* m = curl_multi_init();
  if (h == nullptr || m == nullptr) {
    if (h != nullptr) curl_easy_cleanup(h);
    if (m != nullptr) curl_multi_cleanup(m);
    return {error(errc::failed, "cannot start a watch: libcurl is out of memory"), false, false};
  }
  set_common(h, "http://" + endpoint + "/v3/watch", payload, headers_, error_buffer,
             connect_timeout_);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &stream::on_bytes);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  // Why: a watch is silent while nothing changes; TCP keep-alives find a
  // peer that vanished without closing the connection (host down, cable cut).
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 2L);
  curl_multi_add_handle(m, h);
  {
    std::lock_guard lock(mutex_);
    multi_ = m;
  }

  CURLcode rc = CURLE_OK;
  bool finished = false;
  while (!stopping_.load() && !finished) {
    int running = 0;
    if (curl_multi_perform(m, &running) != CURLM_OK) break;
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(m, &left)) {
      if (msg->msg == CURLMSG_DONE) {
        rc = msg->data.result;
        finished = true;
      }
    }
    if (finished || stopping_.load()) break;
    // Sleeps until bytes arrive or stop() wakes it; the timeout only bounds
    // how long libcurl's own timers wait.
    curl_multi_poll(m, nullptr, 0, 1000, nullptr);
  }

  {
    std::lock_guard lock(mutex_);
    multi_ = nullptr;
  }
  long http = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
  curl_multi_remove_handle(m, h);
  curl_easy_cleanup(h);
  curl_multi_cleanup(m);

  if (stopping_.load()) return {error(errc::shutting_down, "the watch was stopped"), false, false};
  // An error answer may come without a last newline.
  if (!s.broke && !s.partial.empty()) on_line(s, s.partial);
  if (s.broke) return {*s.broke, s.final, s.created};
  const std::string where = "etcd at " + endpoint + " ";
  if (rc != CURLE_OK) {
    return {error(errc::io, where + "broke the watch stream: " + curl_failure(rc, error_buffer)),
            false, s.created};
  }
  if (http != 200) {
    return {error(errc::io, where + "refused the watch: HTTP " + std::to_string(http)), false,
            s.created};
  }
  return {error(errc::io, where + "ended the watch stream"), false, s.created};
}

bool etcd_watch::on_line(stream& s, std::string_view line) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return true;
  const std::string where = "etcd at " + s.endpoint + " ";
  const json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    s.broke = error(errc::failed, where + "sent a watch line that is not JSON: " + clip(line));
    return false;
  }
  if (auto status = status_of(j)) {
    s.broke = error(errc_of_grpc(status->code), where + "refused the watch: " + status->message);
    return false;
  }
  auto rit = j.find("result");
  if (rit == j.end() || !rit->is_object()) return true;
  const json& r = *rit;

  if (bool_field(r, "canceled")) {
    if (const std::int64_t compacted = int_field(r, "compact_revision"); compacted > 0) {
      s.broke = error(errc::not_found, where + "has compacted its history up to revision " +
                                           std::to_string(compacted) + ", past revision " +
                                           std::to_string(next_revision_.load()) +
                                           " that the watch of '" + prefix_ +
                                           "' needs: read the prefix again and watch anew");
      s.final = true;
    } else {
      const auto reason = r.find("cancel_reason");
      s.broke = error(errc::io, where + "cancelled the watch: " +
                                    (reason != r.end() && reason->is_string()
                                         ? reason->get<std::string>()
                                         : std::string("no reason given")));
    }
    return false;
  }
  if (bool_field(r, "created")) {
    s.created = true;
    // Watching "from now": pin down where now is, so a new stream after a
    // failure starts there and misses nothing.
    if (next_revision_.load() <= 0) {
      if (auto h = r.find("header"); h != r.end()) {
        next_revision_.store(int_field(*h, "revision") + 1);
      }
    }
  }
  auto events = r.find("events");
  if (events == r.end() || !events->is_array() || events->empty()) return true;
  std::vector<etcd_event> batch;
  batch.reserve(events->size());
  for (const auto& e : *events) {
    auto kv = e.find("kv");
    if (kv == e.end()) continue;
    const auto type = e.find("type");
    const bool removed =
        type != e.end() && type->is_string() && type->get<std::string>() == "DELETE";
    etcd_event ev;
    ev.type = removed ? etcd_event::kind::remove : etcd_event::kind::put;
    ev.key = bytes_field(*kv, "key");
    if (!removed) ev.value = bytes_field(*kv, "value");
    ev.mod_revision = int_field(*kv, "mod_revision");
    batch.push_back(std::move(ev));
  }
  if (batch.empty()) return true;
  // The next stream starts after the last revision delivered: etcd never
  // splits one revision's events across responses.
  next_revision_.store(batch.back().mod_revision + 1);
  if (stopping_.load()) return false;
  try {
    on_events_(batch);
  } catch (const std::exception& ex) {
    s.broke = error(errc::failed, std::string("the watch's event callback threw: ") + ex.what());
    s.final = true;
    return false;
  } catch (...) {
    s.broke = error(errc::failed, "the watch's event callback threw");
    s.final = true;
    return false;
  }
  return !stopping_.load();
}

}  // namespace troupe::internal
