#include "core/mime_sniff.hpp"

#include <magic.h>

#include <algorithm>
#include <cctype>

namespace chat4all {

std::string sniff_mime_type(std::string_view head) {
  constexpr const char* unknown = "application/octet-stream";
  magic_t cookie = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
  if (cookie == nullptr) return unknown;
  std::string out = unknown;
  if (magic_load(cookie, nullptr) == 0) {
    if (const char* t = magic_buffer(cookie, head.data(), head.size()); t != nullptr) out = t;
  }
  magic_close(cookie);
  return out;
}

namespace {
std::string base_type(std::string_view t) {
  if (auto semi = t.find(';'); semi != std::string_view::npos) t = t.substr(0, semi);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
  std::string out(t);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}
}  // namespace

bool mime_types_agree(std::string_view declared, std::string_view sniffed) {
  const auto d = base_type(declared), s = base_type(sniffed);
  constexpr std::string_view unknown = "application/octet-stream";
  if (d == s || d == unknown || s == unknown || d.empty() || s.empty()) return true;
  return d.starts_with("text/") && s.starts_with("text/");
}

}  // namespace chat4all
