// fixed_buffers.cpp - the runtime's registered buffer set
// (weft/detail/fixed_buffers.hpp). Registration itself happens in
// Worker::setup_ring (reactor.cpp), on each worker's own thread.
#include <cstdlib>
#include <new>
#include <string>
#include <weft/detail/fixed_buffers.hpp>
#include <weft/errors.hpp>

#include "worker.hpp"

namespace weft::detail {

namespace {
// The kernel's limits (io_uring/rsrc.c): IORING_MAX_REG_BUFFERS entries of
// at most 1 GiB each.
constexpr unsigned kMaxFixedBuffers = 1u << 14;
constexpr std::size_t kMaxFixedBufferSize = std::size_t{1} << 30;
// Every buffer starts on a page: O_DIRECT wants block-aligned memory.
constexpr std::size_t kFixedBufferAlign = 4096;
}  // namespace

FixedBufferSet* FixedBufferSet::create(unsigned count, std::size_t size) {
  if (count > kMaxFixedBuffers)
    throw ValueError(
        "weft::RuntimeOptions::fixed_buffers must be at most 16384 (the kernel's "
        "limit), not " +
        std::to_string(count));
  if (size == 0 || size > kMaxFixedBufferSize)
    throw ValueError("weft::RuntimeOptions::fixed_buffer_size must be in 1..1073741824, not " +
                     std::to_string(size));
  const std::size_t stride = (size + kFixedBufferAlign - 1) / kFixedBufferAlign * kFixedBufferAlign;
  auto* s = new FixedBufferSet();
  s->mem_ = std::aligned_alloc(kFixedBufferAlign, stride * count);
  if (s->mem_ == nullptr) {
    delete s;
    throw std::bad_alloc();
  }
  s->size_ = size;
  s->iovs_.resize(count);
  s->free_.reserve(count);
  auto* base = static_cast<char*>(s->mem_);
  for (unsigned i = 0; i < count; ++i) {
    s->iovs_[i].iov_base = base + stride * i;
    s->iovs_[i].iov_len = size;
  }
  // Handed out lowest index first.
  for (unsigned i = count; i-- > 0;) s->free_.push_back(i);
  return s;
}

void FixedBufferSet::destroy() noexcept {
  std::free(mem_);
  delete this;
}

bool FixedBufferSet::try_acquire(unsigned* index) {
  std::lock_guard<std::mutex> g(mu_);
  if (free_.empty()) return false;
  *index = free_.back();
  free_.pop_back();
  return true;
}

void FixedBufferSet::release(unsigned index) noexcept {
  std::lock_guard<std::mutex> g(mu_);
  free_.push_back(index);  // reserved for every index at creation: no allocation
}

std::size_t FixedBufferSet::available() const {
  std::lock_guard<std::mutex> g(mu_);
  return free_.size();
}

FixedBufferSet* current_fixed_buffers(const char* what) {
  Worker* w = Worker::current();
  if (w == nullptr) throw_no_task(what);
  return w->rt().fixed_buffers;
}

}  // namespace weft::detail
