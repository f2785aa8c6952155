#include "obs/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <type_traits>

namespace chat4all::obs {
namespace {

bool valid_metric_name(std::string_view n) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool valid_label_name(std::string_view n) {
  if (n.empty() || n.starts_with("__") || n == "le") return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Label values escape backslash, double quote and newline; HELP text only the first and last.
void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        if (quote) {
          out += "\\\"";
          break;
        }
        [[fallthrough]];
      default:
        out += c;
    }
  }
}

// `{a="x",b="y"` without the closing brace (histograms append `le`), or "" without labels.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, bool leave_open) {
  if (names.empty() && !leave_open) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], true);
    out += '"';
  }
  if (!leave_open) out += '}';
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void render_series(std::string& out, const std::string& name, const std::vector<std::string>& ln,
                   const std::vector<std::string>& lv, const counter& c) {
  out += name;
  append_labels(out, ln, lv, false);
  out += ' ';
  append_uint(out, c.value());
  out += '\n';
}

void render_series(std::string& out, const std::string& name, const std::vector<std::string>& ln,
                   const std::vector<std::string>& lv, const gauge& g) {
  out += name;
  append_labels(out, ln, lv, false);
  out += ' ';
  detail::append_prom_double(out, g.value());
  out += '\n';
}

void render_series(std::string& out, const std::string& name, const std::vector<std::string>& ln,
                   const std::vector<std::string>& lv, const histogram& h) {
  const auto& bounds = h.bounds();
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    out += name;
    out += "_bucket";
    append_labels(out, ln, lv, true);
    if (!ln.empty()) out += ',';
    out += "le=\"";
    if (i == bounds.size()) {
      out += "+Inf";
    } else {
      detail::append_prom_double(out, bounds[i]);
    }
    out += "\"} ";
    append_uint(out, h.cumulative_count(i));
    out += '\n';
  }
  out += name;
  out += "_sum";
  append_labels(out, ln, lv, false);
  out += ' ';
  detail::append_prom_double(out, h.sum());
  out += '\n';
  out += name;
  out += "_count";
  append_labels(out, ln, lv, false);
  out += ' ';
  append_uint(out, h.count());
  out += '\n';
}

const char* type_name(metric_type t) {
  switch (t) {
    case metric_type::counter:
      return "counter";
    case metric_type::gauge:
      return "gauge";
    case metric_type::histogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

namespace detail {
void append_prom_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    // Shortest round-trip form; fixed notation in the usual range so that bucket bounds
    // read "0.0005" as in other Prometheus clients rather than "5e-04".
    char buf[400];
    double a = std::fabs(v);
    auto r = (a == 0 || (a >= 1e-6 && a < 1e16))
                 ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                 : std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}
}  // namespace detail

// ---- histogram --------------------------------------------------------------------------

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1])) {
      throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
    }
  }
}

void histogram::observe(double v) noexcept {
  // Bucket i counts bounds[i-1] < v <= bounds[i] (Prometheus `le` semantics).
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  counts_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::uint64_t histogram::cumulative_count(std::size_t i) const noexcept {
  std::uint64_t total = 0;
  for (std::size_t k = 0; k <= i && k <= bounds_.size(); ++k) {
    total += counts_[k].load(std::memory_order_relaxed);
  }
  return total;
}

const std::vector<double>& default_latency_buckets() {
  static const std::vector<double> b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return b;
}

// ---- family -----------------------------------------------------------------------------

template <class Series>
Series& family<Series>::with(std::initializer_list<std::string_view> label_values) {
  std::vector<std::string> v;
  v.reserve(label_values.size());
  for (auto s : label_values) v.emplace_back(s);
  return find_or_create(std::move(v));
}

template <class Series>
Series& family<Series>::with(const std::vector<std::string>& label_values) {
  return find_or_create(label_values);
}

template <class Series>
Series& family<Series>::find_or_create(std::vector<std::string> values) {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument("metric " + name_ + ": expected " +
                                std::to_string(label_names_.size()) + " label values, got " +
                                std::to_string(values.size()));
  }
  std::lock_guard lock(mu_);
  for (auto& e : series_) {
    if (e.label_values == values) return *e.series;
  }
  std::unique_ptr<Series> s;
  if constexpr (std::is_same_v<Series, histogram>) {
    s = std::make_unique<histogram>(bounds_);
  } else {
    s = std::make_unique<Series>();
  }
  series_.push_back({std::move(values), std::move(s)});
  return *series_.back().series;
}

