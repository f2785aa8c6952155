#pragma once
// Read-through cache of conversations and their members. Membership is fixed when a
// conversation is created (the API has no add/remove member), so entries never go stale;
// the cache is bounded and simply forgets everything when full.
// Thread-safe.

#include <memory>
#include <mutex>
#include <unordered_map>

#include "domain/ports/store.hpp"

namespace chat4all {

class membership_cache {
 public:
  membership_cache(conversation_store& store, std::size_t max_entries = 100000)
      : store_(store), max_(max_entries) {}

  // not_found for an unknown conversation.
  task<result<std::shared_ptr<const conversation>>> get(conversation_id id);
  // not_found / forbidden when `user` is not a member.
  task<result<std::shared_ptr<const conversation>>> require_member(conversation_id id,
                                                                   user_id user);
  void put(conversation c);

 private:
  static constexpr std::size_t shards = 16;
  struct shard {
    std::mutex mu;
    std::unordered_map<conversation_id, std::shared_ptr<const conversation>> map;
  };
  shard& shard_for(conversation_id id) { return shards_[static_cast<std::size_t>(id) % shards]; }

  conversation_store& store_;
  std::size_t max_;
  shard shards_[shards];
};

bool is_member(const conversation& c, user_id user) noexcept;

}  // namespace chat4all
