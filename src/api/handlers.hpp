#pragma once
// Route registration for the REST API. Handlers are plain coroutine functions that take the
// services by reference (not capturing lambdas: a coroutine lambda's captures dangle).

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "domain/auth_service.hpp"
#include "domain/conversation_service.hpp"
#include "domain/message_service.hpp"
#include "domain/ports/counters.hpp"
#include "domain/ports/store.hpp"
#include "domain/upload_service.hpp"
#include "obs/metrics.hpp"

namespace chat4all::api {

class route_table;

// One dependency of /readyz beyond the store (e.g. the Kafka log): its state as shown, and
// whether the process can serve with it in that state.
struct dependency_state {
  std::string state;
  bool ready = true;
};
struct dependency_probe {
  std::string name;
  std::function<dependency_state()> check;  // cheap, never blocks
};

struct api_services {
  auth_service& auth;
  conversation_service& conversations;
  message_service& messages;
  store& db;  // readiness ping
  obs::metrics_registry& metrics;
  const config& cfg;
  std::atomic<bool>& ready;  // false until start-up catch-up is done, and while draining
  upload_service& files;
  std::vector<dependency_probe> probes = {};
  // Shared counters (in-process, or Redis in cluster mode) for login throttling; none: off.
  counters* limits = nullptr;
};

void register_auth_routes(route_table& routes, api_services& s);
void register_conversation_routes(route_table& routes, api_services& s);
void register_message_routes(route_table& routes, api_services& s);
void register_file_routes(route_table& routes, api_services& s);  // SPEC §5 chunked API
void register_tus_routes(route_table& routes, api_services& s);   // tus 1.0 at /v1/tus/
void register_ops_routes(route_table& routes, api_services& s);
void register_docs_routes(route_table& routes, api_services& s);  // /openapi.json, /docs

inline void register_all_routes(route_table& routes, api_services& s) {
  register_auth_routes(routes, s);
  register_conversation_routes(routes, s);
  register_message_routes(routes, s);
  register_file_routes(routes, s);
  register_tus_routes(routes, s);
  register_ops_routes(routes, s);
  register_docs_routes(routes, s);
}

}  // namespace chat4all::api