template <class Series>
void family<Series>::render(std::string& out, std::string_view type) const {
  out += "# HELP ";
  out += name_;
  out += ' ';
  append_escaped(out, help_, false);
  out += "\n# TYPE ";
  out += name_;
  out += ' ';
  out += type;
  out += '\n';
  std::lock_guard lock(mu_);
  for (const auto& e : series_) render_series(out, name_, label_names_, e.label_values, *e.series);
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

// ---- registry ---------------------------------------------------------------------------

struct metrics_registry::entry {
  std::string name;
  metric_type type;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
  std::unique_ptr<obs::counter_family> counters;
  std::unique_ptr<obs::gauge_family> gauges;
  std::unique_ptr<obs::histogram_family> histograms;
};

metrics_registry::metrics_registry() = default;
metrics_registry::~metrics_registry() = default;

metrics_registry::entry& metrics_registry::find_or_add(std::string_view name, std::string_view help,
                                                       metric_type type,
                                                       std::vector<std::string>& label_names,
                                                       std::vector<double>* bounds) {
  if (!valid_metric_name(name)) {
    throw std::invalid_argument("invalid metric name: " + std::string(name));
  }
  for (const auto& l : label_names) {
    if (!valid_label_name(l)) {
      throw std::invalid_argument("metric " + std::string(name) + ": invalid label name " + l);
    }
  }
  // Caller holds mu_.
  for (auto& e : entries_) {
    if (e->name != name) continue;
    if (e->type != type || e->label_names != label_names || (bounds && e->bounds != *bounds)) {
      throw std::invalid_argument("metric " + std::string(name) +
                                  " registered twice with a different type, labels or buckets");
    }
    return *e;
  }
  auto e = std::make_unique<entry>();
  e->name = std::string(name);
  e->type = type;
  e->label_names = label_names;
  if (bounds) e->bounds = *bounds;
  // The family constructors are private to keep series creation behind the registry.
  switch (type) {
    case metric_type::counter:
      e->counters.reset(new obs::counter_family(e->name, std::string(help), label_names, {}));
      break;
    case metric_type::gauge:
      e->gauges.reset(new obs::gauge_family(e->name, std::string(help), label_names, {}));
      break;
    case metric_type::histogram: {
      obs::histogram validate(e->bounds);  // throws on bad bounds before the family exists
      e->histograms.reset(
          new obs::histogram_family(e->name, std::string(help), label_names, e->bounds));
      break;
    }
  }
  entries_.push_back(std::move(e));
  return *entries_.back();
}

obs::counter_family& metrics_registry::counter_family(std::string_view name, std::string_view help,
                                                      std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  return *find_or_add(name, help, metric_type::counter, label_names, nullptr).counters;
}

obs::gauge_family& metrics_registry::gauge_family(std::string_view name, std::string_view help,
                                                  std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  return *find_or_add(name, help, metric_type::gauge, label_names, nullptr).gauges;
}

obs::histogram_family& metrics_registry::histogram_family(std::string_view name,
                                                          std::string_view help,
                                                          std::vector<std::string> label_names,
                                                          std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  return *find_or_add(name, help, metric_type::histogram, label_names, &bounds).histograms;
}

obs::counter& metrics_registry::counter(std::string_view name, std::string_view help) {
  return counter_family(name, help, {}).with({});
}

obs::gauge& metrics_registry::gauge(std::string_view name, std::string_view help) {
  return gauge_family(name, help, {}).with({});
}

obs::histogram& metrics_registry::histogram(std::string_view name, std::string_view help,
                                            std::vector<double> bounds) {
  return histogram_family(name, help, {}, std::move(bounds)).with({});
}

std::string metrics_registry::render() const {
  std::string out;
  out.reserve(4096);
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) {
    const char* t = type_name(e->type);
    switch (e->type) {
      case metric_type::counter:
        e->counters->render(out, t);
        break;
      case metric_type::gauge:
        e->gauges->render(out, t);
        break;
      case metric_type::histogram:
        e->histograms->render(out, t);
        break;
    }
  }
  return out;
}

}  // namespace chat4all::obs
