#pragma once
// Zero-loss verification (SPEC §6, §9): every message the server accepted (202) must be
// stored exactly once, and each conversation's history must be in strictly increasing,
// gap-free seq order. The bench feeds expect() with what was accepted, then pages through
// the history endpoint feeding observe(); report() counts what is lost, duplicated, out of
// order, or stored without an acknowledgement (a request that timed out on the client side
// may still have been accepted: that is not a loss and not a failure).
//
// Not thread-safe; the bench merges per-thread acceptance lists before verifying.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace chat4all::bench {

// A message id (UUID) as two 64-bit halves: cheap to hash and store by the million.
struct id128 {
  std::uint64_t hi = 0, lo = 0;
  static std::optional<id128> parse(std::string_view text);  // canonical 8-4-4-4-12 hex
  std::string str() const;
  friend bool operator==(const id128&, const id128&) = default;
};
struct id128_hash {
  std::size_t operator()(const id128& v) const noexcept {
    return static_cast<std::size_t>(v.hi * 0x9E3779B97F4A7C15ULL ^ v.lo);
  }
};

// How the bench's clients choose message ids (SPEC: any UUID, chosen by the client).
// v7: time-ordered (RFC 9562: 48-bit Unix milliseconds, a 12-bit counter within the
//     millisecond, 62 random bits), what a client should use for database keys;
// v4: 122 random bits, what many clients use (every insert lands at a random place of the
//     store's message_id index);
// sequential: a random 64-bit prefix per generator and a counter (the bench before v7).
enum class id_kind { v7, v4, sequential };
std::optional<id_kind> parse_id_kind(std::string_view name);
std::string_view id_kind_name(id_kind k);

// Generates unique ids of one kind. One generator per thread (not thread-safe).
class id_generator {
 public:
  explicit id_generator(id_kind kind = id_kind::v7);
  id128 next();

 private:
  id_kind kind_;
  std::uint64_t prefix_;
  std::uint64_t salt_;
  std::uint64_t counter_ = 0;
  std::uint64_t last_ms_ = 0;  // v7: the millisecond of the last id (never goes back)
  std::uint64_t seq_in_ms_ = 0;
  std::uint64_t rng_state_;  // splitmix64
  std::uint64_t random64();
};

struct verify_report {
  std::uint64_t conversations = 0;
  std::uint64_t expected = 0;          // accepted by the server
  std::uint64_t found = 0;             // accepted and stored (counted once)
  std::uint64_t lost = 0;              // accepted, never seen in the history
  std::uint64_t duplicates = 0;        // extra copies of a message in the history
  std::uint64_t order_violations = 0;  // seq not strictly increasing
  std::uint64_t gaps = 0;              // seq not previous + 1
  std::uint64_t unacknowledged = 0;    // stored, but the client never got its 202
  bool ok() const { return lost == 0 && duplicates == 0 && order_violations == 0 && gaps == 0; }
};

class verifier {
 public:
  void expect(std::int64_t conversation, id128 id);
  // A history entry, in the order the server returned it (oldest first).
  void observe(std::int64_t conversation, std::int64_t seq, id128 id);
  // The seq to continue paging after.
  std::int64_t cursor(std::int64_t conversation) const;
  // True when every expected message of the conversation has been seen.
  bool complete(std::int64_t conversation) const;
  std::vector<std::int64_t> conversations() const;
  verify_report report() const;

 private:
  struct conv_state {
    std::unordered_map<id128, std::uint32_t, id128_hash> expected;  // id -> times seen
    std::unordered_map<id128, std::uint32_t, id128_hash> others;    // unacknowledged ids
    std::uint64_t found = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t order_violations = 0;
    std::uint64_t gaps = 0;
    std::int64_t last_seq = 0;
  };
  std::unordered_map<std::int64_t, conv_state> convs_;
};

}  // namespace chat4all::bench
