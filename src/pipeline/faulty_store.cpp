#include "pipeline/faulty_store.hpp"

namespace chat4all {

namespace {
task<result<std::vector<message>>> failed(error e) {
  co_return e;
}
}  // namespace

faulty_store::faulty_store(message_store& inner, std::vector<uuid> ids, int failures)
    : inner_(inner) {
  for (const auto& id : ids) remaining_[id] = failures;
}

task<result<std::vector<message>>> faulty_store::store_messages(std::vector<accepted_message> batch,
                                                                timestamp_us now) {
  {
    std::lock_guard lk(mu_);
    const uuid* hit = nullptr;
    for (const auto& m : batch) {
      auto it = remaining_.find(m.message_id);
      if (it == remaining_.end() || it->second == 0) continue;
      if (it->second > 0) --it->second;
      if (hit == nullptr) hit = &m.message_id;
    }
    if (hit != nullptr) {
      ++injected_;
      return failed(error(errc::unavailable, "injected store failure for message " + hit->str() +
                                                 " (router.fail_store_message_ids)"));
    }
  }
  return inner_.store_messages(std::move(batch), now);
}

task<result<void>> faulty_store::store_failed(accepted_message m, std::string reason,
                                              timestamp_us now) {
  return inner_.store_failed(std::move(m), std::move(reason), now);
}

task<result<std::vector<std::optional<std::uint64_t>>>> faulty_store::find_content_hashes(
    std::vector<uuid> ids) {
  return inner_.find_content_hashes(std::move(ids));
}

task<result<message_with_history>> faulty_store::get_message(uuid id) {
  return inner_.get_message(id);
}

task<result<history_page>> faulty_store::history(history_query q) {
  return inner_.history(std::move(q));
}

std::uint64_t faulty_store::injected() const {
  std::lock_guard lk(mu_);
  return injected_;
}

}  // namespace chat4all
