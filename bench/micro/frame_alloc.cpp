// Micro-benchmarks of coroutine frame allocation (weft::detail::frame_alloc /
// frame_free, the per-thread size-class cache) against plain malloc/free.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>
#include <weft/detail/frame_alloc.hpp>

namespace {

// Allocate and free one frame: the steady state of a spawn/complete loop,
// served from the thread's cache.
void BM_FrameAlloc_OneCycle(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = weft::detail::frame_alloc(n);
    benchmark::DoNotOptimize(p);
    weft::detail::frame_free(p, n);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FrameAlloc_OneCycle)->Arg(128)->Arg(512)->Arg(2048)->MinTime(0.05);

void BM_Malloc_OneCycle(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = std::malloc(n);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Malloc_OneCycle)->Arg(128)->Arg(512)->Arg(2048)->MinTime(0.05);

// A burst: allocate `range(0)` frames of 256 bytes, then free them all. Bursts
// bigger than the cache cap (kFrameCacheBytesPerClass) spill to malloc.
void BM_FrameAlloc_Burst(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t n = 256;
  std::vector<void*> ps(count);
  for (auto _ : state) {
    for (auto& p : ps) p = weft::detail::frame_alloc(n);
    benchmark::DoNotOptimize(ps.data());
    for (void* p : ps) weft::detail::frame_free(p, n);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(count));
}
BENCHMARK(BM_FrameAlloc_Burst)->Arg(64)->Arg(4096)->MinTime(0.05);

}  // namespace

BENCHMARK_MAIN();
