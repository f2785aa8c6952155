#pragma once
// Content type from magic bytes (libmagic), for checking an upload's declared type.
// Thread-safe: each call uses its own libmagic cookie (magic_t is not thread-safe); the
// magic database is loaded per call (~ms), fine for the once-per-file merge step. Blocking:
// call it off the I/O threads.

#include <string>
#include <string_view>

namespace chat4all {

// The MIME type of `head` (the first bytes of a file, a few KiB suffice), e.g. "image/png";
// "application/octet-stream" when libmagic cannot tell or is unavailable.
std::string sniff_mime_type(std::string_view head);

// Whether a declared type is consistent with the sniffed one: equal (ignoring parameters and
// case), either side is application/octet-stream (unknown), or both are text/*.
bool mime_types_agree(std::string_view declared, std::string_view sniffed);

}  // namespace chat4all
