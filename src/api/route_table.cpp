#include "api/route_table.hpp"

#include <stdexcept>

namespace chat4all::api {
namespace {

// Calls fn(segment) for each '/'-separated segment after the leading '/'.
template <class F>
void for_each_segment(std::string_view path, F&& fn) {
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  for (;;) {
    auto slash = path.find('/');
    fn(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::pair<std::string_view, std::string_view> split_target(std::string_view target) noexcept {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

std::string percent_decode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]);
      int lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += (plus_as_space && c == '+') ? ' ' : c;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (piece.empty()) continue;
    auto eq = piece.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(percent_decode(piece, true), std::string());
    } else {
      out.emplace_back(percent_decode(piece.substr(0, eq), true),
                       percent_decode(piece.substr(eq + 1), true));
    }
  }
  return out;
}

route& route_table::insert(http::verb verb, std::string_view pattern, route_options options) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
  }
  auto r = std::make_unique<route>();
  r->verb = verb;
  r->pattern = std::string(pattern);
  for_each_segment(pattern, [&](std::string_view seg) {
    route::segment s;
    if (!seg.empty() && seg.front() == '{') {
      if (seg.size() < 3 || seg.back() != '}' ||
          seg.substr(1, seg.size() - 2).find_first_of("{}/") != std::string_view::npos) {
        throw std::invalid_argument("malformed parameter segment in route " + std::string(pattern));
      }
      s.text = std::string(seg.substr(1, seg.size() - 2));
      s.param = true;
    } else {
      if (seg.find_first_of("{}") != std::string_view::npos) {
        throw std::invalid_argument("a parameter must be a whole segment in route " +
                                    std::string(pattern));
      }
      s.text = std::string(seg);
    }
    r->segments.push_back(std::move(s));
  });
  for (const auto& existing : routes_) {
    if (existing->verb != verb || existing->segments.size() != r->segments.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < r->segments.size() && same; ++i) {
      const auto& a = existing->segments[i];
      const auto& b = r->segments[i];
      same = a.param == b.param && (a.param || a.text == b.text);
    }
    if (same) {
      throw std::invalid_argument("duplicate route " + std::string(http::to_string(verb)) + " " +
                                  std::string(pattern));
    }
  }
  if (options.name.empty()) {
    options.name = std::string(http::to_string(verb)) + " " + std::string(pattern);
  }
  r->options = std::move(options);
  r->index = routes_.size();
  routes_.push_back(std::move(r));
  return *routes_.back();
}

const route& route_table::add(http::verb verb, std::string_view pattern, route_options options,
                              handler fn) {
  if (!fn) throw std::invalid_argument("empty handler for route " + std::string(pattern));
  route& r = insert(verb, pattern, std::move(options));
  r.fn = std::move(fn);
  return r;
}

const route& route_table::add_upgrade(http::verb verb, std::string_view pattern,
                                      route_options options, upgrade_handler fn) {
  if (!fn) throw std::invalid_argument("empty handler for route " + std::string(pattern));
  route& r = insert(verb, pattern, std::move(options));
  r.upgrade = std::move(fn);
  return r;
}

const route& route_table::add_stream(http::verb verb, std::string_view pattern,
                                     route_options options, stream_handler fn) {
  if (!fn) throw std::invalid_argument("empty handler for route " + std::string(pattern));
  route& r = insert(verb, pattern, std::move(options));
  r.stream = std::move(fn);
  return r;
}

route_match route_table::match(http::verb verb, std::string_view path) const {
  // Raw segments once; at most a few dozen routes, so a linear scan beats a trie here.
  std::vector<std::string_view> segs;
  segs.reserve(8);
  for_each_segment(path, [&](std::string_view s) { segs.push_back(s); });

  route_match m;
  const route* best = nullptr;
  auto more_specific = [](const route& a, const route& b) {
    for (std::size_t i = 0; i < a.segments.size(); ++i) {
      if (a.segments[i].param != b.segments[i].param) return !a.segments[i].param;
    }
    return false;
  };
  for (const auto& r : routes_) {
    if (r->segments.size() != segs.size()) continue;
    bool ok = true;
    for (std::size_t i = 0; i < segs.size() && ok; ++i) {
      const auto& s = r->segments[i];
      ok = s.param ? !segs[i].empty() : s.text == segs[i];
    }
    if (!ok) continue;
    if (r->verb != verb) {
      std::string_view v = http::to_string(r->verb);
      if (m.allow.find(v) == std::string::npos) {
        if (!m.allow.empty()) m.allow += ", ";
        m.allow += v;
      }
      continue;
    }
    if (best == nullptr || more_specific(*r, *best)) best = r.get();
  }
  if (best == nullptr) {
    m.kind = m.allow.empty() ? match_kind::not_found : match_kind::method_not_allowed;
    return m;
  }
  m.kind = match_kind::found;
  m.r = best;
  m.allow.clear();
  for (std::size_t i = 0; i < segs.size(); ++i) {
    if (best->segments[i].param) {
      m.params.emplace_back(best->segments[i].text, percent_decode(segs[i], false));
    }
  }
  return m;
}

}  // namespace chat4all::api
