// weft/detail/fixed_buffers.hpp - the runtime's registered ("fixed") buffer
// set, as the I/O component sees it. Not an API of its own: users go through
// weft::io::FixedBuffer (weft/io/fixed_buffer.hpp) and RuntimeOptions::
// fixed_buffers.
//
// # Why one set for the whole runtime
// A registered buffer is named in an SQE by its index in the ring's table.
// weft moves tasks between workers (work stealing), and an operation goes to
// the ring of the worker that runs the task when it is awaited, so an index a
// task holds must mean the same memory on every ring. The set is therefore
// one block of memory that every worker registers on its own ring at start
// (registration must come from the ring's thread: the rings are
// IORING_SETUP_SINGLE_ISSUER), with the same iovec table. (tokio-uring's
// FixedBufRegistry is per ring because its runtime is one thread.)
//
// # Lifetime
// The set is reference-counted: the runtime holds one reference and every
// checked-out buffer one more, so the memory outlives a buffer kept past the
// runtime's end (the rings, and with them the registration, are gone by
// then; the memory is just memory).
//
// # Threads
// The free list is guarded by a std::mutex (checking a buffer out or in is
// not on a hot path: a program checks its buffers out once and reuses them,
// as bench/weft_file_read.cpp does). acquire/release/add_ref/release_ref may
// be called from any thread; the iovec table is immutable after creation.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace weft::detail {

class FixedBufferSet {
 public:
  /// `count` buffers of `size` bytes, each starting on a 4 KiB boundary.
  /// Throws ValueError for count > 16384, size 0 or size > 1 GiB (the
  /// kernel's limits), std::bad_alloc.
  static FixedBufferSet* create(unsigned count, std::size_t size);

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  /// Frees the set with its last reference (acq_rel: every use of the
  /// memory by the releasing thread happens before the free).
  void release_ref() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
  }

  /// Takes a free buffer's index; false if all are checked out.
  bool try_acquire(unsigned* index);
  /// Puts buffer `index` back. Any thread.
  void release(unsigned index) noexcept;
  /// Buffers not checked out (a snapshot).
  std::size_t available() const;

  unsigned count() const noexcept { return static_cast<unsigned>(iovs_.size()); }
  std::size_t buffer_size() const noexcept { return size_; }
  const iovec* iovecs() const noexcept { return iovs_.data(); }
  const iovec& at(unsigned index) const noexcept { return iovs_[index]; }

 private:
  FixedBufferSet() = default;
  void destroy() noexcept;

  void* mem_ = nullptr;
  std::size_t size_ = 0;
  std::vector<iovec> iovs_;
  mutable std::mutex mu_;
  std::vector<unsigned> free_;  // guarded by mu_
  std::atomic<std::uint32_t> refs_{1};
};

/// The set of the runtime whose worker calls, or null if that runtime has
/// none (RuntimeOptions::fixed_buffers == 0). Throws RuntimeError("weft::
/// <what>: not inside a weft task") on a thread that is not a worker.
FixedBufferSet* current_fixed_buffers(const char* what);

}  // namespace weft::detail
