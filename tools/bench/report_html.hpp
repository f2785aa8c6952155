#pragma once
// The self-contained HTML report: rendered from the run's JSON result (the same data as the
// .json file), with inline SVG charts and inline CSS; it loads nothing from the network.

#include <boost/json/object.hpp>

#include <string>
#include <utility>
#include <vector>

namespace chat4all::bench {

std::string render_html_report(const boost::json::object& run);

// Building blocks (exposed for tests).
struct chart_line {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;
};
// A line chart; log_x plots x on a log10 axis (x must be > 0).
std::string svg_line_chart(const std::string& title, const std::string& x_label,
                           const std::string& y_label, const std::vector<chart_line>& lines,
                           bool log_x = false);
std::string svg_bar_chart(const std::string& title, const std::string& y_label,
                          const std::vector<std::pair<std::string, double>>& bars);
std::string html_escape(std::string_view s);

}  // namespace chat4all::bench
