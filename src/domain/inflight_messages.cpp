#include "domain/inflight_messages.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace chat4all {
namespace asio = boost::asio;

namespace {
constexpr std::size_t shrink_above = 1 << 16;  // slots
}  // namespace

void inflight_messages::expire_locked(std::chrono::steady_clock::time_point now) {
  while (!durable_order_.empty() && now - durable_order_.front().first >= ttl_) {
    auto it = map_.find(durable_order_.front().second);
    if (it != map_.end() && it->second.durable) map_.erase(it);
    durable_order_.pop_front();
  }
}

inflight_messages::claim inflight_messages::try_claim(const uuid& id, std::uint64_t hash) {
  std::lock_guard lock(mu_);
  expire_locked(std::chrono::steady_clock::now());
  return claim_locked(id, hash);
}

std::vector<inflight_messages::claim> inflight_messages::try_claim_all(
    const std::vector<std::pair<uuid, std::uint64_t>>& ids) {
  std::vector<claim> out;
  out.reserve(ids.size());
  std::lock_guard lock(mu_);
  expire_locked(std::chrono::steady_clock::now());
  for (const auto& [id, hash] : ids) out.push_back(claim_locked(id, hash));
  return out;
}

inflight_messages::claim inflight_messages::claim_locked(const uuid& id, std::uint64_t hash) {
  if (auto it = map_.find(id); it != map_.end()) {
    if (it->second.hash == hash) return claim::same;
    return it->second.durable ? claim::conflict : claim::contended;
  }
  if (map_.size() >= max_) return claim::full;
  map_[id].hash = hash;
  return claim::fresh;
}

asio::awaitable<inflight_messages::outcome> inflight_messages::wait(const uuid& id) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(outcome)>(
      [this, id](auto handler) {
        std::unique_lock lock(mu_);
        auto it = map_.find(id);
        if (it == map_.end() || it->second.durable) {
          const outcome o = it == map_.end() ? outcome::gone : outcome::durable;
          lock.unlock();
          auto ex = asio::get_associated_executor(handler);
          asio::post(ex, [h = std::move(handler), o]() mutable { std::move(h)(o); });
          return;
        }
        asio::any_io_executor ex = asio::get_associated_executor(handler);
        it->second.waiters.push_back({std::move(ex), std::move(handler)});
      },
      asio::use_awaitable);
}

void inflight_messages::finish(const uuid& id, outcome o, bool keep) {
  std::vector<waiter> waiters;
  {
    std::lock_guard lock(mu_);
    auto it = map_.find(id);
    if (it == map_.end()) return;
    waiters.swap(it->second.waiters);
    if (keep && !it->second.stored) {
      it->second.durable = true;
      if (ttl_ != never) durable_order_.emplace_back(std::chrono::steady_clock::now(), id);
    } else
      map_.erase(it);
  }
  for (auto& w : waiters) {
    asio::post(w.ex, [h = std::move(w.handler), o]() mutable { std::move(h)(o); });
  }
}

void inflight_messages::durable(const uuid& id) {
  finish(id, outcome::durable, true);
}
void inflight_messages::abandon(const uuid& id) {
  finish(id, outcome::failed, false);
}
void inflight_messages::release(const uuid& id, bool same_content) {
  finish(id, same_content ? outcome::durable : outcome::conflict, false);
}

void inflight_messages::stored(const std::vector<uuid>& ids) {
  std::lock_guard lock(mu_);
  for (const auto& id : ids) {
    auto it = map_.find(id);
    if (it == map_.end()) continue;
    // A durable entry has no waiters left (they were completed by durable()).
    if (it->second.durable)
      map_.erase(it);
    else
      it->second.stored = true;
  }
  // A flat table keeps its capacity: give the memory of a past backlog back once it drained.
  if (map_.bucket_count() > shrink_above && map_.size() < map_.bucket_count() / 16) map_.rehash(0);
}

std::size_t inflight_messages::size() const {
  std::lock_guard lock(mu_);
  return map_.size();
}

}  // namespace chat4all
