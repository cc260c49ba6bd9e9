#pragma once
// A layer added to a system: links to other engines (troupe/remote.hpp,
// troupe::with_links) and the convention (troupe/convention.hpp,
// troupe::with_convention). The core knows them only as extensions: it
// calls them at fixed points of its life, and they plug into the interfaces
// the core owns (a router for addresses of other engines, a name backend,
// handlers for their own control messages; engine/core/extension_points.hpp).
//
//     troupe::system sys({.shards = 2, .engine_id = 1},
//                        troupe::with_links({.listen = "127.0.0.1:0"}));

#include <memory>
#include <string_view>

namespace troupe {

namespace internal {
class system_impl;
}  // namespace internal

/// One layer of an engine above its core. Made by that layer's header and
/// handed to the system's constructor, which owns it from then on and
/// destroys it after its shards have stopped.
///
/// Threads: the system calls its hooks from the thread that constructs or
/// stops the system, never concurrently; what a layer does on the shards it
/// does through the core's interfaces.
class extension {
 public:
  virtual ~extension() = default;
  extension(const extension&) = delete;
  extension& operator=(const extension&) = delete;

  /// Its name in errors and logs ("links", "convention").
  virtual std::string_view name() const noexcept = 0;

 protected:
  extension() = default;

 private:
  friend class internal::system_impl;
  /// Every extension, in the order given, before any is attached: it may
  /// check the others it needs (and their options). Throws
  /// std::invalid_argument naming the problem.
  virtual void configure(internal::system_impl& sys) { (void)sys; }
  /// The shards exist and no thread runs yet: install routers, backends
  /// and control handlers. Throws on a bad option (the system's
  /// constructor then throws it).
  virtual void attach(internal::system_impl& sys) = 0;
  /// The shard threads run (in inline mode: the shard is attached).
  virtual void started(internal::system_impl& sys) { (void)sys; }
  /// stop() begins; the shards still run. In reverse order of attach.
  virtual void stopping(internal::system_impl& sys) { (void)sys; }
};

/// What the system's constructor takes.
using extension_ptr = std::unique_ptr<extension>;

}  // namespace troupe
