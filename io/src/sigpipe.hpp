// sigpipe.hpp - a worker that writes to a pipe blocks SIGPIPE in its own
// thread first: a ring write to a pipe whose reader has gone raises SIGPIPE
// in the submitting thread, and its default action ends the process. With it
// blocked the write fails with EPIPE (BrokenPipeError) instead. (Sockets use
// send with MSG_NOSIGNAL and need none of this.) See weft/io/process.hpp.
#pragma once

#include <signal.h>

namespace weft::io::detail {

/// Blocks SIGPIPE in the calling thread, once per thread. Never throws.
inline void block_sigpipe_here() noexcept {
  thread_local bool blocked = false;
  if (blocked) return;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
  blocked = true;
}

}  // namespace weft::io::detail
