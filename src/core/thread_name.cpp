#include "core/thread_name.hpp"

#include <pthread.h>

namespace chat4all {

void name_this_thread(std::string_view name) noexcept {
  char buf[16];
  const auto n = name.copy(buf, sizeof buf - 1);
  buf[n] = '\0';
  pthread_setname_np(pthread_self(), buf);
}

}  // namespace chat4all
