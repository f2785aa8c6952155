#pragma once
// What one chat4all-bench run measured, and its JSON form (the file the HTML report is
// rendered from). A `recorder` is filled by one thread without locks; recorders are merged
// once a phase is over.

#include <boost/json/object.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "histogram.hpp"
#include "verifier.hpp"

namespace chat4all::bench {

// One latency measurement kind (e.g. "request", "notification"), overall and per second.
struct series_data {
  std::string name;
  histogram total;
  std::vector<histogram> per_second;

  void record(std::size_t second, std::uint64_t ns);
  void merge(const series_data& other);
};

struct recorder {
  std::vector<series_data> series;        // same names, same order in every recorder
  std::vector<std::uint64_t> throughput;  // units (messages or bytes) per second
  std::vector<std::uint64_t> errors_per_second;
  std::map<std::string, std::uint64_t> errors;  // kind -> count
  std::map<std::string, std::uint64_t> counters;

  explicit recorder(const std::vector<std::string>& series_names = {});
  void record(std::size_t series_index, std::size_t second, std::uint64_t ns);
  void add_throughput(std::size_t second, std::uint64_t units);
  void error(std::size_t second, const std::string& kind, std::uint64_t n = 1);
  void count(const std::string& name, std::uint64_t n = 1) { counters[name] += n; }
  void merge(const recorder& other);
};

struct target_result {
  std::string name;
  std::string op;  // "<=", ">=", "=="
  double expected = 0;
  double actual = 0;
  std::string unit;
  bool passed = false;
};

struct phase_result {
  std::string name;    // "api-single", "api-batch", "ws", "upload"
  std::string status;  // "passed" | "failed" | "skipped"
  std::string note;    // why skipped, what failed
  boost::json::object parameters;
  boost::json::object summary;  // headline numbers
  double started_unix_s = 0;
  double duration_s = 0;
  std::string throughput_unit = "messages/s";
  double throughput_scale = 1;  // per-second units are multiplied by this (bytes -> MB)
  recorder data;
  std::vector<target_result> targets;

  // Adds a target check and returns whether it passed.
  bool check(std::string name, std::string op, double expected, double actual, std::string unit);
  // The zero-loss targets of an ingestion run: nothing lost, duplicated or out of order.
  void check_stored_exactly_once(const verify_report& vr);
  // passed when every target passed (skipped phases stay skipped).
  void finish();
};

struct run_result {
  std::string tool_version;
  std::string command_line;
  std::string url;
  std::string host;
  unsigned cpus = 0;
  double started_unix_s = 0;
  std::vector<phase_result> phases;
  bool passed() const;
};

boost::json::object series_json(const series_data& s);
boost::json::object phase_json(const phase_result& p);
boost::json::object run_json(const run_result& r);

}  // namespace chat4all::bench
