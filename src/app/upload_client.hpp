#pragma once
// `chat4all upload FILE --conversation N`: a terminal client of the SPEC §5 upload API with a
// progress bar and automatic resume.
//
// It hashes the file (the server verifies the whole-file SHA-256 at completion), initiates an
// upload and remembers its id in a state file (${XDG_CACHE_HOME:-~/.cache}/chat4all/uploads/,
// named after the server, conversation, file path, size and mtime). Run again after an
// interruption (Ctrl-C, network loss, a server restart), it asks the server for the upload's
// status and sends only the missing chunks; a chunk that fails is retried with backoff (1, 2,
// 4, 8 s), after which the status is asked again. Then it completes the upload, waits for
// COMPLETED or FAILED, prints the file id and removes the state file.
// Progress goes to stderr (a bar on a terminal, a line per 10% otherwise); stdout gets one
// JSON object: {"file_id","upload_id","sha256","size"}.

#include <optional>
#include <string>

namespace chat4all::app {

struct upload_options {
  std::string file;
  long long conversation = 0;
  std::string url = "http://127.0.0.1:8080";
  std::string token;     // a bearer token, or:
  std::string user;      // username + password for POST /auth/token
  std::string password;  // (read from CHAT4ALL_PASSWORD or stdin when empty)
  std::optional<long long> chunk_size;
  std::string mime_type = "application/octet-stream";
  long long max_rate = 0;  // bytes per second, 0 = unlimited
};

// Returns the process exit code: 0 COMPLETED, 1 failed (message on stderr).
int upload_file(upload_options o);

}  // namespace chat4all::app
