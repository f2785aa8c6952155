#pragma once
// Store factory for the contract suite: pg_store on a fresh schema of the PostgreSQL server
// named by CHAT4ALL_TEST_PG_URL (scripts/services/postgres.sh start; ... url). Without that
// variable the PostgreSQL instantiation skips every test, so unit runs need no server.
//
// Each test gets its own schema t_<pid>_<n>_<random> (created by migrate(), dropped by the
// destructor), so tests and concurrent runs never see each other's rows.

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <unistd.h>

#include "adapters/store/postgres/pg_store.hpp"

namespace chat4all::testing {

class postgres_factory {
 public:
  static constexpr const char* name = "postgres";

  // Why the tests of this factory cannot run here, or nullopt.
  static std::optional<std::string> skip_reason() {
    if (url().empty()) return "CHAT4ALL_TEST_PG_URL is not set (scripts/services/postgres.sh)";
    return std::nullopt;
  }

  postgres_factory() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    schema_ = "t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
              std::to_string(rd() % 1'000'000);
  }
  ~postgres_factory() {
    if (!url().empty()) (void)pg_drop_schema(url(), schema_);
  }
  postgres_factory(const postgres_factory&) = delete;
  postgres_factory& operator=(const postgres_factory&) = delete;

  std::unique_ptr<store> open() {
    pg_store_options opts;
    opts.pool_size = 4;
    opts.schema = schema_;
    return std::make_unique<pg_store>(url(), opts);
  }

 private:
  static std::string url() {
    const char* u = std::getenv("CHAT4ALL_TEST_PG_URL");
    return u ? u : "";
  }

  std::string schema_;
};

}  // namespace chat4all::testing
