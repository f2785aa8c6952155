#pragma once
// Identifier types. Users and conversations have int64 ids assigned by the store; messages
// and uploads carry client-chosen (or server-generated) UUIDs.

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chat4all {

using user_id = std::int64_t;
using conversation_id = std::int64_t;
using seq_t = std::int64_t;

// A 128-bit UUID kept as raw bytes (16-byte keys in storage, text only at the edges).
struct uuid {
  std::array<std::uint8_t, 16> bytes{};

  // Parses the canonical 8-4-4-4-12 hex form (case-insensitive). Returns nullopt otherwise.
  static std::optional<uuid> parse(std::string_view text) noexcept;
  // A random version-4 UUID (libsodium randombytes). Thread-safe.
  static uuid random();
  // Canonical lowercase text form.
  std::string str() const;
  std::string_view raw() const noexcept {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  static uuid from_raw(std::string_view raw16) noexcept;

  friend bool operator==(const uuid&, const uuid&) = default;
  friend auto operator<=>(const uuid&, const uuid&) = default;
};

// A comma-separated list of canonical UUIDs ("" is the empty list; spaces around an item are
// ignored). nullopt when an item is not a UUID.
std::optional<std::vector<uuid>> parse_uuid_list(std::string_view text);

struct uuid_hash {
  std::size_t operator()(const uuid& u) const noexcept;
};

}  // namespace chat4all
