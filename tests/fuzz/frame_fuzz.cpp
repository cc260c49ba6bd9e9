// libFuzzer target: arbitrary bytes into a link's frame reader, fed in the
// pieces the input itself chooses. It must never crash, leak or read out of
// bounds; what it decodes is freed.

#include <cstddef>
#include <cstdint>

#include "remote/frame.hpp"
#include "troupe/troupe.hpp"
#include "troupe/wire.hpp"

namespace {

struct sample {
  int a;
  double b;
};
struct doc {
  std::string s;
};
void to_json(nlohmann::json& j, const doc& d) { j = {{"s", d.s}}; }
void from_json(const nlohmann::json& j, doc& d) { d.s = j.at("s").get<std::string>(); }

const bool registered = [] {
  troupe::register_message<sample>("fuzz.sample");
  troupe::register_message<doc>("fuzz.doc");
  return true;
}();

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)registered;
  namespace fr = troupe::internal::frame;
  fr::reader r(1u << 16);
  // The first byte picks the piece size, so that frames split anywhere.
  const std::size_t piece = size ? 1 + data[0] % 61 : 1;
  std::size_t at = size ? 1 : 0;
  while (at < size) {
    const std::size_t n = std::min(piece, size - at);
    r.feed(reinterpret_cast<const std::byte*>(data + at), n);
    at += n;
    const std::string error = r.drain(
        [](fr::incoming&& m) {
          if (m.e) troupe::internal::destroy_envelope(m.e);
        },
        [](fr::kind, std::string_view) {});
    if (!error.empty()) break;  // the link would close here
  }
  return 0;
}
