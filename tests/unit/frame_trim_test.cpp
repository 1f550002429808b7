// Frame memory goes back to the OS at the end of a burst of frees
// (weft/detail/frame_alloc.hpp): the spawn_idle benchmark's after-cancel RSS
// depends on it, and it must not depend on luck.
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
