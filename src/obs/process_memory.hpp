#pragma once
// The process's memory, as an operator (and the slow-reader test) wants to see it.
//
// Two figures, because they answer different questions:
// * resident: pages the kernel has given the process (VmRSS). The allocator keeps freed
//   memory mapped, so this is a high-water mark: it rises with fragmentation and rarely falls.
// * heap in use: bytes the allocator has handed out and not had back (glibc mallinfo2: arena
//   chunks in use plus mmapped chunks; under AddressSanitizer, its own allocator's count).
//   This is what the server holds right now, so it is the figure that shows whether a queue
//   or a cache stays within its bound.

#include <cstdint>

namespace chat4all::obs {

class metrics_registry;

struct process_memory {
  std::uint64_t resident_bytes = 0;     // 0 when /proc/self/statm cannot be read
  std::uint64_t heap_in_use_bytes = 0;  // 0 when the allocator cannot tell
};

process_memory read_process_memory();

// Sets the gauges process_resident_memory_bytes and chat4all_heap_in_use_bytes (registering
// them on first use). Called by GET /metrics before rendering. mallinfo2 walks the free lists
// of every arena, each under its lock: it belongs on a scrape, never on a hot path.
void update_process_memory_metrics(metrics_registry& m);

}  // namespace chat4all::obs
