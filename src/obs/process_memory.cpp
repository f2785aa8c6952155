#include "obs/process_memory.hpp"

#include <malloc.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>

#include "obs/metrics.hpp"

#if defined(__SANITIZE_ADDRESS__)
// From the sanitizer runtime (declared here: Debian's gcc does not install its header).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace chat4all::obs {

process_memory read_process_memory() {
  process_memory m;
  // statm: size resident shared text lib data dt, in pages.
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long long size = 0, resident = 0;
    if (std::fscanf(f, "%llu %llu", &size, &resident) == 2)
      m.resident_bytes = resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    std::fclose(f);
  }
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer replaces the allocator (mallinfo2 reports zeros under it).
  m.heap_in_use_bytes = __sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 mi = ::mallinfo2();
  m.heap_in_use_bytes = mi.uordblks + mi.hblkhd;
#endif
  return m;
}

void update_process_memory_metrics(metrics_registry& reg) {
  static constexpr const char* rss_help =
      "Resident memory of the process (VmRSS): a high-water mark, the allocator keeps freed "
      "pages";
  static constexpr const char* heap_help =
      "Bytes the allocator has handed out and not had back (glibc mallinfo2 uordblks + hblkhd)";
  const auto m = read_process_memory();
  reg.gauge("process_resident_memory_bytes", rss_help).set(static_cast<double>(m.resident_bytes));
  reg.gauge("chat4all_heap_in_use_bytes", heap_help).set(static_cast<double>(m.heap_in_use_bytes));
}

}  // namespace chat4all::obs
