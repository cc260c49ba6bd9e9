// The frames that carry messages between engines (see frame.hpp for the
// layout).

#include <bit>
#include <cstring>
#include <stdexcept>

#include "core/system_impl.hpp"
#include "remote/frame.hpp"

namespace troupe::internal {

namespace frame {

namespace {

// Little-endian, one append each (x86-64 and arm64 are little-endian; a
// big-endian build would swap here).
static_assert(std::endian::native == std::endian::little, "the wire format is little-endian");
void put_u16(std::string& out, std::uint16_t v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void put_u32(std::string& out, std::uint32_t v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void patch_u32(std::string& out, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

/// A bounds-checked cursor over a frame body.
struct cursor {
  std::string_view s;
  std::size_t at = 0;
  bool has(std::size_t n) const { return s.size() - at >= n; }
  std::uint8_t u8() { return static_cast<std::uint8_t>(s[at++]); }
  std::uint16_t u16() {
    std::uint16_t v = static_cast<std::uint8_t>(s[at]) | static_cast<std::uint8_t>(s[at + 1]) << 8;
    at += 2;
    return v;
  }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(static_cast<std::uint8_t>(s[at + i])) << (8 * i);
    at += 4;
    return v;
  }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t(static_cast<std::uint8_t>(s[at + i])) << (8 * i);
    at += 8;
    return v;
  }
  address addr() {
    std::array<std::byte, address::wire_size> b;
    std::memcpy(b.data(), s.data() + at, b.size());
    at += b.size();
    return address::from_bytes(b);
  }
};

constexpr std::uint8_t tag_define = 1;
constexpr std::uint8_t tag_message = 2;
constexpr std::uint8_t flag_is_reply = 1;
constexpr std::uint8_t flag_same_target = 2;
constexpr std::uint8_t flag_same_sender = 4;
constexpr std::uint8_t flag_has_request = 8;
constexpr std::uint8_t flag_is_control = 16;
constexpr std::uint8_t known_flags = 31;

}  // namespace

void writer::open(kind k) {
  close_open();
  const std::size_t at = buf_.size();
  put_u32(buf_, 0);
  buf_.push_back(static_cast<char>(k));
  if (k == kind::messages) open_ = at;
  in_frame_ = false;
}

void writer::close_open() {
  if (open_ == npos) return;
  patch_u32(buf_, open_, static_cast<std::uint32_t>(buf_.size() - open_ - header_bytes));
  open_ = npos;
}

bool writer::add(const envelope& e) {
  if (e.type != last_type_) {
    auto it = ids_.find(e.type);
    if (it == ids_.end()) {
      const wire_codec* c = codec_for(e.type);
      if (!c) return false;
      if (open_ == npos) open(kind::messages);
      const known k{static_cast<std::uint16_t>(ids_.size() + 1), c};
      it = ids_.emplace(e.type, k).first;
      buf_.push_back(static_cast<char>(tag_define));
      put_u16(buf_, k.id);
      put_u16(buf_, static_cast<std::uint16_t>(c->name.size()));
      buf_.append(c->name);
    }
    last_type_ = e.type;
    last_ = it->second;
  }
  if (open_ == npos || buf_.size() - open_ > target_frame) open(kind::messages);
  const wire_codec* c = last_.codec;
  // One resize for the record's fixed part (and the payload when its size is
  // fixed), then plain copies: a message costs a few stores, not a dozen
  // appends. Target and sender are left out when they repeat.
  std::uint8_t flags = e.is_reply() ? flag_is_reply : 0;
  if (in_frame_ && e.target == last_target_) flags |= flag_same_target;
  if (in_frame_ && e.sender == last_sender_) flags |= flag_same_sender;
  if (e.request != 0) flags |= flag_has_request;
  if (e.flags & flag_control) flags |= flag_is_control;
  const std::size_t head = 1 + 2 + 1 + ((flags & flag_same_target) ? 0 : address::wire_size) +
                           ((flags & flag_same_sender) ? 0 : address::wire_size) +
                           ((flags & flag_has_request) ? 8 : 0) + 4;
  const std::size_t at = buf_.size();
  buf_.resize(at + head + c->fixed_size);
  char* p = buf_.data() + at;
  *p++ = static_cast<char>(tag_message);
  std::memcpy(p, &last_.id, 2);
  p += 2;
  *p++ = static_cast<char>(flags);
  if (!(flags & flag_same_target)) {
    const auto b = e.target.to_bytes();
    std::memcpy(p, b.data(), b.size());
    p += b.size();
    last_target_ = e.target;
  }
  if (!(flags & flag_same_sender)) {
    const auto b = e.sender.to_bytes();
    std::memcpy(p, b.data(), b.size());
    p += b.size();
    last_sender_ = e.sender;
  }
  if (flags & flag_has_request) {
    const std::uint64_t request = e.request;
    std::memcpy(p, &request, 8);
    p += 8;
  }
  in_frame_ = true;
  if (c->fixed_size > 0) {
    const auto len = static_cast<std::uint32_t>(c->fixed_size);
    std::memcpy(p, &len, 4);
    std::memcpy(p + 4, const_cast<envelope&>(e).payload(), c->fixed_size);
    return true;
  }
  const std::size_t len_at = buf_.size() - 4;
  c->encode(const_cast<envelope&>(e).payload(), buf_);
  patch_u32(buf_, len_at, static_cast<std::uint32_t>(buf_.size() - len_at - 4));
  return true;
}

void writer::heartbeat() { open(kind::heartbeat); }

void writer::ready() { open(kind::ready); }

void writer::ack(std::uint64_t received) {
  open(kind::ack);
  const std::size_t at = buf_.size() - header_bytes;
  for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<char>((received >> (8 * i)) & 0xff));
  patch_u32(buf_, at, 8);
}

void writer::goodbye(std::string_view reason) {
  open(kind::goodbye);
  const std::size_t at = buf_.size() - header_bytes;
  buf_.append(reason);
  patch_u32(buf_, at, static_cast<std::uint32_t>(reason.size()));
}

std::string writer::take() {
  close_open();
  std::string out;
  out.swap(buf_);
  return out;
}

void writer::take(std::string& into) {
  close_open();
  into.clear();  // keeps its capacity: the next take() reuses this one
  into.swap(buf_);
}

std::string reader::decode_messages(std::string_view body, std::vector<incoming>& out) {
  cursor c{body};
  address last_target, last_sender;
  bool have_last = false;
  while (c.at < body.size()) {
    const std::uint8_t tag = c.u8();
    if (tag == tag_define) {
      if (!c.has(4)) return "truncated type definition";
      const std::uint16_t id = c.u16();
      const std::uint16_t len = c.u16();
      if (!c.has(len)) return "truncated type name";
      std::string name(body.substr(c.at, len));
      c.at += len;
      if (id == 0) return "type id 0 defined";
      if (name.empty()) return "empty type name for id " + std::to_string(id);
      if (id > names_.size() + 1) return "type id " + std::to_string(id) + " defined out of order";
      if (id <= names_.size()) return "type id " + std::to_string(id) + " defined twice";
      codecs_.push_back(codec_named(name));
      names_.push_back(std::move(name));
    } else if (tag == tag_message) {
      if (!c.has(3)) return "truncated message record";
      const std::uint16_t id = c.u16();
      const std::uint8_t flags = c.u8();
      if (id == 0 || id > names_.size()) {
        return "message of type id " + std::to_string(id) + ", which was never defined";
      }
      if (flags & ~known_flags) return "unknown message flags " + std::to_string(flags);
      if ((flags & (flag_same_target | flag_same_sender)) && !have_last) {
        return "a message refers to a previous one, but it is the first of its frame";
      }
      const std::size_t need = ((flags & flag_same_target) ? 0 : address::wire_size) +
                               ((flags & flag_same_sender) ? 0 : address::wire_size) +
                               ((flags & flag_has_request) ? 8 : 0) + 4;
      if (!c.has(need)) return "truncated message record";
      incoming m;
      m.target = (flags & flag_same_target) ? last_target : c.addr();
      m.sender = (flags & flag_same_sender) ? last_sender : c.addr();
      m.request = (flags & flag_has_request) ? c.u64() : 0;
      m.reply = (flags & flag_is_reply) != 0;
      last_target = m.target;
      last_sender = m.sender;
      have_last = true;
      const std::uint32_t len = c.u32();
      if (!c.has(len)) return "payload of " + std::to_string(len) + " bytes overruns its frame";
      if (m.request >= (std::uint64_t{1} << 61)) return "request id out of range";
      m.type_name = names_[id - 1];
      if (const wire_codec* codec = codecs_[id - 1]; live_codec(codec)) {
        std::string why;
        m.e = codec->decode(reinterpret_cast<const std::byte*>(body.data() + c.at), len, why);
        if (!m.e) return "bad payload for " + names_[id - 1] + ": " + why;
        m.e->target = m.target;
        m.e->sender = m.sender;
        m.e->request = m.request;
        if (m.reply) m.e->flags |= flag_reply;
        if (flags & flag_is_control) m.e->flags |= flag_control;
      }
      c.at += len;
      out.push_back(std::move(m));
    } else {
      return "unknown record tag " + std::to_string(tag);
    }
  }
  return {};
}

}  // namespace frame
}  // namespace troupe::internal
