// Frame memory goes back to the OS at the end of a burst of frees
// (weft/detail/frame_alloc.hpp): the spawn_idle benchmark's after-cancel RSS
// depends on it, and it must not depend on luck.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>
#include <vector>
#include <weft/detail/frame_alloc.hpp>
#include <weft/weft.hpp>

namespace {

// Polls `done` until it holds or 10 s pass (a bound, not a synchronisation:
// the trim follows a 20 ms idle period of a worker).
template <class F>
bool eventually(F done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

TEST_CASE("frame memory: a burst freed outside the runtime is trimmed once it ends", "[frame]") {
  weft::RuntimeOptions o;
  o.workers = 2;
  weft::Runtime rt(o);
  rt.block_on([]() -> weft::Task<void> { co_return; }());  // the workers are parked
  const std::uint64_t before = weft::detail::trim_count();
  // 16 MiB of 208-byte frames, freed by this thread (not a worker): below the
  // 32 MiB inline threshold, so only the end-of-burst trim can run.
  constexpr std::size_t kFrame = 208, kCount = (16u << 20) / kFrame;
  std::vector<void*> frames(kCount);
  for (auto& f : frames) f = weft::detail::frame_alloc(kFrame);
  for (void* f : frames) weft::detail::frame_free(f, kFrame);
  REQUIRE(eventually([&] { return weft::detail::trim_count() > before; }));
}

namespace {

// A task whose frame, with its buffer live across the suspension, falls in a
// size class (about 600 bytes) that nothing else in these tests spawns: its
// depot starts empty, so the first spawns ask for a refill.
weft::Task<void> wide_frame() {
  char buf[560];
  for (std::size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<char>(i);
  co_await weft::yield_now();
  volatile char sink = buf[sizeof buf - 1];
  (void)sink;
}

weft::Task<void> await_all(std::vector<weft::JoinHandle<void>>& hs) {
  for (auto& h : hs) co_await h;
}

// Spawns a burst of wide_frame tasks from this thread (outside the runtime).
// Their handles keep every frame alive: no frame of the class is freed (which
// could fill its depot) until the caller drops them.
std::vector<weft::JoinHandle<void>> spawn_burst(weft::Runtime& rt, std::size_t n) {
  std::vector<weft::JoinHandle<void>> hs;
  hs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) hs.push_back(rt.spawn(wide_frame()));
  return hs;
}

}  // namespace

TEST_CASE("frame memory: idle workers fault in frames for a thread spawning a burst", "[frame]") {
  if (!weft::detail::frame_cache_enabled()) {
    WARN("built without the frame cache (AddressSanitizer): frames come from malloc");
    return;
  }
  weft::RuntimeOptions o;
  o.workers = 2;  // refill_frames is on by default
  weft::Runtime rt(o);
  auto hs = spawn_burst(rt, 20000);
  // The spawning thread found the depot empty and asked; the workers, idle
  // between the burst's tasks or after it, refill before they park.
  REQUIRE(eventually([&] { return rt.metrics().total().frames_refilled > 0; }));
  rt.block_on(await_all(hs));
}

TEST_CASE("frame memory: with refill_frames off no worker refills", "[frame]") {
  weft::RuntimeOptions o;
  o.workers = 2;
  o.refill_frames = false;
  weft::Runtime rt(o);
  auto hs = spawn_burst(rt, 20000);
  rt.block_on(await_all(hs));
  CHECK(rt.metrics().total().frames_refilled == 0);
}

namespace {

// Frees, during its thread's exit, a frame the thread allocated, and records
// what the thread's cache held just after that free.
struct FreedAtExit {
  void* frame = nullptr;
  std::atomic<std::size_t>* cached_after = nullptr;
  ~FreedAtExit() {
    if (frame == nullptr) return;
    weft::detail::frame_free(frame, kExitFrameBytes);
    cached_after->store(weft::detail::frame_cache_count(), std::memory_order_relaxed);
  }
  static constexpr std::size_t kExitFrameBytes = 104;
};
thread_local FreedAtExit t_freed_at_exit;

}  // namespace

// The per-thread cache (frame_alloc.cpp) is a plain thread_local array; a
// second thread_local, registered when the cache is first used, gives what it
// holds back to malloc at thread exit. A thread_local destroyed after that
// one (here: constructed before the cache was used) still frees frames,
// and they must go to free() rather than into the cache given back.
TEST_CASE("frame memory: a thread's cache is given back at its exit and frees after that bypass it",
          "[frame]") {
  std::size_t cached_while_running = 0;
  std::atomic<std::size_t> cached_after_exit_free{999};
  std::thread t([&] {
    // Constructed before the cache is used, so destroyed after it is given back.
    t_freed_at_exit.cached_after = &cached_after_exit_free;
    std::vector<void*> frames;
    for (int i = 0; i < 10; ++i) frames.push_back(weft::detail::frame_alloc(200));
    for (void* f : frames) weft::detail::frame_free(f, 200);
    cached_while_running = weft::detail::frame_cache_count();
    t_freed_at_exit.frame = weft::detail::frame_alloc(FreedAtExit::kExitFrameBytes);
  });
  t.join();
  if (weft::detail::frame_cache_enabled()) {
    CHECK(cached_while_running >= 10);
  } else {
    CHECK(cached_while_running == 0);  // AddressSanitizer builds: no cache
  }
  // The free during the exit went past the cache: it holds nothing.
  CHECK(cached_after_exit_free.load(std::memory_order_relaxed) == 0);
}
