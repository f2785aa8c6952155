// Keeps docs/openapi.json (embedded in the server) true to the route table: every registered
// route is documented with the same auth requirement, every documented operation is a
// registered route, every operation is complete, every $ref resolves.

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "api/handlers.hpp"
#include "api/openapi_document.hpp"
#include "api/route_table.hpp"
#include "unit/domain/fixture.hpp"
#include "ws/gateway.hpp"

namespace chat4all::api {
namespace {
namespace json = boost::json;

const std::set<std::string> http_methods = {"get",     "put",  "post",  "delete",
                                            "options", "head", "patch", "trace"};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "/v1/conversations/{id}/messages" -> "/v1/conversations/{}/messages"
std::string shape(std::string_view path) {
  std::string out;
  bool in_param = false;
  for (char c : path) {
    if (c == '{') {
      in_param = true;
      out += "{}";
    } else if (c == '}') {
      in_param = false;
    } else if (!in_param) {
      out += c;
    }
  }
  return out;
}

std::vector<std::string> path_params(std::string_view path) {
  std::vector<std::string> out;
  for (std::size_t i = path.find('{'); i != std::string_view::npos; i = path.find('{', i + 1)) {
    auto end = path.find('}', i);
    if (end == std::string_view::npos) break;
    out.emplace_back(path.substr(i + 1, end - i - 1));
  }
  return out;
}

// Resolves a local reference "#/a/b~1c" in `doc`, or nullptr.
const json::value* resolve_ref(const json::value& doc, std::string_view ref) {
  if (!ref.starts_with("#/")) return nullptr;
  std::error_code ec;
  const json::value* v = doc.find_pointer(ref.substr(1), ec);
  return ec ? nullptr : v;
}

// Follows $ref chains (a response or parameter may be a reference to a component).
const json::value& deref(const json::value& doc, const json::value& v) {
  const json::value* cur = &v;
  for (int i = 0; i < 16 && cur->is_object() && cur->as_object().contains("$ref"); ++i) {
    const json::value* next = resolve_ref(doc, cur->at("$ref").as_string());
    if (!next) break;
    cur = next;
  }
  return *cur;
}

void collect_refs(const json::value& v, const std::string& where,
                  std::vector<std::pair<std::string, std::string>>& out) {
  if (v.is_object()) {
    for (const auto& [k, child] : v.as_object()) {
      const std::string at = where + "/" + std::string(k);
      if (k == "$ref" && child.is_string()) out.emplace_back(at, std::string(child.as_string()));
      // discriminator.mapping values are references too.
      if (k == "mapping" && child.is_object())
        for (const auto& [mk, mv] : child.as_object())
          if (mv.is_string())
            out.emplace_back(at + "/" + std::string(mk), std::string(mv.as_string()));
      collect_refs(child, at, out);
    }
  } else if (v.is_array()) {
    std::size_t i = 0;
    for (const auto& child : v.as_array())
      collect_refs(child, where + "/" + std::to_string(i++), out);
  }
}

struct openapi_test : chat4all::testing::domain_fixture {
  std::atomic<bool> ready{true};
  route_table routes;
  api_services services{auth, conversations, messages, db, metrics, cfg, ready, files};
  ws::gateway gateway{cfg.ws, cfg.limits, {conversations, messages, members, fan, clk, metrics}};
  json::value doc;

  openapi_test() {
    register_all_routes(routes, services);
    gateway.register_routes(routes);  // GET /ws, an upgrade route
    boost::system::error_code ec;
    doc = json::parse(openapi_document(), ec);
    EXPECT_FALSE(ec) << "docs/openapi.json is not valid JSON: " << ec.message();
  }

  const json::object& paths() const { return doc.at("paths").as_object(); }

  // (method, path) of every documented operation.
  std::vector<std::pair<std::string, std::string>> operations() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [path, item] : paths())
      for (const auto& [method, op] : item.as_object())
        if (http_methods.count(std::string(method)))
          out.emplace_back(std::string(method), std::string(path));
    return out;
  }

