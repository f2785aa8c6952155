#pragma once
// Message ids that were accepted (or are being appended) but are not in the store yet.
// This is what makes concurrent retries of one message_id produce exactly one message and
// lets a retry with different content get 409 even before the router stored the first.
// Bounded: when `max` ids are in flight, new claims are refused (the caller answers 503).
// In a process without a router (role `api`), nobody reports ids stored: give a
// `durable_ttl` and durable ids are forgotten after it (by then the store answers for them).
// The default keeps them until stored() (role `all`).
// Thread-safe.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "core/ids.hpp"

namespace chat4all {

class inflight_messages {
 public:
  explicit inflight_messages(std::size_t max, std::chrono::milliseconds durable_ttl = never)
      : max_(max), ttl_(durable_ttl) {}

  static constexpr std::chrono::milliseconds never = std::chrono::milliseconds::max();

  enum class claim { fresh, same, contended, conflict, full };
  // fresh: the caller now owns the id and must call durable(), abandon() or release().
  // same: another request with the same content owns it; await its outcome with wait().
  // contended: another request with other content owns it but has not appended yet (it may
  //   still find a stored copy and lose): wait(), then claim again.
  // conflict: another content is already durable under this id.
  claim try_claim(const uuid& id, std::uint64_t hash);
  // try_claim for several ids at once, atomically: two requests carrying the same batch
  // cannot split it between them (which would store it out of order).
  std::vector<claim> try_claim_all(const std::vector<std::pair<uuid, std::uint64_t>>& ids);
  enum class outcome { durable, failed, gone, conflict };
  // Waits for the owner of `id` to finish. `gone`: the id is no longer tracked (stored by
  // the router, or abandoned before this call) and the caller must look again.
  boost::asio::awaitable<outcome> wait(const uuid& id);
  void durable(const uuid& id);
  // The append failed: waiters get `failed`.
  void abandon(const uuid& id);
  // The owner found the id already stored, with the same content (waiters, who share the
  // owner's content, get `durable`) or with other content (they get `conflict`).
  void release(const uuid& id, bool same_content);
  // The router stored these ids: the store answers for them from now on.
  void stored(const std::vector<uuid>& ids);
  std::size_t size() const;

 private:
  struct waiter {
    boost::asio::any_io_executor ex;  // where the waiting coroutine resumes
    boost::asio::any_completion_handler<void(outcome)> handler;
  };
  struct entry {
    std::uint64_t hash = 0;
    bool durable = false;
    bool stored = false;  // the router stored it before the owner saw its append complete
    std::vector<waiter> waiters;
  };
  // Completes the waiters with `o`; `keep` leaves the id tracked as durable.
  void finish(const uuid& id, outcome o, bool keep);

  void expire_locked(std::chrono::steady_clock::time_point now);
  claim claim_locked(const uuid& id, std::uint64_t hash);

  mutable std::mutex mu_;
  // Open addressing: no allocation per id, and each of the three lookups of an accepted
  // message (claim, durable, stored) touches one slot instead of a bucket and a node.
  boost::unordered_flat_map<uuid, entry, uuid_hash> map_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, uuid>> durable_order_;
  std::size_t max_;
  std::chrono::milliseconds ttl_;
};

}  // namespace chat4all
