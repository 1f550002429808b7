// frame_alloc.cpp - the per-thread size-class recycler for coroutine frames.
// See weft/detail/frame_alloc.hpp for the contract and the cap.
#include <malloc.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <weft/detail/frame_alloc.hpp>

namespace weft::detail {

namespace {
// # When memory goes back (see frame_alloc.hpp)
// g_released counts the bytes of frames and future states handed back to
// malloc, by all threads (each thread adds its share every kReleaseFlush
// bytes). A trim is "due" once `threshold` bytes went back since the last
// one; a non-worker thread then trims inline, in the middle of its burst of
// frees, so that a burst of any size holds at most `threshold` untrimmed.
//
// The tail of a burst: once threshold/kBurstArmDivisor bytes went back since
// the last trim, g_burst is armed, and it stays armed until an idle worker has
// trimmed after the frees stopped: a worker that parks while it is armed
// parks for kTrimAfterIdleNs at most, and trims if nothing was released (and
// nothing woke it) meanwhile; otherwise it parks again. A burst freed by a
// thread outside the runtime (a main thread dropping a million handles) would
// find every worker parked with no timeout, so arming from such a thread calls
// the wake hook of the most recently started runtime, which unparks a worker
// to watch for the end of the burst. Arming happens once per trim cycle, so
// the hook (and its mutex) is off the hot path.
std::atomic<std::uint64_t> g_released{0};    // bytes freed to malloc, all threads
std::atomic<std::uint64_t> g_trimmed_at{0};  // g_released at the last trim
std::atomic<std::uint64_t> g_threshold{std::uint64_t{32} << 20};
std::atomic<bool> g_trimming{false};
std::atomic<bool> g_burst{false};
std::atomic<std::uint64_t> g_trims{0};
thread_local constinit std::uint64_t t_released = 0;
thread_local constinit bool t_is_worker = false;
// Small enough that the unflushed rest of a thread's burst is noise next to
// the frame cache cap; large enough that the shared counter is touched once
// per ~1000 frees.
constexpr std::uint64_t kReleaseFlush = 256 << 10;
// A burst is armed at 1/32 of the trim threshold (1 MiB by default): smaller
// releases (steady churn past the caches) never cause a trim. Measured on
// spawn_idle under load: at 1/8 (4 MiB), a freeing thread descheduled for the
// idle period let a worker trim mid-burst, and the rest of the burst (under
// 4 MiB released, but scattered over 14 MB of pages) was never trimmed.
constexpr std::uint64_t kBurstArmDivisor = 32;

std::mutex g_hook_mu;
void (*g_hook)(void*) = nullptr;
void* g_hook_arg = nullptr;

void call_wake_hook() noexcept {
  std::lock_guard<std::mutex> g(g_hook_mu);
  if (g_hook != nullptr) g_hook(g_hook_arg);
}

// Arms g_burst if enough went back since the last trim; true if this call
// armed it.
bool maybe_arm_burst() noexcept {
  std::uint64_t threshold = g_threshold.load(std::memory_order_relaxed);
  if (threshold == 0) return false;
  std::uint64_t since =
      g_released.load(std::memory_order_relaxed) - g_trimmed_at.load(std::memory_order_relaxed);
  if (since < threshold / kBurstArmDivisor) return false;
  if (g_burst.load(std::memory_order_relaxed)) return false;
  return !g_burst.exchange(true, std::memory_order_relaxed);
}

void flush_released() noexcept {
  if (t_released == 0) return;
  g_released.fetch_add(t_released, std::memory_order_relaxed);
  t_released = 0;
  const bool armed = maybe_arm_burst();
  if (!t_is_worker) {
    if (armed) call_wake_hook();
    trim_if_due();
  }
}

void count_release(std::size_t n) noexcept {
  t_released += n;
  if (t_released >= kReleaseFlush) flush_released();
}

void trim_now(std::uint64_t released) noexcept;
}  // namespace

void drain_depot_for_trim() noexcept;

void set_trim_threshold(std::size_t threshold) noexcept {
  g_threshold.store(threshold, std::memory_order_relaxed);
}

void set_trim_wake_hook(void (*hook)(void*), void* arg) noexcept {
  std::lock_guard<std::mutex> g(g_hook_mu);
  g_hook = hook;
  g_hook_arg = arg;
}

void clear_trim_wake_hook(void* arg) noexcept {
  std::lock_guard<std::mutex> g(g_hook_mu);
  if (g_hook_arg != arg) return;  // a later runtime registered since
  g_hook = nullptr;
  g_hook_arg = nullptr;
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
  trim_now(g_released.load(std::memory_order_relaxed));
}

std::uint64_t idle_trim_mark() noexcept {
  flush_released();  // a worker's own unflushed frees count too
  if (!g_burst.load(std::memory_order_relaxed) && !trim_due()) return 0;
  return g_released.load(std::memory_order_relaxed) + 1;
}

void idle_trim(std::uint64_t mark) noexcept {
  if (mark == 0) return;
  flush_released();
  std::uint64_t released = g_released.load(std::memory_order_relaxed);
  if (released + 1 != mark) return;  // still freeing: not the end of the burst yet
  // Disarm first: frees that race with the trim re-arm it (once past the
  // arming level), so their tail is trimmed by a later idle period.
  g_burst.store(false, std::memory_order_relaxed);
  trim_now(released);
}

namespace {
void trim_now(std::uint64_t released) noexcept {
  if (g_trimming.exchange(true, std::memory_order_acquire)) return;  // another thread does it
  g_trimmed_at.store(released, std::memory_order_relaxed);
  drain_depot_for_trim();
  malloc_trim(0);
  g_trims.fetch_add(1, std::memory_order_relaxed);
  g_trimming.store(false, std::memory_order_release);
}
}  // namespace

std::uint64_t trim_count() noexcept { return g_trims.load(std::memory_order_relaxed); }

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

namespace {
void* malloc_or_throw(std::size_t n) {
  void* p = std::malloc(n);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

#if WEFT_FRAME_CACHE
namespace {

constexpr std::size_t kClasses = kMaxCachedFrame / kFrameClassBytes;

struct FreeFrame {
  FreeFrame* next;
};

// # The depot
// A thread whose cache for a size class is full moves kBatch frames to a
// process-wide depot instead of free()ing them; a thread whose cache is empty
// takes a batch from there before it calls malloc. Without it a producer
// thread (a task spawning a burst, a foreign thread spawning) mallocs every
// frame while the consumer worker, whose cache overflows, frees every frame
// into another thread's glibc arena. One lock per batch of 32 frames; the
// depot holds at most kDepotBytes, and trim_if_due empties it before it asks
// glibc to give memory back.
constexpr std::uint32_t kBatch = 32;
// The smallest class: room for a BatchHead (16 bytes), 8 mod 16 (see
// class_bytes).
constexpr std::size_t kClassBase = 24;
constexpr std::size_t kDepotBytes = std::size_t{8} << 20;

struct BatchHead : FreeFrame {  // the first frame of a batch (every class >= 16 bytes)
  BatchHead* next_batch;
};

struct alignas(64) Depot {
  std::mutex mu;
  BatchHead* batches = nullptr;
  std::atomic<std::uint32_t> count{0};
};

Depot g_depots[kMaxCachedFrame / kFrameClassBytes];
std::atomic<std::size_t> g_depot_bytes{0};

// Class c holds frames of up to 24 + 16c bytes. glibc's chunk for malloc(n)
// is n + 8 rounded up to 16, so sizes of 8 mod 16 fill their chunk exactly: a
// 152-byte frame costs a 160-byte chunk, where a class of 160 would cost 176.
// (Every chunk is 16-aligned whatever its size, as coroutine frames need.)
constexpr std::size_t class_bytes(std::size_t c) noexcept {
  return kClassBase + c * kFrameClassBytes;
}
static_assert((kMaxCachedFrame - kClassBase + kFrameClassBytes - 1) / kFrameClassBytes < kClasses,
              "the largest cached frame needs a class");

void free_chain(FreeFrame* f, std::size_t bytes_each, bool count) noexcept {
  while (f) {
    FreeFrame* next = f->next;
    if (count) count_release(bytes_each);
    std::free(f);
    f = next;
  }
}

// Takes ownership of a chain of kBatch frames of class c; false if full.
bool depot_put(std::size_t c, FreeFrame* chain) noexcept {
  const std::size_t bytes = kBatch * class_bytes(c);
  if (g_depot_bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes > kDepotBytes) {
    g_depot_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    return false;
  }
  Depot& d = g_depots[c];
  auto* b = static_cast<BatchHead*>(chain);
  std::lock_guard<std::mutex> g(d.mu);
  b->next_batch = d.batches;
  d.batches = b;
  d.count.fetch_add(1, std::memory_order_relaxed);
  return true;
}

// A chain of kBatch frames of class c, or null.
FreeFrame* depot_take(std::size_t c) noexcept {
  Depot& d = g_depots[c];
  if (d.count.load(std::memory_order_relaxed) == 0) return nullptr;
  BatchHead* b;
  {
    std::lock_guard<std::mutex> g(d.mu);
    b = d.batches;
    if (b == nullptr) return nullptr;
    d.batches = b->next_batch;
    d.count.fetch_sub(1, std::memory_order_relaxed);
  }
  g_depot_bytes.fetch_sub(kBatch * class_bytes(c), std::memory_order_relaxed);
  return b;
}

void depot_drain() noexcept {
  for (std::size_t c = 0; c < kMaxCachedFrame / kFrameClassBytes; ++c) {
    while (FreeFrame* chain = depot_take(c)) free_chain(chain, class_bytes(c), false);
  }
}

// # The per-thread cache
// A plain array of free lists per size class, constant-initialised and
// trivially destructible, so the hot paths reach it with one %fs-relative
// access and no "is it constructed yet" guard. What a thread still caches when
// it exits goes back to malloc through a separate thread_local (CacheReaper)
// whose destructor is registered the first time the thread puts a frame into
// its cache (arm_cache, on a slow path). The state byte says where the thread
// is in that life:
//   kUnarmed  nothing cached yet, no destructor registered;
//   kArmed    the reaper will drain the cache at thread exit;
//   kDead     the reaper ran: frames freed later in the thread's exit go
//             straight to free(), and the cache stays empty.
struct FrameCache {
  FreeFrame* heads[kClasses];
  std::uint32_t counts[kClasses];
};
enum : std::uint8_t { kUnarmed = 0, kArmed = 1, kDead = 2 };
thread_local constinit FrameCache t_cache = {};
thread_local constinit std::uint8_t t_cache_state = kUnarmed;

struct CacheReaper {
  bool registered = false;
  ~CacheReaper() {
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeFrame* f = t_cache.heads[c]) {
        t_cache.heads[c] = f->next;
        std::free(f);
      }
      t_cache.counts[c] = 0;
    }
    t_cache_state = kDead;
  }
};
thread_local CacheReaper t_reaper;

// First use of the cache on this thread: registers the reaper (constructing
// a thread_local with a destructor registers it with the C++ runtime).
[[gnu::noinline]] void arm_cache() noexcept {
  t_reaper.registered = true;
  t_cache_state = kArmed;
}

std::size_t class_of(std::size_t n) noexcept {
  return n <= kClassBase ? 0 : (n - kClassBase + kFrameClassBytes - 1) / kFrameClassBytes;
}

// How many frames of class c a thread caches at most: kFrameCacheBytesPerClass
// worth, rounded up (a count reaching it sends a batch to the depot).
struct CacheCaps {
  std::uint32_t n[kClasses];
  constexpr CacheCaps() : n() {
    for (std::size_t c = 0; c < kClasses; ++c)
      n[c] = static_cast<std::uint32_t>((kFrameCacheBytesPerClass + class_bytes(c) - 1) /
                                        class_bytes(c));
  }
};
constexpr CacheCaps kCacheCaps;
static_assert(kCacheCaps.n[kClasses - 1] >= kBatch, "every class caches at least a batch");

// # Refills by idle workers
// A thread that spawns a burst of tasks (spawn_many's loop, a foreign thread
// spawning) takes every frame from malloc, and malloc takes fresh pages from
// the kernel: a page fault every 4 KiB, about 2 us on these machines, or half
// the spawning thread's time (PLATFORM.md). Meanwhile the other workers are
// mostly idle, stealing the burst's tasks. So a thread that finds the depot of
// a class low sets the class's bit in g_refill_wanted, and a worker with
// nothing to run (Worker::thread_main, before it spins or parks) mallocs
// batches of that class, touching every frame, and puts them in the depot
// until it holds kRefillBytes of the class. The pages are faulted on the idle
// core; the spawning thread takes them a batch at a time under the depot's
// lock. The depot's frames count towards its 8 MiB cap and are freed by every
// trim, so the refilled memory is bounded by kRefillBytes per class (at most
// the classes a burst used) and goes back like the rest.
std::atomic<std::uint64_t> g_refill_wanted{0};  // bit c: class c wants a refill
static_assert(kClasses <= 64, "one bit a class");
constexpr std::size_t kRefillBytes = std::size_t{128} << 10;

std::uint32_t refill_high(std::size_t c) noexcept {
  const std::size_t n = kRefillBytes / (kBatch * class_bytes(c));
  return n < 2 ? 2 : static_cast<std::uint32_t>(n);
}

// The calling thread found class c's cache empty: ask for a refill if the
// depot holds less than half its refill level.
void want_refill(std::size_t c) noexcept {
  if (g_depots[c].count.load(std::memory_order_relaxed) >= refill_high(c) / 2) return;
  const std::uint64_t bit = std::uint64_t{1} << c;
  if ((g_refill_wanted.load(std::memory_order_relaxed) & bit) == 0)
    g_refill_wanted.fetch_or(bit, std::memory_order_relaxed);
}

}  // namespace

namespace {
void push_cached(void* p, std::size_t c) noexcept {
  auto* f = static_cast<FreeFrame*>(p);
  f->next = t_cache.heads[c];
  t_cache.heads[c] = f;
  ++t_cache.counts[c];
}

// # Growing the heap in steps, and faulting it in by the block
// glibc grows the heap of a thread's own arena (every thread but the first
// allocates from one) only by the pages the request in hand needs: fresh
// frames cost one mprotect per 4 KiB, and each mprotect takes the process's
// mmap lock, which stalls the page faults of the other workers. Then every
// page faults on its first write, about 2-3 us each on these machines.
// spawn_many made 27,000 mprotect calls and 29,500 page faults per million
// tasks. So a thread that has taken kGrowEvery bytes of frames from malloc
// takes a block of kGrowProbe, asks the kernel to fault the block's pages in
// with one call (MADV_POPULATE_WRITE, Linux 5.14), and gives the block
// straight back. If the arena had no room left, that grows its heap by
// kGrowProbe in one mprotect, and the block, back at the top of the heap,
// serves the next frames with no system call and no fault: about 2,100
// mprotect and 2,100 madvise calls and 4,300 page faults per million spawns.
// Against growing alone (old and new binaries alternated, medians):
// spawn_many 0.84x the time and 0.78x the user CPU (21 runs), spawn_remote
// 0.80x and 0.66x (11 runs of a million).
//
// The block is under glibc's mmap threshold (128 KiB), so it comes from the
// heap. In a thread's own arena, returning it leaves the heap's top far under
// the size at which free() trims, so that makes no system call. The main
// thread's arena grows through brk with glibc's 128 KiB of padding, and
// there free() trims the top back to that padding: one brk call, which gives
// back untouched pages at the top's far end and keeps the populated block
// (spawn_remote with refills off: 29,500 -> 4,300 faults per million). What
// this makes resident ahead of use is one block per thread at most: the next
// frames that thread takes from malloc use it, and a trim gives it back like
// any free memory. Where the arena has room, the block comes from free
// memory, most likely resident already, and the madvise only walks its pages.
#if defined(__GLIBC__)
constexpr std::size_t kGrowEvery = std::size_t{48} << 10;
constexpr std::size_t kGrowProbe = std::size_t{60} << 10;
thread_local constinit std::size_t t_malloced_since_probe = 0;
// Cleared when the kernel refuses MADV_POPULATE_WRITE (before 5.14).
std::atomic<bool> g_populate{true};

void grow_and_populate() noexcept {
  void* block = std::malloc(kGrowProbe);
  if (block == nullptr) return;  // the frame's own malloc will report it
  if (g_populate.load(std::memory_order_relaxed)) {
    constexpr std::uintptr_t kPage = 4096;
    const auto at = reinterpret_cast<std::uintptr_t>(block);
    const std::uintptr_t first = (at + kPage - 1) & ~(kPage - 1);
    const std::uintptr_t end = (at + kGrowProbe) & ~(kPage - 1);
    if (::madvise(reinterpret_cast<void*>(first), end - first, MADV_POPULATE_WRITE) != 0 &&
        errno == EINVAL)
      g_populate.store(false, std::memory_order_relaxed);
  }
  // Keeps the compiler from folding the pair away when it sees no use.
  asm volatile("" : : "r"(block) : "memory");
  std::free(block);
}
#endif

// Call before taking `bytes` of frames from malloc: every kGrowEvery bytes,
// grows the heap and faults it in by a block (see above).
void before_frame_malloc(std::size_t bytes) noexcept {
#if defined(__GLIBC__)
  t_malloced_since_probe += bytes;
  if (t_malloced_since_probe >= kGrowEvery) [[unlikely]] {
    t_malloced_since_probe = 0;
    grow_and_populate();
  }
#else
  (void)bytes;
#endif
}

// Class c's cache is empty: a batch from the depot, else malloc.
[[gnu::noinline]] void* alloc_slow(std::size_t c) {
  if (t_cache_state != kDead) {
    FreeFrame* f = depot_take(c);
    want_refill(c);
    if (f != nullptr) {
      if (t_cache_state == kUnarmed) arm_cache();
      t_cache.heads[c] = f->next;
      t_cache.counts[c] = kBatch - 1;
      return f;
    }
  }
  before_frame_malloc(class_bytes(c));
  return malloc_or_throw(class_bytes(c));
}

// The cache cannot take p as it is: not armed yet, dead, or class c is full.
[[gnu::noinline]] void free_slow(void* p, std::size_t c, std::size_t n) noexcept {
  if (t_cache_state == kDead) {
    count_release(n);
    std::free(p);
    return;
  }
  if (t_cache_state == kUnarmed) arm_cache();
  if (t_cache.counts[c] >= kCacheCaps.n[c]) {
    // Full: hand the kBatch most recently freed frames to the depot (or,
    // if that is full too, back to malloc). The cap is at least kBatch
    // frames of every cached class, so there are enough.
    FreeFrame* chain = t_cache.heads[c];
    FreeFrame* last = chain;
    for (std::uint32_t i = 1; i < kBatch; ++i) last = last->next;
    t_cache.heads[c] = last->next;
    last->next = nullptr;
    t_cache.counts[c] -= kBatch;
    if (depot_put(c, chain)) {
      // Frames parked in the depot pin their pages like freed memory that
      // was not trimmed, and trimming empties the depot: they count as
      // released, or the last 8 MiB of a burst would never be trimmed.
      count_release(kBatch * class_bytes(c));
    } else {
      free_chain(chain, class_bytes(c), true);
    }
  }
  push_cached(p, c);
}
}  // namespace

// The hot paths: a pop or a push on the thread's list for the class, with
// everything else (the depot, arming, the cap, thread exit) out of line.
void* frame_alloc(std::size_t n) {
  if (n > kMaxCachedFrame) [[unlikely]]
    return malloc_or_throw(n);
  const std::size_t c = class_of(n);
  FreeFrame* f = t_cache.heads[c];
  if (f == nullptr) [[unlikely]]
    return alloc_slow(c);
  t_cache.heads[c] = f->next;
  --t_cache.counts[c];
  return f;
}

void frame_free(void* p, std::size_t n) noexcept {
  if (n > kMaxCachedFrame) [[unlikely]] {
    count_release(n);
    std::free(p);
    return;
  }
  const std::size_t c = class_of(n);
  if (t_cache_state != kArmed || t_cache.counts[c] >= kCacheCaps.n[c]) [[unlikely]] {
    free_slow(p, c, n);
    return;
  }
  push_cached(p, c);
}

void drain_depot_for_trim() noexcept { depot_drain(); }

bool frame_refill_wanted() noexcept { return g_refill_wanted.load(std::memory_order_relaxed) != 0; }

std::size_t frame_refill_step() noexcept {
  const std::uint64_t wanted = g_refill_wanted.load(std::memory_order_relaxed);
  if (wanted == 0) return 0;
  const std::size_t c = static_cast<std::size_t>(__builtin_ctzll(wanted));
  const std::uint64_t bit = std::uint64_t{1} << c;
  if (g_depots[c].count.load(std::memory_order_relaxed) >= refill_high(c)) {
    g_refill_wanted.fetch_and(~bit, std::memory_order_relaxed);
    return 0;
  }
  const std::size_t bytes = class_bytes(c);
  FreeFrame* chain = nullptr;
  for (std::uint32_t i = 0; i < kBatch; ++i) {
    before_frame_malloc(bytes);
    auto* f = static_cast<FreeFrame*>(std::malloc(bytes));
    if (f == nullptr) {  // out of memory: the spawning thread will find out itself
      free_chain(chain, bytes, false);
      g_refill_wanted.fetch_and(~bit, std::memory_order_relaxed);
      return 0;
    }
    f->next = chain;  // the write that faults the page in, on this core
    chain = f;
  }
  if (!depot_put(c, chain)) {  // the depot is full
    free_chain(chain, bytes, false);
    g_refill_wanted.fetch_and(~bit, std::memory_order_relaxed);
    return 0;
  }
  return kBatch;
}

bool frame_cache_enabled() noexcept { return true; }

std::size_t frame_cache_count() noexcept {
  std::size_t n = 0;
  for (std::size_t c = 0; c < kClasses; ++c) n += t_cache.counts[c];
  return n;
}

#else

void drain_depot_for_trim() noexcept {}
bool frame_refill_wanted() noexcept { return false; }
std::size_t frame_refill_step() noexcept { return 0; }
bool frame_cache_enabled() noexcept { return false; }
std::size_t frame_cache_count() noexcept { return 0; }

void* frame_alloc(std::size_t n) { return malloc_or_throw(n); }
void frame_free(void* p, std::size_t n) noexcept {
  count_release(n);
  std::free(p);
}

#endif

}  // namespace weft::detail
