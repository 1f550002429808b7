// How long it takes to wake a parked worker: MSG_RING against an eventfd.
//
// A task on one worker spawns a child and then spins (without yielding) until
// the child has run. Its own worker is busy, so the child can only run on the
// other worker, which is parked (spin_before_park = 0): each iteration is one
// wake-up of a parked worker, its steal, and the child's step. The runtime
// option wake_with_eventfd picks the mechanism for worker-to-worker wakes.
// The figures are quoted in scheduler/src/reactor.cpp.
#include <benchmark/benchmark.h>

#include <atomic>
#include <weft/weft.hpp>

namespace {

weft::Task<void> child(std::atomic<int>* flag) {
  flag->store(1, std::memory_order_release);
  co_return;
}

weft::Task<void> parent(benchmark::State* state) {
  for (auto _ : *state) {
    std::atomic<int> flag{0};
    auto h = weft::spawn(child(&flag));
    while (flag.load(std::memory_order_acquire) == 0) {
    }
    co_await h;
    // Let the other worker go back to sleep before the next round.
    state->PauseTiming();
    co_await weft::sleep(std::chrono::microseconds(200));
    state->ResumeTiming();
  }
}

void BM_WakeParkedWorker(benchmark::State& state) {
  weft::RuntimeOptions o;
  o.workers = 2;
  o.spin_before_park = 0;
  o.wake_with_eventfd = state.range(0) != 0;
  weft::Runtime rt(o);
  rt.block_on(parent(&state));
  state.SetLabel(state.range(0) ? "eventfd" : "MSG_RING");
}
BENCHMARK(BM_WakeParkedWorker)->Arg(0)->Arg(1)->Iterations(2000)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
