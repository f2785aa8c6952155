#pragma once
// Chooses the adapters named by the configuration (the only place that knows them all).

#include <memory>

#include "core/config.hpp"
#include "domain/ports/blob_store.hpp"
#include "domain/ports/counters.hpp"
#include "domain/ports/event_log.hpp"
#include "domain/ports/fanout.hpp"
#include "domain/ports/store.hpp"
#include "obs/metrics.hpp"

namespace chat4all::app {

// Throws std::runtime_error naming the missing key when a backend lacks its settings.
std::unique_ptr<store> make_store(const config& cfg);
std::unique_ptr<event_log> make_event_log(const config& cfg, obs::metrics_registry& metrics);
// The blob store of blobs.backend (fs under <data_dir>/blobs by default, or S3).
std::unique_ptr<blob_store> make_blob_store(const config& cfg);
std::unique_ptr<fanout> make_fanout(const config& cfg, obs::metrics_registry& metrics);
// Shared counters (login throttling): in Redis, under the fan-out's prefix, when the fan-out
// is Redis (every instance counts in one place), in the process otherwise.
std::unique_ptr<counters> make_counters(const config& cfg);

}  // namespace chat4all::app
