// Micro-benchmarks of task state transitions and Future/Promise, inside one
// running weft runtime (1 worker, so nothing is stolen and the numbers are the
// single-thread path). The benchmark loop itself runs inside a weft task: the
// main thread only waits in block_on, so timings use real time.
#include <benchmark/benchmark.h>

#include <vector>
#include <weft/weft.hpp>

namespace {

weft::RuntimeOptions one_worker() {
  weft::RuntimeOptions o;
  o.workers = 1;
  return o;
}

weft::Task<void> noop() { co_return; }

// Runs body(state) as a weft task on a fresh one-worker runtime.
template <class F>
void in_runtime(benchmark::State& state, F body) {
  weft::Runtime rt(one_worker());
  rt.block_on(body(&state));
}

// spawn + first poll + completion + join: every state transition of a task
// (scheduled -> running -> complete -> joined and freed), one task at a time.
weft::Task<void> spawn_await(benchmark::State* state) {
  for (auto _ : *state) {
    weft::JoinHandle<void> h = weft::spawn(noop());
    co_await h;
  }
  state->SetItemsProcessed(state->iterations());
}
void BM_Task_SpawnAwait(benchmark::State& state) { in_runtime(state, spawn_await); }
BENCHMARK(BM_Task_SpawnAwait)->UseRealTime()->MinTime(0.05);

// A batch of 256 spawns, then awaiting them all: queue-friendly steady state.
weft::Task<void> spawn_batch(benchmark::State* state) {
  std::vector<weft::JoinHandle<void>> hs;
  hs.reserve(256);
  for (auto _ : *state) {
    for (int i = 0; i < 256; ++i) hs.push_back(weft::spawn(noop()));
    for (auto& h : hs) co_await h;
    hs.clear();
  }
  state->SetItemsProcessed(state->iterations() * 256);
}
void BM_Task_SpawnBatch256(benchmark::State& state) { in_runtime(state, spawn_batch); }
BENCHMARK(BM_Task_SpawnBatch256)->UseRealTime()->MinTime(0.05);

// Awaiting a Task inline (no spawn): the trampoline's call/return cost.
weft::Task<int> value(int x) { co_return x + 1; }
weft::Task<void> await_inline(benchmark::State* state) {
  int v = 0;
  for (auto _ : *state) v = co_await value(v);
  benchmark::DoNotOptimize(v);
}
void BM_Task_AwaitInline(benchmark::State& state) { in_runtime(state, await_inline); }
BENCHMARK(BM_Task_AwaitInline)->UseRealTime()->MinTime(0.05);

// yield_now: suspend, requeue behind the ready tasks, resume.
weft::Task<void> yield_loop(benchmark::State* state) {
  for (auto _ : *state) co_await weft::yield_now();
}
void BM_Task_YieldNow(benchmark::State& state) { in_runtime(state, yield_loop); }
BENCHMARK(BM_Task_YieldNow)->UseRealTime()->MinTime(0.05);

// Future set-and-await, ready path: create the promise, set it, await the
// future (no suspension: the future is already done).
weft::Task<void> future_ready(benchmark::State* state) {
  int v = 0;
  for (auto _ : *state) {
    weft::Promise<int> p;
    weft::Future<int> f = p.get_future();
    p.set_result(v);
    v = co_await f;
  }
  benchmark::DoNotOptimize(v);
}
void BM_Future_SetThenAwait(benchmark::State& state) { in_runtime(state, future_ready); }
BENCHMARK(BM_Future_SetThenAwait)->UseRealTime()->MinTime(0.05);

// Future set-and-await, suspending path: the awaiter suspends on a pending
// future, a second task sets it, the wake puts the awaiter back (LIFO slot).
weft::Task<void> setter(weft::Promise<int>* p, int v) {
  p->set_result(v);
  co_return;
}
weft::Task<void> future_wake(benchmark::State* state) {
  int v = 0;
  for (auto _ : *state) {
    weft::Promise<int> p;
    weft::Future<int> f = p.get_future();
    weft::JoinHandle<void> h = weft::spawn(setter(&p, v + 1));
    v = co_await f;
    co_await h;
  }
  benchmark::DoNotOptimize(v);
}
void BM_Future_AwaitThenSet(benchmark::State& state) { in_runtime(state, future_wake); }
BENCHMARK(BM_Future_AwaitThenSet)->UseRealTime()->MinTime(0.05);

}  // namespace

BENCHMARK_MAIN();
