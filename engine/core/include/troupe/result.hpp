#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace troupe {

/// Why an ask (or a delivery) did not give a value.
enum class errc : std::uint8_t {
  timeout,        ///< no reply within the time given
  dead_actor,     ///< no such actor, or it stopped before handling the request
  unhandled,      ///< the actor has no handler for the message type
  failed,         ///< the handler threw; the text carries the exception
  shutting_down,  ///< the engine stopped before the request was answered
  type_mismatch,  ///< the reply's type is not the one asked for
  misuse,         ///< the API was called where it cannot work (text says why)
  mailbox_full,   ///< the receiver's bounded mailbox had no room
  not_found,      ///< no actor has that name
  io,             ///< a socket operation failed (the text names the call and errno)
  peer_lost,      ///< no link to the other engine, or it died first
};

const char* to_string(errc e) noexcept;

/// An error value: a code and a sentence that names the cause.
class error {
 public:
  error(errc code, std::string text) : code_(code), text_(std::move(text)) {}
  errc code() const noexcept { return code_; }
  const std::string& text() const noexcept { return text_; }
  /// "timeout: no reply from 1:0:4.1 within 100ms".
  std::string describe() const { return std::string(to_string(code_)) + ": " + text_; }

 private:
  errc code_;
  std::string text_;
};

/// Thrown by result<T>::value() when it holds an error.
class ask_error : public std::runtime_error {
 public:
  explicit ask_error(const error& e) : std::runtime_error(e.describe()), code_(e.code()) {}
  errc code() const noexcept { return code_; }

 private:
  errc code_;
};

/// The outcome of an ask: a value of T or an error. Any thread may hold it.
template <class T>
class result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  /// The value; throws ask_error when this holds an error.
  T& value() & {
    if (!ok()) throw ask_error(std::get<1>(v_));
    return std::get<0>(v_);
  }
  T&& value() && { return std::move(value()); }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }

  /// Precondition: !ok().
  const error& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

/// The reply to an ask whose handler returns nothing.
struct done {
  friend bool operator==(done, done) noexcept { return true; }
};

}  // namespace troupe
