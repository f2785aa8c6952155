#pragma once
// A sleep that a pipeline stage's stop() cuts short (checked every 100 ms).

#include <atomic>
#include <chrono>

#include "domain/ports/store.hpp"  // task

namespace chat4all {

// Waits `d` on the current executor; false (early) once `stopping` is set.
task<bool> pause_unless_stopping(const std::atomic<bool>& stopping, std::chrono::milliseconds d);

}  // namespace chat4all
