#pragma once
// A small Prometheus metrics registry (prometheus-cpp is not packaged in Debian 12).
//
// Model: a *family* (name, help, type, label names) holds *series*, one per distinct tuple
// of label values. Looking a series up takes a lock, so callers look it up once (at
// construction) and keep the returned reference; updating a series is lock-free (relaxed
// atomics) and safe from any thread. Series and families live as long as the registry, so
// references stay valid until it is destroyed.
//
// Labels must be low-cardinality (route names, status classes, channel names): never user
// ids, message ids or raw paths.
//
// Errors: invalid metric/label names, a name registered twice with a different type or
// label set, or a wrong number of label values are programming errors and throw
// std::invalid_argument (they surface at startup, where series are created).

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace chat4all::obs {

// The Content-Type of metrics_registry::render() output.
inline constexpr std::string_view prometheus_content_type =
    "text/plain; version=0.0.4; charset=utf-8";

// Monotonic counter series.
class counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// Gauge series: a value that goes up and down.
class gauge {
 public:
  void set(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
  void inc() noexcept { add(1.0); }
  void dec() noexcept { add(-1.0); }
  double value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0.0};
};

// Histogram series with fixed upper bounds (seconds for latencies). Buckets are stored
// non-cumulatively and summed at render time, so `_count` always equals the +Inf bucket.
class histogram {
 public:
  explicit histogram(std::vector<double> bounds);
  void observe(double v) noexcept;
  const std::vector<double>& bounds() const noexcept { return bounds_; }
  // Cumulative count of observations <= bounds()[i]; i == bounds().size() is +Inf.
  std::uint64_t cumulative_count(std::size_t i) const noexcept;
  std::uint64_t count() const noexcept { return cumulative_count(bounds_.size()); }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;                            // strictly increasing, finite
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_.size() + 1 slots
  std::atomic<double> sum_{0.0};
};

// 0.5 ms … 10 s, the default for request and pipeline latencies.
const std::vector<double>& default_latency_buckets();

enum class metric_type { counter, gauge, histogram };

// A named family of series of one type. Thread-safe.
template <class Series>
class family {
 public:
  // The series for these label values (as many as the family has label names), created
  // on first use. Takes a lock: call once and keep the reference.
  Series& with(std::initializer_list<std::string_view> label_values);
  Series& with(const std::vector<std::string>& label_values);

 private:
  friend class metrics_registry;
  struct series_entry {
    std::vector<std::string> label_values;
    std::unique_ptr<Series> series;
  };
  family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}
  Series& find_or_create(std::vector<std::string> values);
  void render(std::string& out, std::string_view type) const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::vector<series_entry> series_;  // creation order = render order
};

using counter_family = family<counter>;
using gauge_family = family<gauge>;
using histogram_family = family<histogram>;

// The registry. Not copyable; pass it by reference to the components that own metrics.
// All member functions are thread-safe.
class metrics_registry {
 public:
  metrics_registry();
  ~metrics_registry();
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  // Families. Registering an existing name with the same type and label names returns
  // the existing family (so independent components may ask for the same metric).
  obs::counter_family& counter_family(std::string_view name, std::string_view help,
                                      std::vector<std::string> label_names);
  obs::gauge_family& gauge_family(std::string_view name, std::string_view help,
                                  std::vector<std::string> label_names);
  obs::histogram_family& histogram_family(std::string_view name, std::string_view help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds = default_latency_buckets());

  // Unlabelled shortcuts: the single series of a family without labels.
  obs::counter& counter(std::string_view name, std::string_view help);
  obs::gauge& gauge(std::string_view name, std::string_view help);
  obs::histogram& histogram(std::string_view name, std::string_view help,
                            std::vector<double> bounds = default_latency_buckets());

  // Prometheus text exposition format 0.0.4, families in registration order.
  std::string render() const;

 private:
  struct entry;
  entry& find_or_add(std::string_view name, std::string_view help, metric_type type,
                     std::vector<std::string>& label_names, std::vector<double>* bounds);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<entry>> entries_;
};

namespace detail {
// Prometheus sample value: shortest round-trip form, "+Inf", "-Inf", "NaN".
void append_prom_double(std::string& out, double v);
}  // namespace detail

}  // namespace chat4all::obs
