// SPEC §5 uploads: POST /v1/files/initiate, PUT /v1/files/{upload_id}/chunks/{n} (and
// POST /v1/files/{upload_id}/chunks?chunk_number=n), GET /v1/files/{upload_id}/status,
// POST /v1/files/{upload_id}/complete, GET /v1/files/{file_id} (download, Range, ETag).
// Chunk bodies and downloads are streamed (stream routes): never held whole in memory.

#include <boost/json/parse.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "api/handlers.hpp"
#include "api/json_input.hpp"
#include "api/json_output.hpp"
#include "api/route_table.hpp"

namespace chat4all::api {
namespace json = boost::json;
using boost::asio::awaitable;

namespace {

struct file_metrics {
  obs::counter* bytes;
  obs::histogram* chunk_latency;
};

result<uuid> path_uuid(const request_context& ctx, std::string_view name) {
  if (auto u = uuid::parse(ctx.param(name))) return *u;
  error e{errc::invalid_input, std::string(name) + " must be a UUID"};
  e.details.push_back({std::string(name), "must be a UUID"});
  return e;
}

json::object status_json(const upload_record& r) {
  json::object o;
  o["upload_id"] = r.id.str();
  o["status"] = to_string(r.status);
  o["filename"] = r.filename;
  o["mime_type"] = r.mime_type;
  o["file_size"] = r.file_size;
  o["chunk_size"] = r.chunk_size;
  o["uploaded_chunks"] = r.chunks.size();
  o["total_chunks"] = r.total_chunks;
  const double pct =
      r.total_chunks == 0
          ? 0.0
          : std::round(1000.0 * static_cast<double>(r.chunks.size()) / r.total_chunks) / 10.0;
  o["percentage"] = r.status == upload_status::completed ? 100.0 : pct;
  json::array missing;
  std::size_t k = 0;
  for (int n = 1; n <= r.total_chunks; ++n) {
    while (k < r.chunks.size() && r.chunks[k].number < n) ++k;
    if (k < r.chunks.size() && r.chunks[k].number == n) continue;
    missing.push_back(n);
  }
  o["missing_chunks"] = std::move(missing);
  o["expires_at"] = format_rfc3339(r.expires_at);
  if (!r.reason.empty()) o["reason"] = r.reason;
  if (r.status == upload_status::completed) {
    o["file_id"] = r.id.str();
    o["download_url"] = "/v1/files/" + r.id.str();
    if (!r.file_sha256.empty()) o["sha256"] = r.file_sha256;
    o["detected_mime_type"] = r.detected_mime;
  }
  return o;
}

awaitable<response> do_initiate(api_services& s, request_context& ctx) {
  auto body = parse_json_body(ctx.req);
  if (!body) co_return error_response(ctx.req, body.err());
  field_reader f(*body);
  initiate_request req;
  if (auto c = f.int64("conversation_id", true, 1)) req.conversation = *c;
  if (auto n = f.string("filename", true, 255)) req.filename = std::move(*n);
  if (auto m = f.string("mime_type", true, 255)) req.mime_type = std::move(*m);
  if (auto sz = f.int64("file_size", true, 1)) req.file_size = static_cast<std::uint64_t>(*sz);
  if (auto c = f.string("checksum_sha256", false, 64)) req.checksum_sha256 = std::move(*c);
  if (auto c = f.int64("chunk_size", false, 1)) req.chunk_size = static_cast<std::uint64_t>(*c);
  if (!f.ok()) co_return error_response(ctx.req, f.failure());
  auto r = co_await s.files.initiate(*ctx.caller, std::move(req));
  if (!r) co_return error_response(ctx.req, r.err());
  json::object o;
  o["upload_id"] = r->id.str();
  o["chunk_size"] = r->chunk_size;
  o["total_chunks"] = r->total_chunks;
  o["expires_at"] = format_rfc3339(r->expires_at);
  co_return json_reply(ctx, http::status::created, o);
}

awaitable<std::optional<response>> do_chunk(api_services& s, file_metrics m, bool in_query,
                                            request_context& ctx, stream_io& io) {
  const auto t0 = std::chrono::steady_clock::now();
  auto id = path_uuid(ctx, "upload_id");
  if (!id) co_return error_response(ctx.req, id.err());
  std::vector<field_error> errs;
  std::optional<std::int64_t> n;
  if (in_query) {
    n = query_int(ctx, "chunk_number", 1, 1'000'000, errs);
    if (!n && errs.empty()) errs.push_back({"chunk_number", "is required"});
  } else {
    auto p = path_id(ctx, "n");
    if (!p || *p > 1'000'000)
      errs.push_back({"n", "must be a chunk number from 1"});
    else
      n = *p;
  }
  if (!errs.empty()) co_return error_response(ctx.req, invalid_fields(std::move(errs)));
  std::string sha(ctx.req["X-Chunk-SHA256"]);
  auto r = co_await s.files.put_chunk(*ctx.caller, *id, static_cast<int>(*n), io.content_length(),
                                      std::move(sha), io);
  if (!r) co_return error_response(ctx.req, r.err());
  if (!r->replay) m.bytes->inc(r->chunk.size);
  m.chunk_latency->observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  json::object o;
  o["upload_id"] = id->str();
  o["chunk_number"] = r->chunk.number;
  o["size"] = r->chunk.size;
  o["sha256"] = r->chunk.sha256_hex;
  o["status"] = r->replay ? "already_stored" : "stored";
  co_return json_reply(ctx, http::status::ok, o);
}

awaitable<response> do_status(api_services& s, request_context& ctx) {
  auto id = path_uuid(ctx, "upload_id");
  if (!id) co_return error_response(ctx.req, id.err());
  auto r = co_await s.files.status(*ctx.caller, *id);
  if (!r) co_return error_response(ctx.req, r.err());
  co_return json_reply(ctx, http::status::ok, status_json(*r));
}

awaitable<response> do_complete(api_services& s, request_context& ctx) {
  auto id = path_uuid(ctx, "upload_id");
  if (!id) co_return error_response(ctx.req, id.err());
  auto r = co_await s.files.complete(*ctx.caller, *id);
  if (!r) {
    response res = error_response(ctx.req, r.err());
    if (r.err().api_code == "missing_chunks") {
      // The error body plus the list, so a client can resume from this answer alone.
      auto v = json::parse(res.body());
      json::array missing;
      for (const auto& d : r.err().details) missing.push_back(std::stoll(d.reason));
      v.as_object()["missing_chunks"] = std::move(missing);
      res.body() = json::serialize(v);
    }
    co_return res;
  }
  json::object o;
  o["upload_id"] = r->id.str();
  o["status"] = to_string(r->status);
  if (r->status == upload_status::completed) o["file_id"] = r->id.str();
  co_return json_reply(ctx, http::status::accepted, o);
}

// RFC 5987 filename* plus an ASCII fallback.
std::string content_disposition(const std::string& name) {
  std::string ascii, encoded;
  for (unsigned char c : name) {
    ascii += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? static_cast<char>(c) : '_';
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
      encoded += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      encoded += buf;
    }
  }
  return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

// "bytes=a-b" | "bytes=a-" | "bytes=-n" against `size`: the range, nullopt when the header
// should be ignored (absent, several ranges, another unit), or an error for 416.
struct byte_range {
  std::uint64_t first = 0, last = 0;
};
result<std::optional<byte_range>> parse_range(std::string_view h, std::uint64_t size) {
  if (h.empty() || !h.starts_with("bytes=") || h.find(',') != std::string_view::npos)
    return std::optional<byte_range>{};
  h.remove_prefix(6);
  const auto dash = h.find('-');
  if (dash == std::string_view::npos) return error{errc::invalid_input, "malformed Range"};
  auto num = [](std::string_view t) -> std::optional<std::uint64_t> {
    if (t.empty() || t.size() > 19) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : t) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
  };
  const auto a = h.substr(0, dash), b = h.substr(dash + 1);
  byte_range r;
  if (a.empty()) {
    auto n = num(b);
    if (!n || *n == 0) return error{errc::invalid_input, "unsatisfiable Range"};
    r.first = *n >= size ? 0 : size - *n;
    r.last = size - 1;
  } else {
    auto f = num(a);
    if (!f || *f >= size) return error{errc::invalid_input, "unsatisfiable Range"};
    r.first = *f;
    if (b.empty()) {
      r.last = size - 1;
    } else {
      auto l = num(b);
      if (!l || *l < *f) return error{errc::invalid_input, "unsatisfiable Range"};
      r.last = std::min(*l, size - 1);
    }
  }
  return std::optional<byte_range>(r);
}

awaitable<std::optional<response>> do_download(api_services& s, request_context& ctx,
                                               stream_io& io) {
  auto id = path_uuid(ctx, "file_id");
  if (!id) co_return error_response(ctx.req, id.err());
  auto f = co_await s.files.file_for_download(*ctx.caller, *id);
  if (!f) co_return error_response(ctx.req, f.err());
  // The whole-file SHA-256 when the client declared one (verified); else the id: a file's
  // bytes never change.
  const std::string etag = "\"" + (f->file_sha256.empty() ? f->id.str() : f->file_sha256) + "\"";
  if (s.cfg.uploads.download_redirect) {
    if (auto url = s.files.presigned_url(*f)) {
      response res{http::status::found, ctx.req.version()};
      res.set(http::field::location, *url);
      res.set(http::field::etag, etag);
      res.set(http::field::cache_control, "private, no-store");
      co_return res;
    }
  }
  if (ctx.req[http::field::if_none_match] == etag) {
    response res{http::status::not_modified, ctx.req.version()};
    res.set(http::field::etag, etag);
    co_return res;
  }
  auto range = parse_range(ctx.req[http::field::range], f->file_size);
  // If-Range with another validator: the client's partial copy is stale, send it whole.
  if (range && *range && !ctx.req[http::field::if_range].empty() &&
      ctx.req[http::field::if_range] != etag)
    range = std::optional<byte_range>{};
  if (!range) {
    response res = error_response(ctx.req, http::status::range_not_satisfiable,
                                  "range_not_satisfiable", range.err().message);
    res.set(http::field::content_range, "bytes */" + std::to_string(f->file_size));
    co_return res;
  }
  const std::uint64_t first = *range ? (*range)->first : 0;
  const std::uint64_t length = *range ? (*range)->last - first + 1 : f->file_size;
  response head{*range ? http::status::partial_content : http::status::ok, ctx.req.version()};
  head.set(http::field::content_type, f->mime_type);
  head.set(http::field::content_disposition, content_disposition(f->filename));
  head.set(http::field::accept_ranges, "bytes");
  head.set(http::field::etag, etag);
  head.set(http::field::cache_control, "private");
  head.set("X-Content-Type-Options", "nosniff");
  if (*range)
    head.set(http::field::content_range, "bytes " + std::to_string(first) + "-" +
                                             std::to_string((*range)->last) + "/" +
                                             std::to_string(f->file_size));
  head.content_length(length);
  head.set("X-Request-ID", ctx.request_id);
  head.keep_alive(ctx.req.keep_alive());
  auto sink = co_await io.begin_response(std::move(head));
  if (!sink) co_return std::nullopt;
  co_await s.files.read(*f, first, length, **sink);  // a failure mid-way closes the connection
  co_return std::nullopt;
}

}  // namespace

