// A module for the convention tests: actors that say where they run, one
// of them only on engines that announce a GPU (its own capability check).

#include <troupe/module.hpp>

#include <string>

#include "conv_work.hpp"

namespace {

/// Ask it anything: it answers with its engine id and its arguments' tag.
struct where_query {
  std::string tag;
};
struct where_answer {
  std::uint32_t engine = 0;
  std::string tag;
};
void to_json(nlohmann::json& j, const where_query& m) { j = {{"tag", m.tag}}; }
void from_json(const nlohmann::json& j, where_query& m) { m.tag = j.at("tag").get<std::string>(); }
void to_json(nlohmann::json& j, const where_answer& m) {
  j = {{"engine", m.engine}, {"tag", m.tag}};
}
void from_json(const nlohmann::json& j, where_answer& m) {
  m.engine = j.at("engine").get<std::uint32_t>();
  m.tag = j.at("tag").get<std::string>();
}

struct locator : troupe::actor<locator, where_query> {
  explicit locator(const nlohmann::json& args)
      : tag_(args.is_object() ? args.value("tag", "") : "") {}
  where_answer on(const where_query& q) { return {self().engine(), tag_ + q.tag}; }

 private:
  std::string tag_;
};

struct gpu_locator : locator {
  using locator::locator;
  static bool capability_check(const nlohmann::json& capabilities, const nlohmann::json&) {
    return capabilities.value("gpu", false);
  }
};

/// A worker for the convention pool tests: each job waits `ms` on a timer
/// (its shard runs other actors meanwhile; this worker takes no other job).
struct busy_worker : troupe::actor<busy_worker, conv_test::work> {
  busy_worker() = default;
  troupe::task<conv_test::work_done> on(const conv_test::work& w) {
    const conv_test::work job = w;
    co_await troupe::sleep_for{std::chrono::milliseconds(job.ms)};
    co_return conv_test::work_done{self().engine(), 0, job.id};
  }
};

}  // namespace

TROUPE_MODULE("test.conv") {
  registry.actor<locator>("conv.locator");
  registry.actor<gpu_locator>("conv.gpu_locator");
  registry.message<where_query>("conv.where");
  registry.message<where_answer>("conv.here");
  registry.actor<busy_worker>("conv.busy_worker");
  registry.message<conv_test::work>("conv.work");
  registry.message<conv_test::work_done>("conv.work_done");
}
