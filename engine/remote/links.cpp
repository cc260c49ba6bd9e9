#include "remote/links.hpp"

#include <stdexcept>

#include "core/system_impl.hpp"
#include "remote/link.hpp"

namespace troupe::internal {

namespace {

/// The link messages go to the shard's own link table.
bool to_link_table(shard& s, envelope* e) {
  if (link_table* t = link_table_of(s)) t->on_control(e);
  return false;
}

}  // namespace

links_layer* links_layer::of(const system_impl& sys) noexcept {
  return sys.find_extension<links_layer>();
}

void links_layer::attach(system_impl& sys) {
  std::string host;
  std::uint16_t port = 0;
  for (const std::string& p : opts_.peers) {
    if (!parse_peer(p, host, port) || port == 0) {
      throw std::invalid_argument("peer '" + p + "' is not host:port");
    }
  }
  if (sys.inline_mode()) {
    throw std::invalid_argument("links to other engines need shard threads, not inline mode");
  }
  auto table = std::make_unique<link_table>(sys.shard_at(0), opts_);
  if (!opts_.listen.empty()) {
    if (!parse_peer(opts_.listen, host, port)) {
      throw std::invalid_argument("listen address '" + opts_.listen + "' is not host:port");
    }
    auto s = net::listen(host, port);  // blocking until shard 0 adapts it
    if (!s)
      throw std::runtime_error("cannot listen for peers on " + opts_.listen + ": " +
                               s.err().text());
    listen_port_ = s->local_port();
    listen_host_ = host;
    table->adopt_listener(std::move(*s));
  }
  sys.set_router(0, std::move(table));
  for (std::size_t i = 1; i < sys.shard_count(); ++i) {
    sys.set_router(i, std::make_unique<link_table>(sys.shard_at(i), opts_));
  }
  control_registry& r = sys.controls();
  r.add<link_adopt>(to_link_table);
  r.add<link_served>(to_link_table);
  r.add<link_down>(to_link_table);
  r.add<link_group_end>(to_link_table);
  r.add<watch_settled>(to_link_table);
}

}  // namespace troupe::internal

namespace troupe {

extension_ptr with_links(link_options options) {
  return std::make_unique<internal::links_layer>(std::move(options));
}

std::uint16_t listen_port(const system& sys) noexcept {
  const auto* l = internal::links_layer::of(internal::system_access::impl(sys));
  return l ? l->listen_port() : 0;
}

const link_options* links_of(const system& sys) noexcept {
  const auto* l = internal::links_layer::of(internal::system_access::impl(sys));
  return l ? &l->options() : nullptr;
}

}  // namespace troupe
