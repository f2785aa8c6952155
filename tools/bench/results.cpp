#include "results.hpp"

#include <boost/json/array.hpp>

#include <cmath>

namespace chat4all::bench {
namespace json = boost::json;

namespace {
double to_ms(std::uint64_t ns) {
  return std::round(static_cast<double>(ns) / 1e3) / 1e3;
}
}  // namespace

void series_data::record(std::size_t second, std::uint64_t ns) {
  total.record(ns);
  while (per_second.size() <= second) per_second.emplace_back();
  per_second[second].record(ns);
}

void series_data::merge(const series_data& o) {
  total.merge(o.total);
  while (per_second.size() < o.per_second.size()) per_second.emplace_back();
  for (std::size_t i = 0; i < o.per_second.size(); ++i) per_second[i].merge(o.per_second[i]);
}

recorder::recorder(const std::vector<std::string>& names) {
  for (const auto& n : names) series.push_back(series_data{n, histogram(), {}});
}

void recorder::record(std::size_t i, std::size_t second, std::uint64_t ns) {
  series[i].record(second, ns);
}

void recorder::add_throughput(std::size_t second, std::uint64_t units) {
  if (throughput.size() <= second) throughput.resize(second + 1, 0);
  throughput[second] += units;
}

void recorder::error(std::size_t second, const std::string& kind, std::uint64_t n) {
  if (errors_per_second.size() <= second) errors_per_second.resize(second + 1, 0);
  errors_per_second[second] += n;
  errors[kind] += n;
}

void recorder::merge(const recorder& o) {
  if (series.empty())
    for (const auto& s : o.series) series.push_back(series_data{s.name, histogram(), {}});
  for (std::size_t i = 0; i < o.series.size() && i < series.size(); ++i)
    series[i].merge(o.series[i]);
  if (throughput.size() < o.throughput.size()) throughput.resize(o.throughput.size(), 0);
  for (std::size_t i = 0; i < o.throughput.size(); ++i) throughput[i] += o.throughput[i];
  if (errors_per_second.size() < o.errors_per_second.size())
    errors_per_second.resize(o.errors_per_second.size(), 0);
  for (std::size_t i = 0; i < o.errors_per_second.size(); ++i)
    errors_per_second[i] += o.errors_per_second[i];
  for (const auto& [k, v] : o.errors) errors[k] += v;
  for (const auto& [k, v] : o.counters) counters[k] += v;
}

void phase_result::check_stored_exactly_once(const verify_report& vr) {
  check("lost messages", "==", 0, static_cast<double>(vr.lost), "messages");
  check("duplicated messages", "==", 0, static_cast<double>(vr.duplicates), "messages");
  check("seq order violations and gaps", "==", 0,
        static_cast<double>(vr.order_violations + vr.gaps), "messages");
}

bool phase_result::check(std::string n, std::string op, double expected, double actual,
                         std::string unit) {
  bool ok = op == "<=" ? actual <= expected : op == ">=" ? actual >= expected : actual == expected;
  targets.push_back({std::move(n), std::move(op), expected, actual, std::move(unit), ok});
  return ok;
}

void phase_result::finish() {
  if (status == "skipped") return;
  bool ok = true;
  for (const auto& t : targets) ok = ok && t.passed;
  status = ok ? "passed" : "failed";
}

bool run_result::passed() const {
  for (const auto& p : phases)
    if (p.status == "failed") return false;
  return true;
}

json::object series_json(const series_data& s) {
  const auto& h = s.total;
  json::object o;
  o["name"] = s.name;
  o["unit"] = "ms";
  o["count"] = h.count();
  o["mean"] = std::round(h.mean() / 1e3) / 1e3;
  o["min"] = to_ms(h.min());
  o["p50"] = to_ms(h.percentile(0.50));
  o["p90"] = to_ms(h.percentile(0.90));
  o["p99"] = to_ms(h.percentile(0.99));
  o["p999"] = to_ms(h.percentile(0.999));
  o["max"] = to_ms(h.max());
  o["saturated"] = h.saturated();
  o["relative_error"] = h.relative_error();
  json::array timeline;
  for (std::size_t i = 0; i < s.per_second.size(); ++i) {
    const auto& p = s.per_second[i];
    json::object t;
    t["t"] = i;
    t["count"] = p.count();
    t["p50"] = to_ms(p.percentile(0.5));
    t["p90"] = to_ms(p.percentile(0.9));
    t["p99"] = to_ms(p.percentile(0.99));
    t["max"] = to_ms(p.max());
    timeline.push_back(std::move(t));
  }
  o["timeline"] = std::move(timeline);
  // The percentile spectrum (HdrHistogram-style), enough points for a smooth curve.
  json::array spectrum;
  for (double q :
       {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 1.0})
    spectrum.push_back(json::array{q, to_ms(h.percentile(q))});
  o["percentiles"] = std::move(spectrum);
  json::array dist;
  for (const auto& b : h.buckets()) dist.push_back(json::array{to_ms(b.value), b.count});
  o["distribution"] = std::move(dist);
  return o;
}

json::object phase_json(const phase_result& p) {
  json::object o;
  o["name"] = p.name;
  o["status"] = p.status;
  if (!p.note.empty()) o["note"] = p.note;
  o["parameters"] = p.parameters;
  o["summary"] = p.summary;
  o["started_unix_s"] = p.started_unix_s;
  o["duration_s"] = p.duration_s;
  o["throughput_unit"] = p.throughput_unit;
  json::array tp;
  for (auto v : p.data.throughput) tp.push_back(static_cast<double>(v) * p.throughput_scale);
  o["throughput"] = std::move(tp);
  json::array eps;
  for (auto v : p.data.errors_per_second) eps.push_back(v);
  o["errors_per_second"] = std::move(eps);
  json::object errors;
  for (const auto& [k, v] : p.data.errors) errors[k] = v;
  o["errors"] = std::move(errors);
  json::object counters;
  for (const auto& [k, v] : p.data.counters) counters[k] = v;
  o["counters"] = std::move(counters);
  json::array series;
  for (const auto& s : p.data.series) series.push_back(series_json(s));
  o["series"] = std::move(series);
  json::array targets;
  for (const auto& t : p.targets)
    targets.push_back(json::object{{"name", t.name},
                                   {"op", t.op},
                                   {"expected", t.expected},
                                   {"actual", t.actual},
                                   {"unit", t.unit},
                                   {"passed", t.passed}});
  o["targets"] = std::move(targets);
  return o;
}

json::object run_json(const run_result& r) {
  json::object o;
  o["tool"] = "chat4all-bench";
  o["version"] = r.tool_version;
  o["command_line"] = r.command_line;
  o["url"] = r.url;
  o["host"] = r.host;
  o["cpus"] = r.cpus;
  o["started_unix_s"] = r.started_unix_s;
  o["passed"] = r.passed();
  json::array phases;
  for (const auto& p : r.phases) phases.push_back(phase_json(p));
  o["phases"] = std::move(phases);
  return o;
}

}  // namespace chat4all::bench
