// Micro-benchmarks of a worker's local run queue (scheduler/src/local_queue.hpp,
// internal and header-only): the owner's push/pop and a thief's steal of half.
// Single-threaded: these measure the operations' own cost (atomics, CAS, the
// copy), not contention.
#include "../../scheduler/src/local_queue.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <vector>

namespace {

using weft::detail::LocalQueue;
using weft::detail::TaskHeader;

std::vector<TaskHeader>& headers() {
  static std::vector<TaskHeader> hs(LocalQueue::kCapacity);
  return hs;
}

// One push then one pop: the spawn-then-run path of a worker.
void BM_LocalQueue_PushPop(benchmark::State& state) {
  auto q = std::make_unique<LocalQueue>();
  TaskHeader* t = &headers()[0];
  for (auto _ : state) {
    q->push(t);
    benchmark::DoNotOptimize(q->pop());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LocalQueue_PushPop)->MinTime(0.05);

// Fill the queue then drain it: a burst of spawns followed by running them.
void BM_LocalQueue_FillDrain(benchmark::State& state) {
  auto q = std::make_unique<LocalQueue>();
  auto& hs = headers();
  for (auto _ : state) {
    for (auto& h : hs) q->push(&h);
    while (TaskHeader* t = q->pop()) benchmark::DoNotOptimize(t);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(hs.size()));
}
BENCHMARK(BM_LocalQueue_FillDrain)->MinTime(0.05);

// A thief takes half of a victim's queue of `range(0)` tasks into its own
// (victim.steal_into(thief_queue, ...)). Only the steal is timed (manual
// time: PauseTiming costs more than the steal); the queues are refilled and
// drained outside the timed region so each round starts from the same state.
void BM_LocalQueue_StealHalf(benchmark::State& state) {
  auto victim = std::make_unique<LocalQueue>();
  auto thief = std::make_unique<LocalQueue>();
  auto& hs = headers();
  const auto n = static_cast<size_t>(state.range(0));
  int64_t stolen = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) victim->push(&hs[i]);
    auto t0 = std::chrono::steady_clock::now();
    std::uint32_t count = 0;
    benchmark::DoNotOptimize(victim->steal_into(*thief, LocalQueue::kCapacity, &count));
    auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    stolen += count;
    while (victim->pop()) {
    }
    while (thief->pop()) {
    }
  }
  state.counters["tasks_per_steal"] =
      benchmark::Counter(static_cast<double>(stolen) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_LocalQueue_StealHalf)->Arg(2)->Arg(32)->Arg(256)->UseManualTime()->MinTime(0.05);

// An empty steal attempt: what a searching worker pays per victim it finds empty.
void BM_LocalQueue_StealEmpty(benchmark::State& state) {
  auto victim = std::make_unique<LocalQueue>();
  auto thief = std::make_unique<LocalQueue>();
  for (auto _ : state) {
    std::uint32_t count = 0;
    benchmark::DoNotOptimize(victim->steal_into(*thief, LocalQueue::kCapacity, &count));
  }
}
BENCHMARK(BM_LocalQueue_StealEmpty)->MinTime(0.05);

}  // namespace

BENCHMARK_MAIN();
