#pragma once
// The convention as an extension of a system (troupe::with_convention):
// over the links layer, it starts this engine's convention agent, keeps the
// membership in etcd when asked to (and the directory's names with it), and
// forwards actors' log lines to the leader.

#include <memory>
#include <string>
#include <vector>

#include "cluster/convention.hpp"
#include "troupe/convention.hpp"
#include "troupe/extension.hpp"

namespace troupe::internal {

class etcd_membership;
class system_impl;

class convention_layer final : public extension {
 public:
  explicit convention_layer(troupe::convention_options o);
  ~convention_layer() override;
  std::string_view name() const noexcept override { return "convention"; }

  /// The convention's agent on shard 0 (null before the system started).
  const address& agent() const noexcept { return agent_; }
  /// This engine joins the convention as `me`: its record goes into etcd
  /// (when membership is there). Any thread.
  void join_membership(const member_record& me);
  /// This engine's record changed: etcd hears of it (when membership is there).
  void publish_member(const member_record& me);

  /// The convention layer of `sys`; null if it has none. Any thread.
  static convention_layer* of(const system_impl& sys) noexcept;

 private:
  void configure(system_impl& sys) override;
  void attach(system_impl& sys) override;
  void started(system_impl& sys) override;
  void stopping(system_impl& sys) override;

  troupe::convention_options opts_;
  agent_options agent_opts_;
  std::string link_convention_;  ///< the links' convention name: etcd's key prefix
  std::vector<std::string> etcd_endpoints_;
  std::unique_ptr<etcd_membership> membership_;  ///< when kept in etcd
  address agent_;
};

/// This engine's convention agent, from one of its shards; null when it is
/// in no convention.
address convention_agent_of(shard& s);

}  // namespace troupe::internal
