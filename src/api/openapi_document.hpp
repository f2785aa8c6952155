#pragma once
// The OpenAPI 3 document of the REST API: docs/openapi.json, embedded at build time by
// cmake/embed.cmake (generated/openapi_document.cpp in the build directory). Served by
// GET /openapi.json; tests/unit/app/openapi_test.cpp keeps it equal to the route table.

#include <string_view>

namespace chat4all::api {

// The document's bytes, as they are in docs/openapi.json (UTF-8 JSON).
std::string_view openapi_document() noexcept;

}  // namespace chat4all::api
