// weft/io/buffer.hpp - the buffer and timeout arguments every operation takes.
//
// MutableBuffer / ConstBuffer are a pointer and a size, convertible from the
// usual contiguous containers. They do not own memory: the bytes must stay
// valid until the operation's co_await returns (DESIGN.md §4: the kernel may
// write into them until the CQE, and an operation is never abandoned before
// its CQE, not even by a cancel, so "until the co_await returns" is enough).
// Both are trivially copyable on purpose: they are safe to pass as arguments
// of coroutines inside a co_await expression (the g++ 12 pitfall in README).
//
// OpTimeout is an optional relative duration: `co_await s.recv(buf, 2s)`
// (not named Timeout: weft::Timeout is the timeout scope of timeout.hpp).
// std::nullopt (the default) means no timeout. A negative duration is a
// ValueError; zero expires as soon as the kernel looks at it.
//
// Threads: plain values.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace weft::io {

using OpTimeout = std::optional<std::chrono::nanoseconds>;

/// Writable bytes: where a read puts what it got.
struct MutableBuffer {
  void* data = nullptr;
  std::size_t size = 0;

  MutableBuffer() = default;
  MutableBuffer(void* d, std::size_t n) noexcept : data(d), size(n) {}
  MutableBuffer(std::span<std::byte> s) noexcept : data(s.data()), size(s.size()) {}
  MutableBuffer(std::span<char> s) noexcept : data(s.data()), size(s.size()) {}
  MutableBuffer(std::span<unsigned char> s) noexcept : data(s.data()), size(s.size()) {}
  MutableBuffer(std::string& s) noexcept : data(s.data()), size(s.size()) {}
  template <class T>
  requires(sizeof(T) == 1) MutableBuffer(std::vector<T>& v)
  noexcept : data(v.data()), size(v.size()) {}
  template <class T, std::size_t N>
  requires(sizeof(T) == 1) MutableBuffer(T (&a)[N])
  noexcept : data(a), size(N) {}
  /// The bytes from `n` on (n clamped to size).
  MutableBuffer operator+(std::size_t n) const noexcept {
    n = n < size ? n : size;
    return {static_cast<char*>(data) + n, size - n};
  }
};

/// Readable bytes: what a write sends.
struct ConstBuffer {
  const void* data = nullptr;
  std::size_t size = 0;

  ConstBuffer() = default;
  ConstBuffer(const void* d, std::size_t n) noexcept : data(d), size(n) {}
  ConstBuffer(MutableBuffer b) noexcept : data(b.data), size(b.size) {}
  ConstBuffer(std::span<const std::byte> s) noexcept : data(s.data()), size(s.size()) {}
  ConstBuffer(std::span<const char> s) noexcept : data(s.data()), size(s.size()) {}
  ConstBuffer(std::span<const unsigned char> s) noexcept : data(s.data()), size(s.size()) {}
  ConstBuffer(std::string_view s) noexcept : data(s.data()), size(s.size()) {}
  ConstBuffer(const std::string& s) noexcept : data(s.data()), size(s.size()) {}
  ConstBuffer(const char* s) noexcept : ConstBuffer(std::string_view(s)) {}
  template <class T>
  requires(sizeof(T) == 1) ConstBuffer(const std::vector<T>& v)
  noexcept : data(v.data()), size(v.size()) {}
  /// The bytes from `n` on (n clamped to size).
  ConstBuffer operator+(std::size_t n) const noexcept {
    n = n < size ? n : size;
    return {static_cast<const char*>(data) + n, size - n};
  }
};

}  // namespace weft::io
