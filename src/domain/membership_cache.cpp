#include "domain/membership_cache.hpp"

#include <algorithm>

namespace chat4all {

bool is_member(const conversation& c, user_id user) noexcept {
  return std::binary_search(c.member_ids.begin(), c.member_ids.end(), user);
}

void membership_cache::put(conversation c) {
  auto& s = shard_for(c.id);
  auto ptr = std::make_shared<const conversation>(std::move(c));
  std::lock_guard lock(s.mu);
  if (s.map.size() >= max_ / shards) s.map.clear();
  s.map[ptr->id] = std::move(ptr);
}

task<result<std::shared_ptr<const conversation>>> membership_cache::get(conversation_id id) {
  auto& s = shard_for(id);
  {
    std::lock_guard lock(s.mu);
    if (auto it = s.map.find(id); it != s.map.end()) co_return it->second;
  }
  auto found = co_await store_.find_conversation(id);
  if (!found) co_return std::move(found).err();
  auto ptr = std::make_shared<const conversation>(std::move(found).value());
  std::lock_guard lock(s.mu);
  if (s.map.size() >= max_ / shards) s.map.clear();
  s.map[id] = ptr;
  co_return ptr;
}

task<result<std::shared_ptr<const conversation>>> membership_cache::require_member(
    conversation_id id, user_id user) {
  auto c = co_await get(id);
  if (!c) co_return c;
  if (!is_member(**c, user))
    co_return error{errc::forbidden, "you are not a member of this conversation"};
  co_return c;
}

}  // namespace chat4all
