// frame_alloc.cpp - the per-thread size-class recycler for coroutine frames.
// See weft/detail/frame_alloc.hpp for the contract and the cap.
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <weft/detail/frame_alloc.hpp>

namespace weft::detail {

namespace {
std::atomic<std::uint64_t> g_released{0};    // bytes freed to malloc, all threads
std::atomic<std::uint64_t> g_trimmed_at{0};  // g_released at the last trim
std::atomic<std::uint64_t> g_threshold{std::uint64_t{32} << 20};
std::atomic<bool> g_trimming{false};
thread_local constinit std::uint64_t t_released = 0;
thread_local constinit bool t_is_worker = false;
constexpr std::uint64_t kReleaseFlush = 1 << 20;

void count_release(std::size_t n) noexcept {
  t_released += n;
  if (t_released >= kReleaseFlush) {
    g_released.fetch_add(t_released, std::memory_order_relaxed);
    t_released = 0;
    if (!t_is_worker) trim_if_due();
  }
}
}  // namespace

void set_trim_threshold(std::size_t threshold) noexcept {
  g_threshold.store(threshold, std::memory_order_relaxed);
}

void mark_worker_thread() noexcept { t_is_worker = true; }

bool trim_due() noexcept {
  std::uint64_t threshold = g_threshold.load(std::memory_order_relaxed);
  if (threshold == 0) return false;
  return g_released.load(std::memory_order_relaxed) -
             g_trimmed_at.load(std::memory_order_relaxed) >=
         threshold;
}

void trim_if_due() noexcept {
  if (!trim_due()) return;
  std::uint64_t released = g_released.load(std::memory_order_relaxed);
  if (g_trimming.exchange(true, std::memory_order_acquire)) return;  // another thread does it
  g_trimmed_at.store(released, std::memory_order_relaxed);
  malloc_trim(0);
  g_trimming.store(false, std::memory_order_release);
}

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_FRAME_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_FRAME_CACHE 0
#endif
#endif
#ifndef WEFT_FRAME_CACHE
#define WEFT_FRAME_CACHE 1
#endif

#if WEFT_FRAME_CACHE
namespace {

constexpr std::size_t kClasses = kMaxCachedFrame / kFrameClassBytes;

struct FreeFrame {
  FreeFrame* next;
};

struct FrameCache;
extern thread_local constinit bool t_cache_dead;
struct FrameCache {
  FreeFrame* heads[kClasses] = {};
  std::uint32_t counts[kClasses] = {};
  ~FrameCache() {
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (heads[c]) {
        FreeFrame* f = heads[c];
        heads[c] = f->next;
        std::free(f);
      }
    }
    t_cache_dead = true;  // frames freed later in thread exit go to free()
  }
};

thread_local constinit bool t_cache_dead = false;
thread_local FrameCache t_cache;

std::size_t class_of(std::size_t n) noexcept {
  return (n + kFrameClassBytes - 1) / kFrameClassBytes - 1;
}

}  // namespace

void* frame_alloc(std::size_t n) {
  if (n <= kMaxCachedFrame && !t_cache_dead) {
    std::size_t c = class_of(n);
    FrameCache& cache = t_cache;
    if (FreeFrame* f = cache.heads[c]) {
      cache.heads[c] = f->next;
      --cache.counts[c];
      return f;
    }
    n = (c + 1) * kFrameClassBytes;
  }
  void* p = std::malloc(n);
  if (!p) throw std::bad_alloc();
  return p;
}

void frame_free(void* p, std::size_t n) noexcept {
  if (n <= kMaxCachedFrame && !t_cache_dead) {
    std::size_t c = class_of(n);
    FrameCache& cache = t_cache;
    if (cache.counts[c] * (c + 1) * kFrameClassBytes < kFrameCacheBytesPerClass) {
      auto* f = static_cast<FreeFrame*>(p);
      f->next = cache.heads[c];
      cache.heads[c] = f;
      ++cache.counts[c];
      return;
    }
  }
  count_release(n);
  std::free(p);
}

#else

void* frame_alloc(std::size_t n) {
  void* p = std::malloc(n);
  if (!p) throw std::bad_alloc();
  return p;
}
void frame_free(void* p, std::size_t n) noexcept {
  count_release(n);
  std::free(p);
}

#endif

}  // namespace weft::detail
