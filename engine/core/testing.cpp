#include "troupe/testing.hpp"

#include <algorithm>
#include <string_view>

#include "core/shard.hpp"
#include "core/system_impl.hpp"

namespace troupe::testing {

namespace {

using internal::envelope;
using internal::shard;

system_options inline_options(system_options o) {
  o.inline_mode = true;
  return o;
}

/// The inline shard, as the calling thread's shard for as long as this
/// lives: handlers, timers and sleeps find it through this_shard.
class on_shard {
 public:
  explicit on_shard(internal::system_impl& sys)
      : s_(sys.shard_at(0)), saved_(std::exchange(internal::this_shard, &s_)) {}
  ~on_shard() { internal::this_shard = saved_; }
  on_shard(const on_shard&) = delete;
  on_shard& operator=(const on_shard&) = delete;
  shard* operator->() const noexcept { return &s_; }

 private:
  shard& s_;
  shard* saved_;
};

std::string who(const address& a) { return a.is_null() ? "outside" : a.to_string(); }

std::string where(const std::source_location& loc) {
  std::string_view file = loc.file_name();
  if (auto slash = file.rfind('/'); slash != std::string_view::npos) file.remove_prefix(slash + 1);
  return std::string(file) + ":" + std::to_string(loc.line());
}

}  // namespace

fixture::fixture(system_options options) : sys(inline_options(std::move(options))) {}

fixture::~fixture() {
  // What still waits is not run: the test's own objects that handlers
  // touch may be gone by now (a test case's locals end before its
  // fixture). The engine's stop, in sys's destructor, does the rest.
  on_shard s(*sys.impl_);
  s->settle();
  s->discard_waiting();
}

void fixture::settle() {
  on_shard s(*sys.impl_);
  s->settle();
}

void fixture::inject_envelope(envelope* e) {
  on_shard s(*sys.impl_);
  s->settle();  // spawns from outside are installed first: the message finds its actor
  s->send(e);
}

bool fixture::dispatch_message() {
  on_shard s(*sys.impl_);
  s->settle();
  return s->run_one();
}

std::size_t fixture::dispatch_all() {
  std::size_t n = 0;
  while (dispatch_message()) ++n;
  return n;
}

std::size_t fixture::mail_count(const address& a) {
  on_shard s(*sys.impl_);
  s->settle();
  return s->mail_waiting(a).value_or(0);
}

std::size_t fixture::mail_count() {
  on_shard s(*sys.impl_);
  s->settle();
  return s->mail_waiting();
}

bool fixture::alive(const address& a) {
  on_shard s(*sys.impl_);
  s->settle();
  return s->mail_waiting(a).has_value();
}

std::size_t fixture::advance_time(duration d) {
  if (d < duration::zero()) {
    throw std::invalid_argument("advance_time: virtual time never goes back (d < 0)");
  }
  return set_time(now() + d);
}

std::size_t fixture::set_time(std::chrono::steady_clock::time_point t) {
  on_shard s(*sys.impl_);
  if (t < s->now()) {
    throw std::invalid_argument("set_time: virtual time never goes back; it is " +
                                std::to_string(s->now().time_since_epoch().count()) +
                                "ns, asked for " + std::to_string(t.time_since_epoch().count()) +
                                "ns");
  }
  // Timer by timer, each at its own time: what a fired timer starts
  // (a coroutine that sleeps again) counts from there, as it would live.
  std::size_t fired = 0;
  for (auto next = s->next_timer(); next && *next <= t; next = s->next_timer()) {
    s->advance_clock(std::max(s->now(), *next));
    fired += s->fire_due_timers();
  }
  s->advance_clock(t);
  return fired;
}

std::chrono::steady_clock::time_point fixture::now() const { return sys.impl_->shard_at(0).now(); }

bool fixture::evaluate(const clause& c, const address& to) {
  on_shard s(*sys.impl_);
  s->settle();
  const envelope* e = s->peek_next();
  std::string problem;
  if (!e) {
    problem = "no message is waiting";
  } else {
    const bool type_ok = *e->type->info == c.type;
    const bool to_ok = e->target == to;
    const bool from_ok = !c.from || e->sender == *c.from;
    const bool value_ok = type_ok && (!c.with || c.test(c.with, e->payload()));
    if (type_ok && to_ok && from_ok && value_ok) {
      s->run_one();
      return true;
    }
    if (!c.required) return false;
    problem = "the next message is " + std::string(e->is_reply() ? "a reply " : "") +
              internal::type_name(e->type);
    if (type_ok && c.show) problem += " " + c.show(e->payload());
    problem += " from " + who(e->sender) + " to " + who(e->target);
    if (type_ok && to_ok && from_ok) problem += ", whose value does not match";
  }
  if (!c.required) return false;
  std::string wanted = internal::type_name_of(c.type);
  if (c.with) wanted += " " + c.with_text;
  if (c.from) wanted += " from " + who(*c.from);
  wanted += " to " + who(to);
  throw expectation_failed(where(c.loc) + ": expected " + wanted + ", but " + problem);
}

}  // namespace troupe::testing
