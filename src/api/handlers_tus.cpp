// tus 1.0.0 (core, creation, termination, checksum, expiration) at /v1/tus/, on the same
// uploads, storage and state as the SPEC §5 chunked API: an upload made here is an upload
// there (status, complete, download, file messages). Offsets advance by whole chunks
// (blobs store parts, S3 needs >= 5 MiB parts): a PATCH that stops inside a chunk keeps the
// chunks before it, and the client resumes from the Upload-Offset it is told (tus allows it).
//
// Creation needs Upload-Metadata with `conversation_id`, `filename` and `filetype` (base64
// values, as the protocol says); `checksum_sha256` (hex) is optional. Upload-Defer-Length
// and creation-with-upload are not offered.

#include "api/handlers.hpp"
#include "api/json_input.hpp"
#include "api/route_table.hpp"
#include "core/crypto.hpp"

namespace chat4all::api {
using boost::asio::awaitable;

namespace {

constexpr const char* tus_version = "1.0.0";
constexpr const char* tus_extensions = "creation,termination,checksum,expiration";

response tus_reply(const request& req, http::status status) {
  response res{status, req.version()};
  res.set("Tus-Resumable", tus_version);
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(req.keep_alive());
  return res;
}

response tus_error(const request& req, const error& e) {
  response res = error_response(req, e);
  res.set("Tus-Resumable", tus_version);
  return res;
}

response tus_error(const request& req, http::status status, std::string_view code,
                   std::string_view message) {
  response res = error_response(req, status, code, message);
  res.set("Tus-Resumable", tus_version);
  return res;
}

// 412 unless the client speaks our version.
std::optional<response> version_check(const request& req) {
  if (req["Tus-Resumable"] == tus_version) return std::nullopt;
  response res = tus_error(req, http::status::precondition_failed, "unsupported_tus_version",
                           "Tus-Resumable must be 1.0.0");
  res.set("Tus-Version", tus_version);
  return res;
}

std::optional<std::uint64_t> header_uint(std::string_view v) {
  if (v.empty() || v.size() > 19) return std::nullopt;
  std::uint64_t x = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    x = x * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return x;
}

// "key b64,key2 b64,flag" -> pairs; nullopt when malformed.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_metadata(std::string_view h) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!h.empty()) {
    auto comma = h.find(',');
    std::string_view item = h.substr(0, comma);
    h = comma == std::string_view::npos ? std::string_view{} : h.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    auto sp = item.find(' ');
    std::string key(item.substr(0, sp));
    std::string value;
    if (sp != std::string_view::npos) {
      auto v = crypto::base64_decode(item.substr(sp + 1));
      if (!v) return std::nullopt;
      value = std::move(*v);
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

void set_expires(response& res, timestamp_us expires_at) {
  // RFC 9110 IMF-fixdate, as tus asks for Upload-Expires.
  const std::time_t t = static_cast<std::time_t>(expires_at / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  res.set("Upload-Expires", buf);
}

awaitable<response> do_options(api_services& s, request_context& ctx) {
  response res = tus_reply(ctx.req, http::status::no_content);
  res.set("Tus-Version", tus_version);
  res.set("Tus-Extension", tus_extensions);
  res.set("Tus-Max-Size", std::to_string(s.cfg.uploads.max_file_size));
  res.set("Tus-Checksum-Algorithm", "sha1,sha256");
  co_return res;
}

awaitable<response> do_create(api_services& s, request_context& ctx) {
  if (auto r = version_check(ctx.req)) co_return *r;
  if (!ctx.req["Upload-Defer-Length"].empty())
    co_return tus_error(ctx.req, invalid_fields({{"Upload-Defer-Length", "is not supported"}}));
  auto length = header_uint(ctx.req["Upload-Length"]);
  if (!length)
    co_return tus_error(ctx.req,
                        invalid_fields({{"Upload-Length", "must be a non-negative integer"}}));
  auto meta = parse_metadata(ctx.req["Upload-Metadata"]);
  if (!meta)
    co_return tus_error(ctx.req, invalid_fields({{"Upload-Metadata", "must be key base64 pairs"}}));
  initiate_request req;
  req.file_size = *length;
  bool have_conv = false;
  for (auto& [k, v] : *meta) {
    if (k == "filename" || k == "name") req.filename = v;
    if (k == "filetype" || k == "type") req.mime_type = v;
    if (k == "checksum_sha256") req.checksum_sha256 = v;
    if (k == "conversation_id") {
      auto c = header_uint(v);
      if (c && *c > 0 && *c <= INT64_MAX) {
        req.conversation = static_cast<conversation_id>(*c);
        have_conv = true;
      }
    }
  }
  if (!have_conv) {
    error e{errc::invalid_input, "Upload-Metadata needs conversation_id"};
    e.details.push_back({"Upload-Metadata.conversation_id", "must be a positive integer"});
    co_return tus_error(ctx.req, e);
  }
  if (req.mime_type.empty()) req.mime_type = "application/octet-stream";
  auto r = co_await s.files.initiate(*ctx.caller, std::move(req), "tus");
  if (!r) co_return tus_error(ctx.req, r.err());
  response res = tus_reply(ctx.req, http::status::created);
  res.set(http::field::location, "/v1/tus/" + r->id.str());
  set_expires(res, r->expires_at);
  co_return res;
}

result<uuid> tus_id(const request_context& ctx) {
  if (auto u = uuid::parse(ctx.param("upload_id"))) return *u;
  return error{errc::not_found, "no such upload"};
}

awaitable<response> do_head(api_services& s, request_context& ctx) {
  if (auto r = version_check(ctx.req)) co_return *r;
  auto id = tus_id(ctx);
  if (!id) co_return tus_error(ctx.req, id.err());
  auto r = co_await s.files.status(*ctx.caller, *id);
  if (!r) co_return tus_error(ctx.req, r.err());
  if (r->status == upload_status::expired)
    co_return tus_error(ctx.req, http::status::gone, "upload_expired", "the upload expired");
  response res = tus_reply(ctx.req, http::status::ok);
  res.set("Upload-Offset", std::to_string(upload_service::stored_offset(*r)));
  res.set("Upload-Length", std::to_string(r->file_size));
  if (r->status == upload_status::uploading) set_expires(res, r->expires_at);
  co_return res;
}

awaitable<std::optional<response>> do_patch(api_services& s, request_context& ctx, stream_io& io) {
  if (auto r = version_check(ctx.req)) co_return *r;
  if (ctx.req[http::field::content_type] != "application/offset+octet-stream")
    co_return tus_error(ctx.req, error{errc::unsupported_media,
                                       "Content-Type must be application/offset+octet-stream"});
  auto id = tus_id(ctx);
  if (!id) co_return tus_error(ctx.req, id.err());
  auto offset = header_uint(ctx.req["Upload-Offset"]);
  if (!offset)
    co_return tus_error(ctx.req,
                        invalid_fields({{"Upload-Offset", "must be a non-negative integer"}}));
  std::optional<upload_service::tus_checksum> checksum;
  if (auto h = ctx.req["Upload-Checksum"]; !h.empty()) {
    auto sp = h.find(' ');
    auto digest =
        sp == std::string_view::npos ? std::nullopt : crypto::base64_decode(h.substr(sp + 1));
    if (!digest)
      co_return tus_error(ctx.req,
                          invalid_fields({{"Upload-Checksum", "must be <algorithm> <base64>"}}));
    checksum = upload_service::tus_checksum{std::string(h.substr(0, sp)), std::move(*digest)};
  }
  auto r = co_await s.files.append(*ctx.caller, *id, *offset, io.content_length(),
                                   std::move(checksum), io);
  if (!r) {
    if (r.err().api_code == "checksum_mismatch")
      co_return tus_error(ctx.req, static_cast<http::status>(460), "checksum_mismatch",
                          r.err().message);
    if (r.err().api_code == "upload_not_in_progress") {
      auto st = co_await s.files.status(*ctx.caller, *id);
      if (st && st->status == upload_status::expired)
        co_return tus_error(ctx.req, http::status::gone, "upload_expired", "the upload expired");
    }
    co_return tus_error(ctx.req, r.err());
  }
  response res = tus_reply(ctx.req, http::status::no_content);
  res.set("Upload-Offset", std::to_string(*r));
  co_return res;
}

awaitable<response> do_delete(api_services& s, request_context& ctx) {
  if (auto r = version_check(ctx.req)) co_return *r;
  auto id = tus_id(ctx);
  if (!id) co_return tus_error(ctx.req, id.err());
  auto r = co_await s.files.terminate(*ctx.caller, *id);
  if (!r) co_return tus_error(ctx.req, r.err());
  co_return tus_reply(ctx.req, http::status::no_content);
}

}  // namespace

void register_tus_routes(route_table& routes, api_services& s) {
  auto* sp = &s;
  routes.add(http::verb::options, "/v1/tus/", {"OPTIONS /v1/tus/", 0, false},
             [sp](request_context& c) { return do_options(*sp, c); });
  routes.add(http::verb::post, "/v1/tus/", {"POST /v1/tus/", 0, true},
             [sp](request_context& c) { return do_create(*sp, c); });
  routes.add(http::verb::head, "/v1/tus/{upload_id}", {"HEAD /v1/tus/{upload_id}", 0, true},
             [sp](request_context& c) { return do_head(*sp, c); });
  routes.add_stream(http::verb::patch, "/v1/tus/{upload_id}",
                    {"PATCH /v1/tus/{upload_id}", s.cfg.uploads.max_file_size, true},
                    [sp](request_context& c, stream_io& io) { return do_patch(*sp, c, io); });
  routes.add(http::verb::delete_, "/v1/tus/{upload_id}", {"DELETE /v1/tus/{upload_id}", 0, true},
             [sp](request_context& c) { return do_delete(*sp, c); });
}

}  // namespace chat4all::api
