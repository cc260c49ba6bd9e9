// Stackful actors: each runs its handlers on a Boost.Context fiber, so that
// blocking_ask() can park the fiber (not the shard's thread) anywhere down
// an ordinary call stack.

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include "core/actor_access.hpp"
#include "core/shard.hpp"

namespace ctx = boost::context;

namespace troupe::internal {

struct fiber_state {
  actor_base* owner = nullptr;
  ctx::fiber handler_side;  ///< the fiber, while the shard runs
  ctx::fiber shard_side;    ///< the shard, while the fiber runs
  envelope* msg = nullptr;
  bool handled = false;
  bool blocked = false;
  bool exit = false;
  internal::failure failure;
};

namespace {

// Enough for ordinary library code; the guard page turns an overflow into
// a clean fault rather than a silent corruption.
constexpr std::size_t fiber_stack_bytes = 256 * 1024;

thread_local fiber_state* running_fiber = nullptr;

fiber_state* make_fiber(actor_base& a) {
  auto* f = new fiber_state;
  f->owner = &a;
  f->handler_side =
      ctx::fiber(std::allocator_arg, ctx::protected_fixedsize_stack(fiber_stack_bytes),
                 [f](ctx::fiber&& shard_side) {
                   f->shard_side = std::move(shard_side);
                   while (!f->exit) {
                     running_fiber = f;
                     try {
                       f->handled = actor_access::dispatch(*f->owner, *f->msg);
                       f->failure = {};
                     } catch (const ctx::detail::forced_unwind&) {
                       throw;  // the fiber is being destroyed: let Boost unwind it
                     } catch (const std::exception& ex) {
                       f->handled = true;
                       f->failure = caught(&ex);
                     } catch (...) {
                       f->handled = true;
                       f->failure = caught(nullptr);
                     }
                     running_fiber = nullptr;
                     f->shard_side = std::move(f->shard_side).resume();
                   }
                   return std::move(f->shard_side);
                 });
  return f;
}

void switch_in(fiber_state* f) { f->handler_side = std::move(f->handler_side).resume(); }

}  // namespace

bool shard::handle_on_fiber(actor_base& a, envelope* e) {
  fiber_state*& f = *actor_access::fiber_slot(a);
  if (!f) f = make_fiber(a);
  f->msg = e;
  switch_in(f);
  if (f->blocked) {
    actor_access::state(a) |= st_waiting;
    return false;
  }
  failure why = std::exchange(f->failure, {});
  return finish_message(a, e, f->handled, why ? &why : nullptr);
}

void shard::resume_fiber(actor_base& a) {
  fiber_state* f = *actor_access::fiber_slot(a);
  switch_in(f);
  if (f->blocked) return;
  actor_access::state(a) &= static_cast<std::uint16_t>(~st_waiting);
  failure why = std::exchange(f->failure, {});
  if (finish_message(a, f->msg, f->handled, why ? &why : nullptr) && actor_access::head(a)) {
    make_ready(a);
  }
}

bool fiber_ask(pending_ask& p, envelope* request, duration timeout) {
  fiber_state* f = running_fiber;
  if (!f) {
    destroy_envelope(request);
    return false;
  }
  struct resume_on_reply final : pending_ask {
    pending_ask* user;
    actor_base* actor;
    resume_on_reply(pending_ask* u, actor_base* a) : user(u), actor(a) {}
    void complete(envelope* reply) noexcept override {
      actor_base* a = actor;  // `this` lives on the fiber's stack: gone once it runs on
      user->complete(reply);
      actor_access::home(*a)->resume_fiber(*a);
    }
  } resume(&p, f->owner);
  request->sender = f->owner->self();
  actor_access::home(*f->owner)->start_ask(resume, request, timeout);
  running_fiber = nullptr;
  f->blocked = true;
  f->shard_side = std::move(f->shard_side).resume();
  f->blocked = false;
  running_fiber = f;
  return true;
}

void destroy_fiber(fiber_state* f) noexcept {
  if (!f) return;
  if (f->handler_side && !f->blocked) {
    f->exit = true;
    switch_in(f);  // leaves its loop and ends
  }
  delete f;  // a fiber still blocked is unwound by its destructor
}

}  // namespace troupe::internal
