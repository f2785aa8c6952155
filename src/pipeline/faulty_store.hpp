#pragma once
// Test-only fault injection for the router's store (config key router.fail_store_message_ids):
// a message_store decorator whose store_messages fails (errc::unavailable) for every batch
// that contains one of the given message ids, so that tests can drive the router's retry and
// dead-letter path (SPEC §6) on the real adapters. Every other call is forwarded unchanged,
// store_failed included (a poisoned message can still be recorded as FAILED).
//
// The composition root wraps the store in it only when the key is set: without it, nothing
// of this sits in the hot path. Thread-safe.

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "domain/ports/store.hpp"

namespace chat4all {

class faulty_store final : public message_store {
 public:
  // `failures`: how many store_messages calls fail for each id before they stop failing
  // (negative: they always fail).
  faulty_store(message_store& inner, std::vector<uuid> ids, int failures = -1);

  task<result<std::vector<message>>> store_messages(std::vector<accepted_message> batch,
                                                    timestamp_us now) override;
  task<result<void>> store_failed(accepted_message m, std::string reason,
                                  timestamp_us now) override;
  task<result<std::vector<std::optional<std::uint64_t>>>> find_content_hashes(
      std::vector<uuid> ids) override;
  task<result<message_with_history>> get_message(uuid id) override;
  task<result<history_page>> history(history_query q) override;

  // store_messages calls failed on purpose so far.
  std::uint64_t injected() const;

 private:
  message_store& inner_;
  mutable std::mutex mu_;
  std::unordered_map<uuid, int, uuid_hash> remaining_;  // id -> failures left (< 0: forever)
  std::uint64_t injected_ = 0;
};

}  // namespace chat4all
