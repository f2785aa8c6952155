#include "obs/metrics.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>
#include <vector>

namespace chat4all::obs {
namespace {

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(metrics, unlabelled_counter_renders_help_type_and_value) {
  metrics_registry reg;
  auto& c = reg.counter("chat4all_things_total", "Things seen");
  c.inc();
  c.inc(2);
  EXPECT_EQ(reg.render(),
            "# HELP chat4all_things_total Things seen\n"
            "# TYPE chat4all_things_total counter\n"
            "chat4all_things_total 3\n");
}

TEST(metrics, labelled_counter_escapes_label_values) {
  metrics_registry reg;
  auto& fam = reg.counter_family("req_total", "Requests\nby route", {"route", "status"});
  fam.with({"GET /a", "2xx"}).inc();
  fam.with({"say \"hi\"\\", "4xx"}).inc(5);
  fam.with({"GET /a", "2xx"}).inc();  // same series again
  EXPECT_EQ(reg.render(),
            "# HELP req_total Requests\\nby route\n"
            "# TYPE req_total counter\n"
            "req_total{route=\"GET /a\",status=\"2xx\"} 2\n"
            "req_total{route=\"say \\\"hi\\\"\\\\\",status=\"4xx\"} 5\n");
}

TEST(metrics, gauge_goes_up_and_down) {
  metrics_registry reg;
  auto& g = reg.gauge("open_connections", "Open");
  g.inc();
  g.inc();
  g.dec();
  g.add(0.5);
  EXPECT_DOUBLE_EQ(g.value(), 1.5);
  EXPECT_TRUE(contains(reg.render(), "# TYPE open_connections gauge\nopen_connections 1.5\n"));
}

TEST(metrics, histogram_buckets_are_cumulative_with_sum_and_count) {
  metrics_registry reg;
  auto& h = reg.histogram_family("lat_seconds", "Latency", {"route"}, {0.1, 0.5, 1}).with({"r"});
  h.observe(0.05);
  h.observe(0.1);  // le is inclusive
  h.observe(0.3);
  h.observe(2);
  EXPECT_EQ(reg.render(),
            "# HELP lat_seconds Latency\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{route=\"r\",le=\"0.1\"} 2\n"
            "lat_seconds_bucket{route=\"r\",le=\"0.5\"} 3\n"
            "lat_seconds_bucket{route=\"r\",le=\"1\"} 3\n"
            "lat_seconds_bucket{route=\"r\",le=\"+Inf\"} 4\n"
            "lat_seconds_sum{route=\"r\"} 2.45\n"
            "lat_seconds_count{route=\"r\"} 4\n");
}

TEST(metrics, unlabelled_histogram_has_only_le_label) {
  metrics_registry reg;
  reg.histogram("h", "H", {1}).observe(0.5);
  std::string text = reg.render();
  EXPECT_TRUE(contains(text, "h_bucket{le=\"1\"} 1\n"));
  EXPECT_TRUE(contains(text, "h_bucket{le=\"+Inf\"} 1\n"));
  EXPECT_TRUE(contains(text, "h_sum 0.5\nh_count 1\n"));
}

TEST(metrics, default_latency_buckets_span_half_ms_to_ten_seconds) {
  const auto& b = default_latency_buckets();
  ASSERT_FALSE(b.empty());
  EXPECT_DOUBLE_EQ(b.front(), 0.0005);
  EXPECT_DOUBLE_EQ(b.back(), 10);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  metrics_registry reg;
  reg.histogram("d_seconds", "D").observe(0.0003);
  EXPECT_TRUE(contains(reg.render(), "d_seconds_bucket{le=\"0.0005\"} 1\n"));
}

TEST(metrics, same_name_returns_same_family_and_conflicts_throw) {
  metrics_registry reg;
  auto& a = reg.counter_family("x_total", "X", {"k"});
  auto& b = reg.counter_family("x_total", "X", {"k"});
  EXPECT_EQ(&a, &b);
  EXPECT_THROW(reg.gauge_family("x_total", "X", {"k"}), std::invalid_argument);
  EXPECT_THROW(reg.counter_family("x_total", "X", {"other"}), std::invalid_argument);
  EXPECT_THROW(reg.counter("bad name", "B"), std::invalid_argument);
  EXPECT_THROW(reg.counter_family("y_total", "Y", {"le"}), std::invalid_argument);
  EXPECT_THROW(a.with({"1", "2"}), std::invalid_argument);
  EXPECT_THROW(reg.histogram("z", "Z", {1, 1}), std::invalid_argument);
}

TEST(metrics, families_render_in_registration_order) {
  metrics_registry reg;
  reg.counter("b_total", "B");
  reg.counter("a_total", "A");
  std::string text = reg.render();
  EXPECT_LT(text.find("b_total"), text.find("a_total"));
}

TEST(metrics, concurrent_updates_are_not_lost) {
  metrics_registry reg;
  auto& c = reg.counter("c_total", "C");
  auto& h = reg.histogram("h_seconds", "H");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(0.001);
        reg.counter_family("fam_total", "F", {"t"}).with({"x"}).inc();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  EXPECT_EQ(h.count(), 40000u);
  EXPECT_NEAR(h.sum(), 40.0, 1e-6);
  EXPECT_TRUE(contains(reg.render(), "fam_total{t=\"x\"} 40000\n"));
}

TEST(metrics, special_values_use_prometheus_spelling) {
  std::string s;
  detail::append_prom_double(s, std::numeric_limits<double>::infinity());
  s += ' ';
  detail::append_prom_double(s, -std::numeric_limits<double>::infinity());
  s += ' ';
  detail::append_prom_double(s, std::numeric_limits<double>::quiet_NaN());
  s += ' ';
  detail::append_prom_double(s, 0.25);
  EXPECT_EQ(s, "+Inf -Inf NaN 0.25");
}

}  // namespace
}  // namespace chat4all::obs
