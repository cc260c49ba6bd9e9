#include "cluster/convention_layer.hpp"

#include <algorithm>
#include <stdexcept>

#include "cluster/etcd_membership.hpp"
#include "cluster/etcd_names.hpp"
#include "core/actor_access.hpp"
#include "core/system_impl.hpp"
#include "remote/link.hpp"
#include "remote/links.hpp"
#include "troupe/system.hpp"

namespace troupe::internal {

namespace {

/// Lines actors log, on to the leader.
class to_leader final : public log_forwarder {
 public:
  explicit to_leader(const convention_layer& c) : layer_(c) {}
  void forward(shard& s, const address& who, log_level level, const std::string& text) override {
    const address agent = layer_.agent();
    if (!agent.is_null())
      s.send(make_envelope(log_line{who.engine(), who, level, text}, who, agent));
  }

 private:
  const convention_layer& layer_;
};

}  // namespace

convention_layer::convention_layer(troupe::convention_options o) : opts_(std::move(o)) {}
convention_layer::~convention_layer() = default;

convention_layer* convention_layer::of(const system_impl& sys) noexcept {
  return sys.find_extension<convention_layer>();
}

void convention_layer::configure(system_impl& sys) {
  links_layer* links = links_layer::of(sys);
  if (!links) {
    throw std::invalid_argument(
        "a convention runs over links: give the system troupe::with_links before "
        "troupe::with_convention");
  }
  link_options& lo = links->options();
  if (!opts_.membership.empty()) {
    if (!opts_.leader.empty()) {
      throw std::invalid_argument(
          "a convention has a leader or keeps its membership in etcd, not both");
    }
    auto endpoints = parse_etcd_url(opts_.membership);
    if (!endpoints) throw std::invalid_argument(endpoints.err().text());
    etcd_endpoints_ = std::move(endpoints.value());
  }
  std::string leader_host, listen_host;
  std::uint16_t leader_port = 0, listen_port = 0;
  if (opts_.membership.empty() &&
      (!parse_peer(opts_.leader, leader_host, leader_port) || leader_port == 0)) {
    throw std::invalid_argument("convention leader '" + opts_.leader + "' is not host:port");
  }
  if (lo.listen.empty() || !parse_peer(lo.listen, listen_host, listen_port)) {
    throw std::invalid_argument(
        "a member of a convention listens for its peers: set listen (host:port)");
  }
  if (!opts_.capabilities.is_object()) {
    throw std::invalid_argument("capabilities must be a JSON object, got " +
                                opts_.capabilities.dump());
  }
  if (opts_.advertise.empty() && (listen_host == "0.0.0.0" || listen_host == "::")) {
    throw std::invalid_argument("listening on " + listen_host +
                                ", the convention needs the address others dial: set advertise");
  }
  agent_options& co = agent_opts_;
  co.leader = opts_.leader;
  co.in_etcd = !opts_.membership.empty();
  co.is_leader = !co.in_etcd && leader_host == listen_host && leader_port == listen_port;
  co.capabilities = opts_.capabilities;
  co.module_cache = opts_.module_cache;
  co.load_every = opts_.load_every;
  co.join_at_start = opts_.join_at_start;
  co.forward_logs = opts_.forward_logs;
  co.link_wait = lo.peer_timeout;
  if (!co.is_leader && !co.in_etcd &&
      std::find(lo.peers.begin(), lo.peers.end(), co.leader) == lo.peers.end()) {
    lo.peers.push_back(co.leader);  // dialled, and redialled while it is away
  }
  link_convention_ = lo.convention;
  register_convention_messages();
}

void convention_layer::attach(system_impl& sys) {
  if (!etcd_endpoints_.empty()) {
    sys.set_name_backend(std::make_unique<etcd_names>(sys, etcd_endpoints_, link_convention_));
    for (const message_type* t : {type_id<name_etcd_result>(), type_id<name_changed>()}) {
      sys.controls().add(t, [](shard& s, envelope* e) { return s.handle_name_control(e); });
    }
  }
  if (opts_.forward_logs) sys.set_log_forwarder(std::make_unique<to_leader>(*this));
  // A member joining: for the convention's agent.
  sys.controls().add<conv_hello>([this](shard& s, envelope* e) {
    if (agent_.is_null()) return false;
    e->target = agent_;
    e->flags = e->flags & ~flag_control;
    s.deliver_control_to_actor(e);
    return true;
  });
}

void convention_layer::started(system_impl& sys) {
  const links_layer* links = links_layer::of(sys);
  agent_opts_.advertise = opts_.advertise.empty()
                              ? links->listen_host() + ":" + std::to_string(links->listen_port())
                              : opts_.advertise;
  if (agent_opts_.in_etcd) {
    // Before the agent, which hands it this engine's record when it joins.
    membership_ = std::make_unique<etcd_membership>(sys, etcd_endpoints_, link_convention_,
                                                    sys.engine(), links->options().peer_timeout);
  }
  agent_ = start_convention_agent(sys, agent_opts_);
}

void convention_layer::stopping(system_impl&) {
  // Its record leaves etcd first: the others see it go. Closed, not freed:
  // the agent may still hand it a record while the shards run.
  if (membership_) membership_->close();
}

void convention_layer::join_membership(const member_record& me) {
  if (membership_) membership_->join(me);
}

void convention_layer::publish_member(const member_record& me) {
  if (membership_) membership_->update(me);
}

address convention_agent_of(shard& s) {
  const convention_layer* c = convention_layer::of(s.owner());
  return c ? c->agent() : address{};
}

}  // namespace troupe::internal

