#include "report_html.hpp"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>

namespace chat4all::bench {
namespace json = boost::json;

namespace {

constexpr double W = 720, H = 300, L = 70, R = 20, T = 36, B = 48;

std::string num(double v) {
  char buf[32];
  if (std::fabs(v) >= 1000 || v == std::floor(v))
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (std::fabs(v) >= 10)
    std::snprintf(buf, sizeof buf, "%.1f", v);
  else
    std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

double as_double(const json::value& v) {
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  return 0;
}

// A "nice" upper bound for an axis.
double nice_max(double v) {
  if (v <= 0) return 1;
  const double p = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (v <= m * p) return m * p;
  return 10 * p;
}

std::string frame(const std::string& title, const std::string& x_label,
                  const std::string& y_label) {
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 " << W << ' ' << H
    << "\" width=\"" << W << "\" height=\"" << H << "\" role=\"img\">"
    << "<title>" << html_escape(title) << "</title>"
    << "<text x=\"" << W / 2 << "\" y=\"20\" text-anchor=\"middle\" class=\"t\">"
    << html_escape(title) << "</text>"
    << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 8
    << "\" text-anchor=\"middle\" class=\"l\">" << html_escape(x_label) << "</text>"
    << "<text transform=\"translate(14," << (T + H - B) / 2
    << ") rotate(-90)\" text-anchor=\"middle\" class=\"l\">" << html_escape(y_label) << "</text>"
    << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\""
    << H - T - B << "\" fill=\"none\" stroke=\"#999\"/>";
  return s.str();
}

}  // namespace

std::string html_escape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string svg_line_chart(const std::string& title, const std::string& x_label,
                           const std::string& y_label, const std::vector<chart_line>& lines,
                           bool log_x) {
  double xmin = INFINITY, xmax = -INFINITY, ymax = 0;
  auto fx = [&](double x) { return log_x ? std::log10(std::max(x, 1e-12)) : x; };
  for (const auto& l : lines)
    for (auto [x, y] : l.points) {
      xmin = std::min(xmin, fx(x));
      xmax = std::max(xmax, fx(x));
      ymax = std::max(ymax, y);
    }
  std::ostringstream s;
  s << frame(title, x_label, y_label);
  if (!std::isfinite(xmin)) {
    s << "<text x=\"" << W / 2 << "\" y=\"" << H / 2
      << "\" text-anchor=\"middle\">no data</text></svg>";
    return s.str();
  }
  if (xmax <= xmin) xmax = xmin + 1;
  ymax = nice_max(ymax);
  const double pw = W - L - R, ph = H - T - B;
  auto px = [&](double x) { return L + (fx(x) - xmin) / (xmax - xmin) * pw; };
  auto py = [&](double y) { return T + ph - y / ymax * ph; };
  for (int i = 0; i <= 4; ++i) {
    const double y = ymax * i / 4;
    s << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << py(y) << "\" y2=\"" << py(y)
      << "\" stroke=\"#e5e5e5\"/><text x=\"" << L - 6 << "\" y=\"" << py(y) + 4
      << "\" text-anchor=\"end\" class=\"a\">" << num(y) << "</text>";
  }
  for (int i = 0; i <= 5; ++i) {
    const double xv = xmin + (xmax - xmin) * i / 5;
    const double label = log_x ? std::pow(10, xv) : xv;
    const double x = L + pw * i / 5;
    s << "<text x=\"" << x << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\" class=\"a\">"
      << num(label) << "</text>";
  }
  double legend_x = L + 8;
  for (const auto& l : lines) {
    s << "<polyline fill=\"none\" stroke=\"" << l.color << "\" stroke-width=\"1.8\" points=\"";
    for (auto [x, y] : l.points) s << px(x) << ',' << py(y) << ' ';
    s << "\"><title>" << html_escape(l.name) << "</title></polyline>";
    s << "<rect x=\"" << legend_x << "\" y=\"" << T + 6 << "\" width=\"10\" height=\"10\" fill=\""
      << l.color << "\"/><text x=\"" << legend_x + 14 << "\" y=\"" << T + 15 << "\" class=\"a\">"
      << html_escape(l.name) << "</text>";
    legend_x += 24 + 7 * static_cast<double>(l.name.size());
  }
  s << "</svg>";
  return s.str();
}

std::string svg_bar_chart(const std::string& title, const std::string& y_label,
                          const std::vector<std::pair<std::string, double>>& bars) {
  std::ostringstream s;
  s << frame(title, "", y_label);
  if (bars.empty()) {
    s << "<text x=\"" << W / 2 << "\" y=\"" << H / 2
      << "\" text-anchor=\"middle\" class=\"ok\">no errors</text></svg>";
    return s.str();
  }
  double ymax = 0;
  for (const auto& b : bars) ymax = std::max(ymax, b.second);
  ymax = nice_max(ymax);
  const double pw = W - L - R, ph = H - T - B;
  const double slot = pw / static_cast<double>(bars.size());
  for (int i = 0; i <= 4; ++i) {
    const double y = ymax * i / 4;
    const double yy = T + ph - y / ymax * ph;
    s << "<text x=\"" << L - 6 << "\" y=\"" << yy + 4 << "\" text-anchor=\"end\" class=\"a\">"
      << num(y) << "</text>";
  }
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const double h = bars[i].second / ymax * ph;
    const double x = L + slot * static_cast<double>(i) + slot * 0.15;
    s << "<rect x=\"" << x << "\" y=\"" << T + ph - h << "\" width=\"" << slot * 0.7
      << "\" height=\"" << h << "\" fill=\"#c0392b\"><title>" << html_escape(bars[i].first) << ": "
      << num(bars[i].second) << "</title></rect><text x=\"" << x + slot * 0.35 << "\" y=\""
      << H - B + 16 << "\" text-anchor=\"middle\" class=\"a\">" << html_escape(bars[i].first)
      << "</text>";
  }
  s << "</svg>";
  return s.str();
}

namespace {

std::string phase_section(const json::object& p) {
  std::ostringstream s;
  const std::string name(p.at("name").as_string());
  const std::string status(p.at("status").as_string());
  s << "<section><h2>" << html_escape(name) << " <span class=\"" << status << "\">" << status
    << "</span></h2>";
  if (auto* n = p.if_contains("note")) s << "<p>" << html_escape(n->as_string()) << "</p>";
  s << "<h3>Parameters</h3><p class=\"mono\">" << html_escape(json::serialize(p.at("parameters")))
    << "</p>";
  if (status == "skipped") return s.str() + "</section>";
  s << "<h3>Targets</h3><table><tr><th>target</th><th>expected</th><th>actual</th><th></th></tr>";
  for (const auto& tv : p.at("targets").as_array()) {
    const auto& t = tv.as_object();
    const bool ok = t.at("passed").as_bool();
    s << "<tr><td>" << html_escape(t.at("name").as_string()) << "</td><td>"
      << html_escape(t.at("op").as_string()) << ' ' << num(as_double(t.at("expected"))) << ' '
      << html_escape(t.at("unit").as_string()) << "</td><td>" << num(as_double(t.at("actual")))
      << "</td><td class=\"" << (ok ? "passed" : "failed") << "\">" << (ok ? "passed" : "MISSED")
      << "</td></tr>";
  }
  s << "</table><h3>Summary</h3><table>";
  for (const auto& [k, v] : p.at("summary").as_object()) {
    if (v.is_object()) {
      for (const auto& [k2, v2] : v.as_object())
        s << "<tr><td>" << html_escape(k) << '.' << html_escape(k2) << "</td><td>"
          << (v2.is_number() ? num(as_double(v2)) : html_escape(json::serialize(v2)))
          << "</td></tr>";
      continue;
    }
    s << "<tr><td>" << html_escape(k) << "</td><td>"
      << (v.is_number() ? num(as_double(v)) : html_escape(json::serialize(v))) << "</td></tr>";
  }
  s << "</table>";

  std::vector<std::pair<double, double>> tp;
  const auto& thr = p.at("throughput").as_array();
  for (std::size_t i = 0; i < thr.size(); ++i)
    tp.emplace_back(static_cast<double>(i), as_double(thr[i]));
  const std::string unit(p.at("throughput_unit").as_string());
  std::vector<std::pair<double, double>> eps;
  const auto& ev = p.at("errors_per_second").as_array();
  for (std::size_t i = 0; i < ev.size(); ++i)
    eps.emplace_back(static_cast<double>(i), as_double(ev[i]));
  std::vector<chart_line> tl{{unit, "#2471a3", tp}};
  if (!eps.empty()) tl.push_back({"errors/s", "#c0392b", eps});
  s << svg_line_chart("Throughput over time", "seconds", unit, tl);

  for (const auto& sv : p.at("series").as_array()) {
    const auto& se = sv.as_object();
    const std::string sname(se.at("name").as_string());
    s << "<h3>Latency: " << html_escape(sname) << "</h3><p>count " << num(as_double(se.at("count")))
      << " · p50 " << num(as_double(se.at("p50"))) << " ms · p90 " << num(as_double(se.at("p90")))
      << " ms · p99 " << num(as_double(se.at("p99"))) << " ms · p99.9 "
      << num(as_double(se.at("p999"))) << " ms · max " << num(as_double(se.at("max")))
      << " ms (histogram relative error ≤ " << num(100 * as_double(se.at("relative_error")))
      << " %)</p>";
    chart_line p50{"p50", "#27ae60", {}}, p90{"p90", "#f39c12", {}}, p99{"p99", "#c0392b", {}},
        mx{"max", "#7f8c8d", {}};
    for (const auto& tv : se.at("timeline").as_array()) {
      const auto& t = tv.as_object();
      if (as_double(t.at("count")) == 0) continue;
      const double x = as_double(t.at("t"));
      p50.points.emplace_back(x, as_double(t.at("p50")));
      p90.points.emplace_back(x, as_double(t.at("p90")));
      p99.points.emplace_back(x, as_double(t.at("p99")));
      mx.points.emplace_back(x, as_double(t.at("max")));
    }
    s << svg_line_chart(sname + " latency percentiles over time", "seconds", "ms",
                        {p50, p90, p99, mx});
    chart_line spectrum{"latency by percentile", "#8e44ad", {}};
    for (const auto& qv : se.at("percentiles").as_array()) {
      const auto& a = qv.as_array();
      const double q = as_double(a[0]);
      if (q >= 1) continue;
      spectrum.points.emplace_back(1 / (1 - q), as_double(a[1]));
    }
    s << svg_line_chart(sname + " latency distribution (percentile spectrum)",
                        "1/(1-percentile): 10 = p90, 100 = p99, 1000 = p99.9", "ms", {spectrum},
                        true);
    chart_line dist{"requests per bucket", "#2471a3", {}};
    for (const auto& dv : se.at("distribution").as_array()) {
      const auto& a = dv.as_array();
      dist.points.emplace_back(std::max(as_double(a[0]), 1e-3), as_double(a[1]));
    }
    s << svg_line_chart(sname + " latency histogram", "ms (log scale)", "count", {dist}, true);
  }
  std::vector<std::pair<std::string, double>> bars;
  for (const auto& [k, v] : p.at("errors").as_object())
    bars.emplace_back(std::string(k), as_double(v));
  s << "<h3>Errors</h3>" << svg_bar_chart("Error breakdown", "count", bars) << "</section>";
  return s.str();
}

}  // namespace

std::string render_html_report(const json::object& run) {
  std::ostringstream s;
  const bool passed = run.at("passed").as_bool();
  std::time_t t = static_cast<std::time_t>(as_double(run.at("started_unix_s")));
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  s << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>chat4all-bench "
    << when << "</title><style>"
    << "body{font-family:sans-serif;margin:24px;color:#222;max-width:780px}"
    << "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
    << ".passed{color:#1e8449;font-weight:bold}.failed{color:#c0392b;font-weight:bold}"
    << ".skipped{color:#7f8c8d;font-weight:bold}.mono{font-family:monospace;font-size:12px;word-"
       "break:break-all}"
    << "svg.chart{display:block;margin:12px 0;background:#fff}svg "
       ".t{font-size:14px;font-weight:bold}"
    << "svg .l{font-size:12px}svg .a{font-size:10px}svg .ok{fill:#1e8449}"
    << "</style></head><body><h1>chat4all-bench report <span class=\""
    << (passed ? "passed" : "failed") << "\">" << (passed ? "passed" : "FAILED") << "</span></h1>"
    << "<p>Started " << when << " on " << html_escape(run.at("host").as_string()) << " ("
    << as_double(run.at("cpus")) << " CPUs) against " << html_escape(run.at("url").as_string())
    << ".</p><p class=\"mono\">" << html_escape(run.at("command_line").as_string()) << "</p>"
    << "<p>Latencies are measured from each request's intended send time (open loop) or actual "
       "send time (closed loop) with a monotonic clock; WebSocket notification latency uses the "
       "sender's wall clock carried in the message, valid when sender and receivers share one "
       "machine's clock.</p>";
  s << "<table><tr><th>phase</th><th>status</th></tr>";
  for (const auto& pv : run.at("phases").as_array()) {
    const auto& p = pv.as_object();
    const std::string st(p.at("status").as_string());
    s << "<tr><td>" << html_escape(p.at("name").as_string()) << "</td><td class=\"" << st << "\">"
      << st << "</td></tr>";
  }
  s << "</table>";
  for (const auto& pv : run.at("phases").as_array()) s << phase_section(pv.as_object());
  s << "</body></html>\n";
  return s.str();
}

}  // namespace chat4all::bench
