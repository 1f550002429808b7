// fixed_buffer.cpp - FixedBuffer (weft/io/fixed_buffer.hpp) and the check
// every registered-buffer operation makes before it is built.
#include <cstdint>
#include <cstdio>
#include <string>
#include <weft/errors.hpp>
#include <weft/io/fixed_buffer.hpp>

namespace weft::io {

FixedBuffer::FixedBuffer(::weft::detail::FixedBufferSet* set, unsigned index) noexcept
    : set_(set),
      data_(static_cast<std::byte*>(set->at(index).iov_base)),
      size_(set->at(index).iov_len),
      index_(index) {}

void FixedBuffer::reset() noexcept {
  if (set_ == nullptr) return;
  set_->release(index_);
  std::exchange(set_, nullptr)->release_ref();
}

std::optional<FixedBuffer> FixedBuffer::try_acquire() {
  auto* set = ::weft::detail::current_fixed_buffers("io::FixedBuffer::try_acquire");
  if (set == nullptr)
    throw ValueError(
        "weft::io::FixedBuffer::try_acquire: this runtime has no registered buffers (set "
        "RuntimeOptions::fixed_buffers)");
  unsigned index = 0;
  if (!set->try_acquire(&index)) return std::nullopt;
  set->add_ref();
  return FixedBuffer(set, index);
}

std::size_t FixedBuffer::available() {
  auto* set = ::weft::detail::current_fixed_buffers("io::FixedBuffer::available");
  return set == nullptr ? 0 : set->available();
}

MutableBuffer FixedBuffer::first(std::size_t n) const {
  if (n > size_)
    throw ValueError("weft::io::FixedBuffer::first: " + std::to_string(n) +
                     " bytes asked of a buffer of " + std::to_string(size_));
  return {data_, n};
}

namespace detail {

void check_fixed(const void* data, std::size_t size, unsigned index, const char* op) {
  auto* set = ::weft::detail::current_fixed_buffers(op);
  const std::string who = std::string("weft::io::File::") + op + ": ";
  if (set == nullptr)
    throw ValueError(who +
                     "this runtime has no registered buffers (set RuntimeOptions::fixed_buffers)");
  if (index >= set->count())
    throw ValueError(who + "buffer index " + std::to_string(index) +
                     " out of range (the runtime registered " + std::to_string(set->count()) +
                     " buffers)");
  const iovec& v = set->at(index);
  const auto start = reinterpret_cast<std::uintptr_t>(v.iov_base);
  const auto p = reinterpret_cast<std::uintptr_t>(data);
  if (p < start || p >= start + v.iov_len) {
    char where[32];
    std::snprintf(where, sizeof where, "%p", data);
    throw ValueError(who + "the memory at " + where + " is not inside registered buffer " +
                     std::to_string(index));
  }
  const std::size_t room = start + v.iov_len - p;
  if (size > room)
    throw ValueError(who + "length " + std::to_string(size) + " too large: registered buffer " +
                     std::to_string(index) + " has " + std::to_string(room) +
                     " bytes from that address (" + std::to_string(v.iov_len) + " in all)");
}

}  // namespace detail

}  // namespace weft::io