namespace troupe {

namespace {

error no_convention() {
  return error(errc::misuse,
               "this engine is in no convention (start it with a convention leader to join)");
}

address agent_of(system& sys) {
  const auto* c = internal::convention_layer::of(internal::system_access::impl(sys));
  return c ? c->agent() : address{};
}

}  // namespace

result<std::vector<std::string>> parse_membership_url(std::string_view url) {
  return internal::parse_etcd_url(url);
}

extension_ptr with_convention(convention_options options) {
  return std::make_unique<internal::convention_layer>(std::move(options));
}

result<std::vector<member>> members(system& sys, duration timeout) {
  const address agent = agent_of(sys);
  if (agent.is_null()) return no_convention();
  return sys.ask<std::vector<member>>(agent, internal::members_query{}, timeout);
}

void join_convention(system& sys) {
  const address agent = agent_of(sys);
  if (!agent.is_null()) sys.tell(agent, internal::convention_join{});
}

void subscribe_convention(system& sys, const address& who, bool on) {
  const address agent = agent_of(sys);
  if (!agent.is_null()) sys.tell(agent, internal::convention_subscription{who, on});
}

result<done> update_capabilities(system& sys, nlohmann::json capabilities) {
  const address agent = agent_of(sys);
  if (agent.is_null()) return no_convention();
  return sys.ask<done>(agent, internal::capabilities_update{std::move(capabilities)},
                       std::chrono::seconds(5));
}

result<address> spawn_placed(system& sys, std::string type_name, nlohmann::json args,
                             place_options o) {
  const address agent = agent_of(sys);
  if (agent.is_null()) return no_convention();
  const duration timeout = internal::placement_timeout(o);
  return sys.ask<address>(
      agent, internal::place_request{std::move(type_name), std::move(args), std::move(o)}, timeout);
}

address convention_agent(const actor_base&) noexcept {
  internal::shard* s = internal::this_shard;  // a handler runs on its actor's shard
  return s ? internal::convention_agent_of(*s) : address{};
}

task<result<address>> spawn_placed(actor_base& self, std::string type_name, nlohmann::json args,
                                   place_options o) {
  const address agent = convention_agent(self);
  if (agent.is_null()) co_return no_convention();
  const duration timeout = internal::placement_timeout(o);
  internal::place_request m{std::move(type_name), std::move(args), std::move(o)};
  co_return co_await self.ask<address>(agent, std::move(m), timeout);
}

}  // namespace troupe
