#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "bench/report_html.hpp"
#include "bench/results.hpp"

namespace chat4all::bench {
namespace {
namespace json = boost::json;

phase_result sample_phase() {
  phase_result p;
  p.name = "api-single";
  p.parameters = {{"connections", 8}};
  recorder a({"request"}), b({"request"});
  for (int i = 1; i <= 100; ++i)
    a.record(0, 0, static_cast<std::uint64_t>(i) * 1'000'000);  // 1..100 ms
  for (int i = 1; i <= 100; ++i) b.record(0, 1, 5'000'000);
  a.add_throughput(0, 100);
  b.add_throughput(1, 100);
  b.error(1, "http_503", 2);
  a.error(0, "timeout");
  p.data.merge(a);
  p.data.merge(b);
  p.summary = {{"messages_accepted", 200}};
  p.check("p99 latency", "<=", 200, 99.0, "ms");
  p.check("lost messages", "==", 0, 0, "messages");
  p.finish();
  return p;
}

TEST(BenchResults, RecordersMergeCountsTimelinesAndErrors) {
  const auto p = sample_phase();
  ASSERT_EQ(p.data.series.size(), 1u);
  EXPECT_EQ(p.data.series[0].total.count(), 200u);
  ASSERT_EQ(p.data.series[0].per_second.size(), 2u);
  EXPECT_EQ(p.data.series[0].per_second[1].count(), 100u);
  EXPECT_EQ(p.data.throughput, (std::vector<std::uint64_t>{100, 100}));
  EXPECT_EQ(p.data.errors.at("http_503"), 2u);
  EXPECT_EQ(p.data.errors.at("timeout"), 1u);
  EXPECT_EQ(p.data.errors_per_second, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(p.status, "passed");
}

TEST(BenchResults, JsonCarriesPercentilesTimelineTargetsAndVerdict) {
  run_result r;
  r.url = "http://127.0.0.1:1";
  r.phases.push_back(sample_phase());
  auto text = json::serialize(run_json(r));
  auto doc = json::parse(text).as_object();  // round-trips through text
  EXPECT_TRUE(doc.at("passed").as_bool());
  const auto& ph = doc.at("phases").as_array().at(0).as_object();
  EXPECT_EQ(ph.at("name").as_string(), "api-single");
  EXPECT_EQ(ph.at("errors").as_object().at("http_503").as_int64(), 2);
  const auto& s = ph.at("series").as_array().at(0).as_object();
  EXPECT_EQ(s.at("count").to_number<std::uint64_t>(), 200u);
  // 100 samples of 5 ms and 1..100 ms: the median is 5 ms; rank 198 of 200 is 98 ms (±0.78 %).
  EXPECT_NEAR(s.at("p50").as_double(), 5.0, 5.0 * 0.0079);
  EXPECT_NEAR(s.at("p99").as_double(), 98.0, 98.0 * 0.0079);
  EXPECT_EQ(s.at("timeline").as_array().size(), 2u);
  EXPECT_EQ(ph.at("targets").as_array().size(), 2u);
  EXPECT_TRUE(ph.at("targets").as_array()[0].as_object().at("passed").as_bool());

  // A missed target fails the phase and the run.
  auto bad = sample_phase();
  bad.check("ingestion throughput", ">=", 166667, 90000, "msg/s");
  bad.finish();
  EXPECT_EQ(bad.status, "failed");
  r.phases.push_back(bad);
  EXPECT_FALSE(r.passed());
  EXPECT_FALSE(run_json(r).at("passed").as_bool());

  // A skipped phase does not fail the run.
  run_result skipped;
  phase_result sp;
  sp.name = "ws";
  sp.status = "skipped";
  sp.finish();
  skipped.phases.push_back(sp);
  EXPECT_TRUE(skipped.passed());
}

TEST(BenchReport, HtmlIsSelfContainedWithSvgChartsAndEscapesText) {
  run_result r;
  r.url = "http://127.0.0.1:1";
  r.command_line = "chat4all-bench api --url <x>";
  r.phases.push_back(sample_phase());
  const auto html = render_html_report(run_json(r));
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
  EXPECT_NE(html.find("http_503"), std::string::npos);
  EXPECT_NE(html.find("&lt;x&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<x>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  std::size_t charts = 0;
  for (auto at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1))
    ++charts;
  EXPECT_EQ(charts, 5u);  // throughput, percentiles over time, spectrum, histogram, errors
}

}  // namespace
}  // namespace chat4all::bench
