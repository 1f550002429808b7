// weft/detail/frame_alloc.hpp - where coroutine frames come from.
//
// Every weft coroutine (Task<T>, spawned or awaited inline) takes its frame
// from a per-thread size-class recycler instead of malloc: a spawn must cost
// one allocation at most, and on the hot path that allocation is a pointer
// pop from a thread-local free list. Frames may be freed on another thread
// than the one that allocated them (tasks migrate); they simply join the
// freeing thread's cache.
//
// The cache is capped (kFrameCacheBytesPerClass per size class and thread) so
// that a burst of a million finished tasks hands its memory back to malloc
// instead of pinning it: this is the "documented cap of weft's frame caches"
// that the memory benchmark allows for. Frames larger than kMaxCachedFrame go
// straight to malloc. Under AddressSanitizer the cache is bypassed so that a
// use after free is still caught.
//
// Threads: any thread may call both functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace weft::detail {

/// Largest frame size served from the cache; larger frames use malloc.
inline constexpr std::size_t kMaxCachedFrame = 1024;
/// Granularity of the size classes.
inline constexpr std::size_t kFrameClassBytes = 16;
/// Bytes a thread keeps at most per size class; beyond that, batches of frames
/// go to a process-wide depot of at most 8 MiB (where other threads take them
/// from), and past that to free(). The depot is emptied before every trim.
/// 32 KiB keeps the whole cache of one thread under 2 MiB (64 classes) while
/// absorbing the churn of a spawn/complete loop without touching malloc.
inline constexpr std::size_t kFrameCacheBytesPerClass = 32 * 1024;

/// Allocates n bytes for a coroutine frame. Throws std::bad_alloc.
void* frame_alloc(std::size_t n);
/// Returns a frame of n bytes (the size given to frame_alloc). Never throws.
void frame_free(void* p, std::size_t n) noexcept;

/// A base that gives a class (and every class derived from it) frame_alloc'd
/// storage: for objects made on one thread and often freed on another (future
/// states, executor jobs), which the recycler hands back in batches. A type
/// aligned past 16 bytes keeps the global aligned forms (a class-scope
/// operator new would otherwise hide them). Threads: any.
struct FrameAllocated {
  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }
  static void* operator new(std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
  static void operator delete(void* p, std::size_t n, std::align_val_t a) noexcept {
    ::operator delete(p, n, a);
  }
};

/// True if a thread found the depot of some size class low while allocating
/// (see "Refills by idle workers" in frame_alloc.cpp). Any thread; a relaxed
/// load.
bool frame_refill_wanted() noexcept;
/// Refills the depot by one batch of a class that wants it, mallocing the
/// frames on the calling thread so their pages fault in there; returns how
/// many frames it added (0: none wanted, or the class is full again). Meant
/// for idle workers (RuntimeOptions::refill_frames); any thread may call it.
std::size_t frame_refill_step() noexcept;
/// False in builds without the frame cache (AddressSanitizer), where frames
/// come straight from malloc and nothing is refilled.
bool frame_cache_enabled() noexcept;
/// How many free frames the calling thread's cache holds, all classes
/// together (0 in builds without the cache, and once the thread's exit has
/// given its cache back to malloc). For tests and diagnostics; any thread.
std::size_t frame_cache_count() noexcept;

/// Giving memory back to the OS. glibc keeps freed memory mapped, so after a
/// burst of a million tasks the process would keep their memory for good.
/// weft calls malloc_trim(0) (after emptying the depot) in two places:
///  - during a burst: once `threshold` bytes of frames (and future states)
///    went back to malloc since the last trim, a thread outside the runtime
///    trims from the free itself; a worker never trims in a busy period whose
///    next burst would fault the pages right back in;
///  - at the end of a burst: once threshold/32 went back since the last trim,
///    an idle worker trims after no frame went back for kTrimAfterIdleNs
///    (worker.cpp); a burst freed outside the runtime wakes a worker for it.
/// So after a burst the resident memory returns to the baseline plus the
/// caches' cap (kFrameCacheBytesPerClass per class and thread) shortly after
/// the frees stop, deterministically. Process-wide: the most recently started
/// Runtime's RuntimeOptions::trim_threshold applies; 0 disables trimming.
void set_trim_threshold(std::size_t threshold) noexcept;
/// Registers the function that wakes a worker of the most recently started
/// runtime when a thread outside it starts a burst of frees (see above).
/// `hook` runs under a mutex, at most once per trim cycle, on the freeing
/// thread; clear_trim_wake_hook(arg) waits for a running call and
/// unregisters (if `arg` is still the registered one). Any thread.
void set_trim_wake_hook(void (*hook)(void*), void* arg) noexcept;
void clear_trim_wake_hook(void* arg) noexcept;
/// Marks the calling thread as a worker (it trims only when idle).
void mark_worker_thread() noexcept;
/// True if enough was released since the last trim that one is due.
bool trim_due() noexcept;
/// Trims if one is due; one thread at a time.
void trim_if_due() noexcept;
/// A worker about to park: 0 if no trim is wanted, else a mark to pass to
/// idle_trim after the idle period.
std::uint64_t idle_trim_mark() noexcept;
/// Trims if nothing was released since idle_trim_mark returned `mark`
/// (the burst is over); otherwise leaves it for the next idle period.
void idle_trim(std::uint64_t mark) noexcept;
/// How many trims ran in this process (for tests and diagnostics). Any thread.
std::uint64_t trim_count() noexcept;

}  // namespace weft::detail
