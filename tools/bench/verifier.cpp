#include "verifier.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

namespace chat4all::bench {

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<id128> id128::parse(std::string_view t) {
  if (t.size() != 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-')
    return std::nullopt;
  id128 out;
  int n = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) continue;
    const int v = hex_value(t[i]);
    if (v < 0) return std::nullopt;
    auto& half = n < 16 ? out.hi : out.lo;
    half = (half << 4) | static_cast<std::uint64_t>(v);
    ++n;
  }
  return out;
}

std::string id128::str() const {
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xffff),
                static_cast<unsigned long long>(hi & 0xffff),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

std::optional<id_kind> parse_id_kind(std::string_view name) {
  if (name == "v7") return id_kind::v7;
  if (name == "v4") return id_kind::v4;
  if (name == "sequential") return id_kind::sequential;
  return std::nullopt;
}

std::string_view id_kind_name(id_kind k) {
  switch (k) {
    case id_kind::v7:
      return "v7";
    case id_kind::v4:
      return "v4";
    case id_kind::sequential:
      break;
  }
  return "sequential";
}

id_generator::id_generator(id_kind kind) : kind_(kind) {
  std::random_device rd;
  prefix_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  salt_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  rng_state_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::uint64_t id_generator::random64() {  // splitmix64: fast, and plenty for unique ids
  std::uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

id128 id_generator::next() {
  ++counter_;
  id128 id;
  constexpr std::uint64_t variant = 0x8000000000000000ULL;  // 10xx...
  constexpr std::uint64_t low62 = 0x3fffffffffffffffULL;
  if (kind_ == id_kind::v4) {
    id.hi = (random64() & ~0xf000ULL) | 0x4000ULL;
    id.lo = variant | (random64() & low62);
    return id;
  }
  if (kind_ == id_kind::v7) {
    const auto now_ms =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    // Monotonic within a generator (RFC 9562 method 1): a counter in the 12 rand_a bits;
    // past 4,096 ids in one millisecond the timestamp moves on by one.
    if (now_ms > last_ms_) {
      last_ms_ = now_ms;
      seq_in_ms_ = 0;
    } else if (++seq_in_ms_ > 0xfff) {
      ++last_ms_;
      seq_in_ms_ = 0;
    }
    id.hi = ((last_ms_ & 0xffffffffffffULL) << 16) | 0x7000ULL | seq_in_ms_;
    id.lo = variant | (random64() & low62);
    return id;
  }
  id.hi = (prefix_ & ~0xf000ULL) | 0x4000ULL;  // version 4
  // Variant 10xx in the top bits; the salt keeps generators apart even if prefixes collide,
  // the counter keeps one generator's ids apart for 2^40 ids.
  id.lo = 0x8000000000000000ULL | ((salt_ & 0x3fffffULL) << 40) | (counter_ & 0xffffffffffULL);
  return id;
}

void verifier::expect(std::int64_t conversation, id128 id) {
  convs_[conversation].expected.emplace(id, 0);
}

void verifier::observe(std::int64_t conversation, std::int64_t seq, id128 id) {
  auto& c = convs_[conversation];
  if (seq <= c.last_seq)
    ++c.order_violations;
  else if (seq != c.last_seq + 1)
    ++c.gaps;
  c.last_seq = std::max(c.last_seq, seq);
  if (auto it = c.expected.find(id); it != c.expected.end()) {
    if (it->second++ == 0)
      ++c.found;
    else
      ++c.duplicates;
    return;
  }
  if (c.others[id]++ > 0) ++c.duplicates;
}

std::int64_t verifier::cursor(std::int64_t conversation) const {
  auto it = convs_.find(conversation);
  return it == convs_.end() ? 0 : it->second.last_seq;
}

bool verifier::complete(std::int64_t conversation) const {
  auto it = convs_.find(conversation);
  return it == convs_.end() || it->second.found == it->second.expected.size();
}

std::vector<std::int64_t> verifier::conversations() const {
  std::vector<std::int64_t> out;
  for (const auto& [id, _] : convs_) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

verify_report verifier::report() const {
  verify_report r;
  for (const auto& [_, c] : convs_) {
    ++r.conversations;
    r.expected += c.expected.size();
    r.found += c.found;
    r.lost += c.expected.size() - c.found;
    r.duplicates += c.duplicates;
    r.order_violations += c.order_violations;
    r.gaps += c.gaps;
    r.unacknowledged += c.others.size();
  }
  return r;
}

}  // namespace chat4all::bench