  const json::object& operation(const std::string& method, const std::string& path) const {
    return paths().at(path).at(method).as_object();
  }

  // An operation is public when it overrides the document's security with an empty list.
  bool is_public(const json::object& op) const {
    const json::value* sec = op.if_contains("security");
    if (!sec) sec = doc.as_object().if_contains("security");
    return !sec || sec->as_array().empty();
  }

  response call(http::verb verb, const std::string& target) {
    request req{verb, target, 11};
    auto m = routes.match(verb, target);
    EXPECT_EQ(m.kind, match_kind::found) << target;
    request_context ctx{req, "test", target, m.params, {}, std::nullopt, "127.0.0.1", ""};
    return run(m.r->fn(ctx));
  }
};

TEST_F(openapi_test, document_is_openapi_3) {
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc.at("openapi").as_string(), "3.0.3");
  EXPECT_FALSE(doc.at("info").at("title").as_string().empty());
  EXPECT_FALSE(doc.at("info").at("version").as_string().empty());
  EXPECT_FALSE(paths().empty());
  const auto& scheme = doc.at("components").at("securitySchemes").at("bearerAuth");
  EXPECT_EQ(scheme.at("type").as_string(), "http");
  EXPECT_EQ(scheme.at("scheme").as_string(), "bearer");
}

TEST_F(openapi_test, every_route_is_documented_with_its_auth_requirement) {
  ASSERT_GT(routes.size(), 0u);
  std::map<std::string, std::string> doc_path_by_shape;
  for (const auto& [path, item] : paths()) doc_path_by_shape[shape(path)] = std::string(path);
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const route& r = routes.at(i);
    const std::string method = lower(http::to_string(r.verb));
    const std::string name = method + " " + r.pattern;
    auto it = doc_path_by_shape.find(shape(r.pattern));
    if (it == doc_path_by_shape.end()) {
      ADD_FAILURE() << "route " << name << " is not in docs/openapi.json";
      continue;
    }
    EXPECT_EQ(it->second, r.pattern)
        << "docs/openapi.json names the path parameters of " << name << " differently";
    const auto& item = paths().at(it->second).as_object();
    if (!item.contains(method)) {
      ADD_FAILURE() << "route " << name << " is not in docs/openapi.json";
      continue;
    }
    EXPECT_EQ(is_public(item.at(method).as_object()), !r.options.auth)
        << name << ": the route " << (r.options.auth ? "requires" : "does not require")
        << " a token; the document should say so (security: [] for public operations)";
  }
}

TEST_F(openapi_test, every_documented_operation_is_a_route) {
  std::set<std::pair<std::string, std::string>> registered;
  for (std::size_t i = 0; i < routes.size(); ++i)
    registered.emplace(lower(http::to_string(routes.at(i).verb)), shape(routes.at(i).pattern));
  auto ops = operations();
  EXPECT_EQ(ops.size(), routes.size());
  for (const auto& [method, path] : ops)
    EXPECT_TRUE(registered.count({method, shape(path)}))
        << method << " " << path << " is documented but the server does not register it";
}

