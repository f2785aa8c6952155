// GET /openapi.json (the embedded docs/openapi.json) and GET /docs (an HTML page rendering it).

#include <boost/beast/http/field.hpp>

#include <string_view>

#include "api/handlers.hpp"
#include "api/openapi_document.hpp"
#include "api/route_table.hpp"

namespace chat4all::api {
using boost::asio::awaitable;

namespace {

// Self-contained: inline CSS and JS, no external resource. It fetches openapi.json relative
// to its own URL and renders the operations (grouped by tag), parameters, bodies, responses
// and the component schemas.
constexpr std::string_view docs_page = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat4All API</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1d2a3a;color:#fff;padding:16px 24px}
header h1{margin:0;font-size:22px}
header .ver{opacity:.7;font-size:13px;margin-left:8px}
main{max-width:1100px;margin:0 auto;padding:16px 24px 64px}
#intro{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:4px 16px;margin-bottom:16px}
#filter{width:100%;box-sizing:border-box;padding:8px 10px;font-size:14px;border:1px solid #c5ccd4;border-radius:6px;margin-bottom:16px}
h2{font-size:18px;margin:24px 0 8px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
details.op{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:6px 0}
details.op>summary{cursor:pointer;padding:8px 12px;display:flex;gap:10px;align-items:baseline;list-style:none}
details.op>summary::-webkit-details-marker{display:none}
details.op[open]>summary{border-bottom:1px solid #dde1e6}
.body{padding:8px 16px 12px}
.m{display:inline-block;min-width:58px;text-align:center;font-weight:700;font-size:12px;border-radius:4px;padding:2px 6px;color:#fff}
.m.get{background:#2f7dd1}.m.post{background:#2e9b5f}.m.put{background:#c98a12}.m.patch{background:#8c5bd1}.m.delete{background:#c9422f}
.path{font-family:ui-monospace,Menlo,Consolas,monospace;font-weight:600}
.sum{color:#56606b}
.lock{margin-left:auto;font-size:12px;color:#56606b;white-space:nowrap}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
code{background:#eef1f4;border-radius:3px;padding:0 3px}
h4{margin:14px 0 6px;font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#56606b}
table{border-collapse:collapse;width:100%;margin:4px 0}
td,th{border-top:1px solid #e6e9ed;padding:4px 8px;text-align:left;vertical-align:top}
th{font-size:12px;color:#56606b;font-weight:600}
.req{color:#c9422f;font-weight:700}
.type{color:#7a3e9d}
.cons{color:#56606b;font-size:12px}
.st{font-weight:700;font-family:ui-monospace,Menlo,Consolas,monospace}
.st.s2{color:#2e9b5f}.st.s4{color:#c98a12}.st.s5{color:#c9422f}
.nest{margin-left:16px;border-left:2px solid #e6e9ed;padding-left:8px}
pre{background:#f0f2f5;border-radius:4px;padding:8px;overflow:auto;font-size:12px}
.schema{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:8px 16px;margin:8px 0}
.schema h3{margin:4px 0;font-size:15px}
.err{color:#c9422f;font-weight:600}
a{color:#2f6fb7}
</style>
</head>
<body>
<header><h1 id="title">Chat4All API</h1></header>
<main>
<div id="intro"><p>Loading <a href="openapi.json">openapi.json</a>&hellip;</p></div>
<input id="filter" type="search" placeholder="Filter operations (path, method, summary)">
<div id="ops"></div>
<h2 id="schemas-title">Schemas</h2>
<div id="schemas"></div>
</main>
<script>
"use strict";
let DOC = null;
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined)
    e.append(typeof k === "string" ? document.createTextNode(k) : k);
  return e;
}
// Tiny Markdown: paragraphs, "* " lists, `code`, **bold**. Input is escaped first.
function md(text) {
  const box = el("div");
  const inline = s => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/`([^`]+)`/g, "<code>$1</code>").replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>");
  let html = "", list = false;
  for (const line of String(text || "").split("\n")) {
    if (/^\s*[*-] /.test(line)) {
      if (!list) { html += "<ul>"; list = true; }
      html += "<li>" + inline(line.replace(/^\s*[*-] /, "")) + "</li>";
    } else {
      if (list) { html += "</ul>"; list = false; }
      if (line.trim()) html += "<p>" + inline(line) + "</p>";
    }
  }
  if (list) html += "</ul>";
  box.innerHTML = html;
  return box;
}
function refName(ref) { return ref.split("/").pop(); }
function resolve(obj) {
  let o = obj, guard = 0;
  while (o && o.$ref && guard++ < 20) {
    o = o.$ref.replace(/^#\//, "").split("/").reduce((a, k) => a && a[k.replace(/~1/g, "/").replace(/~0/g, "~")], DOC);
  }
  return o || {};
}
function refLink(ref) { return el("a", {href: "#schema-" + refName(ref), class: "mono"}, refName(ref)); }
function constraints(s) {
  const c = [];
  if (s.format) c.push(s.format);
  if (s.nullable) c.push("nullable");
  if (s.enum) c.push("one of: " + s.enum.map(v => JSON.stringify(v)).join(", "));
  if (s.minimum !== undefined) c.push("min " + s.minimum);
  if (s.maximum !== undefined) c.push("max " + s.maximum);
  if (s.minLength !== undefined) c.push("minLength " + s.minLength);
  if (s.maxLength !== undefined) c.push("maxLength " + s.maxLength);
  if (s.minItems !== undefined) c.push("minItems " + s.minItems);
  if (s.maxItems !== undefined) c.push("maxItems " + s.maxItems);
  if (s.pattern) c.push("pattern " + s.pattern);
  if (s.default !== undefined) c.push("default " + JSON.stringify(s.default));
  return c.join("; ");
}
// A schema as a DOM node: $ref as a link, objects as a property table, arrays by their items.
function schemaNode(s, depth) {
  if (!s) return el("span", {class: "type"}, "any");
  if (s.$ref) return refLink(s.$ref);
  depth = depth || 0;
  if (s.allOf && s.allOf.length === 1)  // a reference with its own description or nullable
    return el("span", {}, schemaNode(s.allOf[0], depth), s.nullable ? el("span", {class: "cons"}, " (nullable)") : null);
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    if (s[key]) {
      const box = el("div", {}, el("span", {class: "type"}, key === "allOf" ? "all of" : "one of"),
                     s.nullable ? el("span", {class: "cons"}, " (nullable)") : null);
      const ul = el("ul");
      for (const alt of s[key]) ul.append(el("li", {}, schemaNode(alt, depth + 1)));
      box.append(ul);
      if (s.description && !depth) box.append(md(s.description));
      return box;
    }
  }
  if (s.type === "array") {
    return el("span", {}, el("span", {class: "type"}, "array of "), schemaNode(s.items, depth + 1),
              constraints(s) ? el("span", {class: "cons"}, " (" + constraints(s) + ")") : null);
  }
  if (s.type === "object" && s.properties && depth < 6) {
    const req = new Set(s.required || []);
    const t = el("table", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "description")));
    for (const [name, p] of Object.entries(s.properties)) {
      const r = resolve(p);
      const typeCell = el("td", {}, schemaNode(p, depth + 1));
      t.append(el("tr", {}, el("td", {class: "mono"}, name, req.has(name) ? el("span", {class: "req"}, " *") : null),
                  typeCell, el("td", {}, md(p.description || (p.$ref ? r.description : "") || ""))));
    }
    return el("div", {class: depth ? "nest" : ""}, t);
  }
  const type = (s.type || "any");
  const c = constraints(s);
  return el("span", {}, el("span", {class: "type"}, type), c ? el("span", {class: "cons"}, " (" + c + ")") : null);
}
// A request or response body; `expand` also shows the fields of a referenced schema.
function contentNode(content, expand) {
  const box = el("div");
  for (const [ct, media] of Object.entries(content || {})) {
    box.append(el("div", {class: "cons"}, ct), schemaNode(media.schema));
    if (expand && media.schema && media.schema.$ref) box.append(schemaNode(resolve(media.schema), 1));
    if (media.example !== undefined) box.append(el("pre", {}, JSON.stringify(media.example, null, 2)));
  }
  return box;
}
function opNode(method, path, op, pathItem) {
  const isPublic = Array.isArray(op.security) ? op.security.length === 0 : !(DOC.security || []).length;
  const d = el("details", {class: "op", id: op.operationId || ""});
  d.dataset.search = (method + " " + path + " " + (op.summary || "") + " " + (op.operationId || "")).toLowerCase();
  d.append(el("summary", {}, el("span", {class: "m " + method}, method.toUpperCase()),
                          el("span", {class: "path"}, path), el("span", {class: "sum"}, op.summary || ""),
                          el("span", {class: "lock"}, isPublic ? "public" : "\u{1F512} bearer token")));
  const b = el("div", {class: "body"});
  if (op.description) b.append(md(op.description));
  const params = [...(pathItem.parameters || []), ...(op.parameters || [])].map(resolve);
  if (params.length) {
    b.append(el("h4", {}, "Parameters"));
    const t = el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "description")));
    for (const p of params)
      t.append(el("tr", {}, el("td", {class: "mono"}, p.name, p.required ? el("span", {class: "req"}, " *") : null),
                  el("td", {}, p.in), el("td", {}, schemaNode(p.schema)), el("td", {}, md(p.description || ""))));
    b.append(t);
  }
  if (op.requestBody) {
    const rb = resolve(op.requestBody);
    b.append(el("h4", {}, "Request body" + (rb.required ? "" : " (optional)")));
    if (rb.description) b.append(md(rb.description));
    b.append(contentNode(rb.content, true));
  }
  b.append(el("h4", {}, "Responses"));
  const t = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "description"), el("th", {}, "body")));
  for (const [status, ref] of Object.entries(op.responses || {})) {
    const r = resolve(ref);
    const desc = md(r.description || "");
    const hs = Object.keys(r.headers || {});
    if (hs.length) desc.append(el("div", {class: "cons"}, "headers: " + hs.join(", ")));
    t.append(el("tr", {}, el("td", {class: "st s" + status[0]}, status), el("td", {}, desc),
                el("td", {}, ref.$ref ? el("div", {}, el("div", {class: "cons"}, refName(ref.$ref)), contentNode(r.content, false))
                                     : contentNode(r.content, status[0] === "2"))));
  }
  b.append(t);
  d.append(b);
  return d;
}
function render(doc) {
  DOC = doc;
  const info = doc.info || {};
  document.title = info.title || "API";
  const title = document.getElementById("title");
  title.textContent = info.title || "API";
  title.append(el("span", {class: "ver"}, "v" + (info.version || "?") + " \u00b7 OpenAPI " + doc.openapi));
  const intro = document.getElementById("intro");
  intro.replaceChildren(md(info.description || ""), el("p", {}, "Raw document: ", el("a", {href: "openapi.json"}, "openapi.json")));
  const byTag = new Map();
  for (const t of doc.tags || []) byTag.set(t.name, {desc: t.description, ops: []});
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of ["get", "put", "post", "delete", "options", "head", "patch", "trace"]) {
      if (!item[method]) continue;
      const tag = (item[method].tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, {desc: "", ops: []});
      byTag.get(tag).ops.push(opNode(method, path, item[method], item));
    }
  }
  const ops = document.getElementById("ops");
  for (const [tag, g] of byTag) {
    if (!g.ops.length) continue;
    const sec = el("section", {class: "tag"}, el("h2", {}, tag, g.desc ? el("span", {class: "sum"}, " \u2014 " + g.desc) : null));
    sec.append(...g.ops);
    ops.append(sec);
  }
  const schemas = document.getElementById("schemas");
  for (const [name, s] of Object.entries((doc.components || {}).schemas || {})) {
    const box = el("div", {class: "schema", id: "schema-" + name}, el("h3", {class: "mono"}, name));
    if (s.description && !(s.oneOf || s.allOf || s.anyOf)) box.append(md(s.description));
    box.append(schemaNode(s, 0));
    schemas.append(box);
  }
  if (location.hash) { const t = document.getElementById(location.hash.slice(1)); if (t) { if (t.tagName === "DETAILS") t.open = true; t.scrollIntoView(); } }
}
document.getElementById("filter").addEventListener("input", ev => {
  const q = ev.target.value.trim().toLowerCase();
  for (const d of document.querySelectorAll("details.op")) d.style.display = !q || d.dataset.search.includes(q) ? "" : "none";
  for (const s of document.querySelectorAll("section.tag"))
    s.style.display = [...s.querySelectorAll("details.op")].some(d => d.style.display !== "none") ? "" : "none";
});
fetch(new URL("openapi.json", location.href), {headers: {Accept: "application/json"}})
  .then(r => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
  .then(render)
  .catch(e => document.getElementById("intro").replaceChildren(
      el("p", {class: "err"}, "Could not load openapi.json: " + e.message)));
</script>
</body>
</html>
)html";

awaitable<response> do_openapi(api_services&, request_context& ctx) {
  co_return json_response(ctx.req, http::status::ok, std::string(openapi_document()));
}

awaitable<response> do_docs(api_services&, request_context& ctx) {
  response res{http::status::ok, ctx.req.version()};
  res.set(http::field::content_type, "text/html; charset=utf-8");
  // The page needs nothing but itself and openapi.json from the same origin.
  res.set("Content-Security-Policy",
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
          "connect-src 'self'; img-src data:");
  res.set("X-Content-Type-Options", "nosniff");
  res.keep_alive(ctx.req.keep_alive());
  res.body() = docs_page;
  res.prepare_payload();
  co_return res;
}

}  // namespace

void register_docs_routes(route_table& routes, api_services& s) {
  auto* sp = &s;
  routes.add(http::verb::get, "/openapi.json", {"GET /openapi.json", 0, false},
             [sp](request_context& c) { return do_openapi(*sp, c); });
  routes.add(http::verb::get, "/docs", {"GET /docs", 0, false},
             [sp](request_context& c) { return do_docs(*sp, c); });
}

}  // namespace chat4all::api
