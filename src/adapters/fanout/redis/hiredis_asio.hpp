#pragma once
// A hiredis event adapter for Boost.Asio (hiredis 0.14 ships none): hiredis asks for read and
// write readiness through its addRead/delRead/addWrite/delWrite/cleanup hooks; each is
// turned into an async_wait on a posix::stream_descriptor that wraps a dup() of the
// context's socket, so that closing the descriptor never closes hiredis' own fd.
//
// Threading: the context must only be used on the thread running `io` (hiredis contexts are
// not thread-safe); the readiness handlers call redisAsyncHandleRead/Write there.
// Lifetime: the adapter frees itself when hiredis calls `cleanup` (redisAsyncFree, a
// disconnect, a failed connect) or, for waits still pending then, when their handlers have
// run or the io_context is destroyed.

#include <boost/asio/io_context.hpp>

struct redisAsyncContext;

namespace chat4all::fanout_redis {

// Attaches `ac` (connect callback not yet set) to `io`. Returns false when the socket
// cannot be duplicated or registered (the caller frees the context and retries later).
bool attach_to_asio(redisAsyncContext* ac, boost::asio::io_context& io);

}  // namespace chat4all::fanout_redis