TEST_F(openapi_test, every_operation_is_complete) {
  std::set<std::string> ids;
  for (const auto& [method, path] : operations()) {
    const std::string name = method + " " + path;
    const auto& op = operation(method, path);
    const auto* id = op.if_contains("operationId");
    ASSERT_TRUE(id && id->is_string() && !id->as_string().empty()) << name << ": no operationId";
    EXPECT_TRUE(ids.insert(std::string(id->as_string())).second)
        << name << ": duplicate operationId " << id->as_string();
    EXPECT_TRUE(op.contains("summary")) << name;

    const auto* responses = op.if_contains("responses");
    ASSERT_TRUE(responses && responses->is_object()) << name << ": no responses";
    bool has_2xx = false;
    for (const auto& [status, ref] : responses->as_object()) {
      const std::string where = name + " " + std::string(status);
      // An upgrade route (GET /ws) succeeds with 101 Switching Protocols.
      if (status.size() == 3 && (status[0] == '2' || status == "101")) has_2xx = true;
      const auto& res = deref(doc, ref).as_object();
      EXPECT_TRUE(res.contains("description")) << where;
      const json::value* headers = res.if_contains("headers");
      auto has_header = [&](const char* h) {
        return headers && headers->is_object() && headers->as_object().contains(h);
      };
      EXPECT_TRUE(has_header("X-Request-ID")) << where << ": every response has X-Request-ID";
      if (status == "401") {
        EXPECT_TRUE(has_header("WWW-Authenticate")) << where;
      }
      if (status == "503") {
        EXPECT_TRUE(has_header("Retry-After")) << where;
      }
      if (status[0] == '4' || status == "503") {
        // Errors use the Error schema, except the readiness report which has its own body.
        if (path == "/readyz") continue;
        const auto* schema =
            res.at("content").at("application/json").as_object().if_contains("schema");
        ASSERT_TRUE(schema) << where;
        EXPECT_EQ(schema->at("$ref").as_string(), "#/components/schemas/Error") << where;
      }
    }
    EXPECT_TRUE(has_2xx) << name << ": no 2xx response";

    // Path parameters: exactly the template's, each declared in: path and required.
    std::set<std::string> declared;
    if (const auto* params = op.if_contains("parameters")) {
      for (const auto& p : params->as_array()) {
        const auto& param = deref(doc, p).as_object();
        if (param.at("in").as_string() != "path") continue;
        declared.insert(std::string(param.at("name").as_string()));
        EXPECT_TRUE(param.at("required").as_bool()) << name << ": path parameters are required";
      }
    }
    const auto in_path = path_params(path);
    EXPECT_EQ(declared, std::set<std::string>(in_path.begin(), in_path.end())) << name;
  }
}

TEST_F(openapi_test, every_ref_resolves) {
  std::vector<std::pair<std::string, std::string>> refs;
  collect_refs(doc, "#", refs);
  EXPECT_GT(refs.size(), 10u);
  for (const auto& [where, ref] : refs)
    EXPECT_TRUE(resolve_ref(doc, ref)) << where << ": " << ref << " does not resolve";
}

TEST_F(openapi_test, schemas_state_the_documented_limits) {
  const auto& s = doc.at("components").at("schemas");
  const auto& username = s.at("Username");
  EXPECT_EQ(username.at("minLength").as_int64(), 3);
  EXPECT_EQ(username.at("maxLength").as_int64(), 50);
  const auto& password = s.at("RegisterRequest").at("properties").at("password");
  EXPECT_EQ(password.at("minLength").as_int64(), 8);
  EXPECT_EQ(password.at("maxLength").as_int64(), 256);
  const auto& content = s.at("TextPayload").at("properties").at("content");
  EXPECT_EQ(content.at("maxLength").as_int64(),
            static_cast<std::int64_t>(cfg.limits.message_max_bytes));
  const auto& batch = s.at("BatchRequest").at("properties").at("messages");
  EXPECT_EQ(batch.at("maxItems").as_int64(), cfg.limits.batch_max_messages);
  const auto& limit = doc.at("components").at("parameters").at("limit").at("schema");
  EXPECT_EQ(limit.at("maximum").as_int64(), cfg.limits.page_max);
}

TEST_F(openapi_test, routes_serve_the_document_and_the_page) {
  auto res = call(http::verb::get, "/openapi.json");
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(res.body(), openapi_document());

  auto page = call(http::verb::get, "/docs");
  EXPECT_EQ(page.result(), http::status::ok);
  EXPECT_TRUE(page[http::field::content_type].starts_with("text/html"));
  EXPECT_NE(page.body().find("openapi.json"), std::string::npos);
  // Self-contained: no external scripts, styles or fonts.
  EXPECT_EQ(page.body().find("http://"), std::string::npos);
  EXPECT_EQ(page.body().find("https://"), std::string::npos);
  EXPECT_EQ(page.body().find("<script src"), std::string::npos);
}

}  // namespace
}  // namespace chat4all::api