void register_file_routes(route_table& routes, api_services& s) {
  auto* sp = &s;
  const file_metrics m{
      &s.metrics.counter("chat4all_upload_bytes_total", "Bytes of upload chunks stored"),
      &s.metrics.histogram("chat4all_upload_chunk_duration_seconds",
                           "Time to receive, hash and store one upload chunk",
                           {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})};
  const std::size_t chunk_limit = s.cfg.uploads.max_chunk_size;
  routes.add(http::verb::post, "/v1/files/initiate", {"POST /v1/files/initiate", 16 * 1024, true},
             [sp](request_context& c) { return do_initiate(*sp, c); });
  routes.add_stream(
      http::verb::put, "/v1/files/{upload_id}/chunks/{n}",
      {"PUT /v1/files/{upload_id}/chunks/{n}", chunk_limit, true},
      [sp, m](request_context& c, stream_io& io) { return do_chunk(*sp, m, false, c, io); });
  routes.add_stream(
      http::verb::post, "/v1/files/{upload_id}/chunks",
      {"POST /v1/files/{upload_id}/chunks", chunk_limit, true},
      [sp, m](request_context& c, stream_io& io) { return do_chunk(*sp, m, true, c, io); });
  routes.add(http::verb::get, "/v1/files/{upload_id}/status",
             {"GET /v1/files/{upload_id}/status", 0, true},
             [sp](request_context& c) { return do_status(*sp, c); });
  routes.add(http::verb::post, "/v1/files/{upload_id}/complete",
             {"POST /v1/files/{upload_id}/complete", 4096, true},
             [sp](request_context& c) { return do_complete(*sp, c); });
  routes.add_stream(http::verb::get, "/v1/files/{file_id}", {"GET /v1/files/{file_id}", 0, true},
                    [sp](request_context& c, stream_io& io) { return do_download(*sp, c, io); });
}

}  // namespace chat4all::api
