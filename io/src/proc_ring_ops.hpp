// proc_ring_ops.hpp - the few ring operations signals and subprocesses need:
// read, write and poll on a descriptor, as weft::detail::IoOp preps.
//
// Private to io/src/signal.cpp and io/src/process.cpp. They are a stop-gap:
// when the shared operations layer of weft::io (files, sockets, streams)
// is merged, these preps are to be replaced by its read/write/poll so that
// one set of ops carries names, timeouts and error mapping for everything.
//
// Every helper is a coroutine that keeps its IoOp in a named local (never a
// temporary of the co_await expression: see the g++ 12 note in README.md) and
// turns a negative result into std::system_error naming the operation.
// CancelledError passes through unchanged; a result the kernel produced
// before a cancel is kept (IoOp's protocol, DESIGN.md §4).
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <system_error>
#include <weft/io_op.hpp>
#include <weft/task.hpp>

namespace weft::io::detail {

struct ReadPrep {
  int fd;
  void* buf;
  unsigned len;
  void operator()(io_uring_sqe* sqe) const noexcept {
    // Offset -1: the file's own position; pipes and signalfds ignore it.
    io_uring_prep_read(sqe, fd, buf, len, static_cast<std::uint64_t>(-1));
  }
};

struct WritePrep {
  int fd;
  const void* buf;
  unsigned len;
  void operator()(io_uring_sqe* sqe) const noexcept {
    io_uring_prep_write(sqe, fd, buf, len, static_cast<std::uint64_t>(-1));
  }
};

struct PollPrep {
  int fd;
  unsigned mask;
  void operator()(io_uring_sqe* sqe) const noexcept { io_uring_prep_poll_add(sqe, fd, mask); }
};

/// Awaits `op`; a negative result becomes std::system_error(-res, what).
/// Returns the (non-negative) result. Throws CancelledError when cancelled.
template <class Prep>
Task<int> ring_call(Prep prep, const char* what) {
  weft::detail::IoOp<Prep> op(prep);
  try {
    co_return co_await op;
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), what);
  }
}

}  // namespace weft::io::detail
