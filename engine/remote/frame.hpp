#pragma once
// Frames on a link between two engines. Little-endian throughout.
//
//   frame    := u32 body_bytes | u8 kind | body            (body_bytes <= max_frame)
//   kind 1   := messages: record*
//   record   := u8 1 | u16 id | u16 name_bytes | name       defines a type id on this link
//             | u8 2 | u16 id | u8 flags | [address target] | [address sender] | [u64 request]
//                    | u32 payload_bytes | payload          one message
//   flags    := bit 0: a reply; bit 1: same target as the frame's previous
//               message (no target field); bit 2: same sender (no sender
//               field); bit 3: a request id follows (else it is 0); bit 4:
//               for the receiving engine itself (a watch, a spawn, a name)
//   kind 2   := heartbeat (empty body)
//   kind 3   := goodbye: the reason, as text
//   kind 4   := ack: u64 messages received on this link so far
//   kind 5   := ready (empty body): every connection of the link is served
//               by its shard on the sending engine (first connection only)
//
// Many messages share a frame, and many frames a send; a type's name
// crosses once per link, then its id. Anything that does not parse is an
// error that closes the link; a well-formed message of a type this engine
// does not know is not: it becomes a dead letter ("unknown type").

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "troupe/internal/envelope.hpp"
#include "troupe/wire.hpp"

namespace troupe::internal::frame {

enum class kind : std::uint8_t { messages = 1, heartbeat = 2, goodbye = 3, ack = 4, ready = 5 };
constexpr std::size_t header_bytes = 5;
constexpr std::size_t default_max_frame = 16u << 20;
/// The writer closes a messages frame past this size: the reader decodes a
/// frame once it has all of it, so small frames keep both ends streaming.
constexpr std::size_t target_frame = 64u << 10;

/// Builds the frames one link sends. One thread.
class writer {
 public:
  /// Appends `e` to the open messages frame. False (nothing written) when
  /// its type is not registered for the wire: the caller dead-letters it.
  bool add(const envelope& e);
  void heartbeat();
  void ready();
  void goodbye(std::string_view reason);
  /// Confirms that `received` messages of the peer's have arrived here.
  void ack(std::uint64_t received);
  bool empty() const noexcept { return buf_.empty(); }
  std::size_t size() const noexcept { return buf_.size(); }
  /// Every byte ready to send (frames closed); the writer starts afresh.
  std::string take();
  /// The same into `into`, whose old buffer the writer keeps for reuse.
  void take(std::string& into);

 private:
  void open(kind k);
  void close_open();
  std::string buf_;
  std::size_t open_ = npos;  ///< offset of the open messages frame's header
  struct known {
    std::uint16_t id;
    const wire_codec* codec;
  };
  std::unordered_map<const message_type*, known> ids_;
  const message_type* last_type_ = nullptr;  // most sends repeat the last type
  known last_{};
  bool in_frame_ = false;  ///< a message was written to the open frame
  address last_target_, last_sender_;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
};

/// One message read off a link. `e` owns the decoded message; it is null
/// when this engine has no codec for `type_name` (which points into the
/// reader: valid while the reader lives).
struct incoming {
  envelope* e = nullptr;
  std::string_view type_name;
  address target;
  address sender;
  std::uint64_t request = 0;
  bool reply = false;
};

/// Reads the frames of one link's byte stream. One thread.
class reader {
 public:
  explicit reader(std::size_t max_frame = default_max_frame) : max_frame_(max_frame) {}
  void feed(const std::byte* p, std::size_t n) { buf_.append(reinterpret_cast<const char*>(p), n); }
  /// Handles every complete frame: on_message(incoming&&) per message,
  /// on_control(kind, body) per heartbeat, goodbye, ack or ready. Returns why the input
  /// is malformed (the link must close), or an empty string.
  template <class OnMessage, class OnControl>
  std::string drain(OnMessage&& on_message, OnControl&& on_control);
  /// Bytes held that do not make a whole frame yet.
  std::size_t pending() const noexcept { return buf_.size() - pos_; }

 private:
  std::string decode_messages(std::string_view body, std::vector<incoming>& out);
  std::size_t max_frame_;
  std::string buf_;
  std::size_t pos_ = 0;
  std::deque<std::string> names_;          ///< by id; stable, views point in
  std::vector<const wire_codec*> codecs_;  ///< by id; null: unknown here
  std::vector<incoming> batch_;            ///< one frame's messages; reused
};

template <class OnMessage, class OnControl>
std::string reader::drain(OnMessage&& on_message, OnControl&& on_control) {
  std::vector<incoming>& batch = batch_;
  std::string error;
  while (buf_.size() - pos_ >= header_bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
    const std::uint32_t body = std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 |
                               std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
    const auto k = static_cast<kind>(p[4]);
    if (body > max_frame_) {
      error = "frame of " + std::to_string(body) + " bytes exceeds max_frame (" +
              std::to_string(max_frame_) + ")";
      break;
    }
    if (k < kind::messages || k > kind::ready) {
      error = "unknown frame kind " + std::to_string(static_cast<unsigned>(p[4]));
      break;
    }
    if (buf_.size() - pos_ - header_bytes < body) break;  // the rest is still on its way
    std::string_view b(buf_.data() + pos_ + header_bytes, body);
    pos_ += header_bytes + body;
    if (k == kind::messages) {
      error = decode_messages(b, batch);
      for (incoming& m : batch) on_message(std::move(m));
      batch.clear();
      if (!error.empty()) break;
    } else {
      on_control(k, b);
    }
  }
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > (1u << 16))) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return error;
}

}  // namespace troupe::internal::frame
