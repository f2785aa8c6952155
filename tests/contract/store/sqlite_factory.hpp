#pragma once
// Store factory for the contract suite: the SQLite adapter on a fresh temporary database.
//
// A factory is constructed once per test and provides:
//   static constexpr const char* name;
//   std::unique_ptr<chat4all::store> open();  // the first call creates a fresh, empty database;
//                                              // later calls reopen the same one
// Other adapters (pg_store) add their own factory next to this one and append it to the type
// list in store_contract_test.cpp.

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include <unistd.h>

#include "adapters/store/sqlite/sqlite_store.hpp"
#include "core/config.hpp"

namespace chat4all::testing {

class sqlite_factory {
 public:
  static constexpr const char* name = "sqlite";

  sqlite_factory() {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("chat4all-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~sqlite_factory() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  sqlite_factory(const sqlite_factory&) = delete;
  sqlite_factory& operator=(const sqlite_factory&) = delete;

  std::unique_ptr<store> open() {
    storage_config cfg;
    cfg.data_dir = dir_.string();
    cfg.worker_threads = 4;
    cfg.busy_timeout_ms = 5000;
    cfg.sqlite_synchronous = "normal";
    return std::make_unique<sqlite_store>((dir_ / "chat4all.db").string(), cfg);
  }

 private:
  std::filesystem::path dir_;
};

}  // namespace chat4all::testing
