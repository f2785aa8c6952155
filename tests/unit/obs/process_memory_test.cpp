#include "obs/process_memory.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "obs/metrics.hpp"

namespace chat4all::obs {
namespace {

constexpr std::uint64_t mib = 1024 * 1024;

// 64 MiB in 4 KB pieces (like queued WebSocket events), every byte touched.
std::vector<std::unique_ptr<char[]>> hold_64_mib() {
  std::vector<std::unique_ptr<char[]>> v;
  for (std::size_t i = 0; i < 64 * 256; ++i) {
    v.emplace_back(new char[4096]);
    std::memset(v.back().get(), static_cast<int>(i), 4096);
  }
  return v;
}

TEST(process_memory, heap_in_use_follows_live_allocations_and_falls_when_they_are_freed) {
  const auto before = read_process_memory();
  ASSERT_GT(before.resident_bytes, 0u);
  ASSERT_GT(before.heap_in_use_bytes, 0u);
  auto held = hold_64_mib();
  const auto during = read_process_memory();
  EXPECT_GE(during.heap_in_use_bytes, before.heap_in_use_bytes + 64 * mib);
  EXPECT_GE(during.resident_bytes, before.resident_bytes + 60 * mib);
  held.clear();
  held.shrink_to_fit();
  const auto after = read_process_memory();
  EXPECT_LT(after.heap_in_use_bytes, before.heap_in_use_bytes + 2 * mib);
}

TEST(process_memory, metrics_expose_both_gauges) {
  metrics_registry reg;
  update_process_memory_metrics(reg);
  const std::string out = reg.render();
  EXPECT_NE(out.find("# TYPE process_resident_memory_bytes gauge\n"), std::string::npos) << out;
  EXPECT_NE(out.find("# TYPE chat4all_heap_in_use_bytes gauge\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("process_resident_memory_bytes 0\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("chat4all_heap_in_use_bytes 0\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace chat4all::obs
