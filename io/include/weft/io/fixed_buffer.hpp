// weft/io/fixed_buffer.hpp - FixedBuffer: one of the runtime's registered
// ("fixed") buffers, checked out of the runtime's pool, for
// File::read_fixed_at / write_fixed_at (IORING_OP_READ_FIXED / WRITE_FIXED).
//
//   weft::RuntimeOptions o;
//   o.fixed_buffers = 64;            // registered on every worker's ring
//   o.fixed_buffer_size = 4096;
//   ... in a task:
//   auto buf = weft::io::FixedBuffer::try_acquire();   // std::nullopt: all in use
//   std::size_t n = co_await file.read_fixed_at(*buf, offset);
//   co_await file.write_fixed_at(buf->first(n), buf->index(), 0);
//
// This is tokio-uring's FixedBufPool: a pool registered once, buffers checked
// out and given back (here by the destructor). A registered buffer spares
// the kernel pinning and mapping the user pages on every operation; what
// that is worth is measured in bench/weft_file_read.cpp (--fixed-buffers).
// The pool is the runtime's, the same table on every worker's ring (see
// weft/detail/fixed_buffers.hpp), so a task may move between workers while
// it holds a buffer.
//
// A FixedBuffer owns its checkout and keeps the pool's memory alive (so it
// may outlive the runtime, as plain memory). Move-only. Like any buffer, it
// must stay alive until the operation using it completes; the operation's
// co_await returns only after the kernel is done with it.
//
// Threads: try_acquire and available must be called on a worker thread of
// the runtime (inside a task, usually); the destructor (giving the buffer
// back) may run on any thread. One FixedBuffer is not synchronised.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <utility>
#include <weft/detail/fixed_buffers.hpp>
#include <weft/io/buffer.hpp>

namespace weft::io {

class FixedBuffer {
 public:
  /// Checks a free buffer out of the calling worker's runtime's pool;
  /// std::nullopt if every buffer is checked out. Throws ValueError if the
  /// runtime has no registered buffers (RuntimeOptions::fixed_buffers is 0),
  /// RuntimeError outside a worker thread of a runtime.
  static std::optional<FixedBuffer> try_acquire();
  /// Buffers of the calling worker's runtime not checked out (0 if it has
  /// none). RuntimeError outside a worker thread.
  static std::size_t available();

  FixedBuffer(FixedBuffer&& o) noexcept
      : set_(std::exchange(o.set_, nullptr)), data_(o.data_), size_(o.size_), index_(o.index_) {}
  FixedBuffer& operator=(FixedBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      set_ = std::exchange(o.set_, nullptr);
      data_ = o.data_;
      size_ = o.size_;
      index_ = o.index_;
    }
    return *this;
  }
  FixedBuffer(const FixedBuffer&) = delete;
  FixedBuffer& operator=(const FixedBuffer&) = delete;
  ~FixedBuffer() { reset(); }

  /// The buffer's bytes (RuntimeOptions::fixed_buffer_size of them).
  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  /// Its index in the rings' registered-buffer tables (the buf_index of
  /// read_fixed_at / write_fixed_at's explicit form).
  unsigned index() const noexcept { return index_; }
  std::span<std::byte> span() const noexcept { return {data_, size_}; }
  /// The whole buffer, or its first `n` bytes (ValueError if n > size()).
  operator MutableBuffer() const noexcept { return {data_, size_}; }
  MutableBuffer first(std::size_t n) const;
  /// False after a move from it.
  bool valid() const noexcept { return set_ != nullptr; }

 private:
  FixedBuffer(::weft::detail::FixedBufferSet* set, unsigned index) noexcept;
  void reset() noexcept;

  ::weft::detail::FixedBufferSet* set_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  unsigned index_ = 0;
};

}  // namespace weft::io
