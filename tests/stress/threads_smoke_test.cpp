// Placeholder for tests/stress: proves the directory is built, labelled
// "stress" and run serially. Real stress tests (stealing under contention,
// cross-worker wake-ups) replace it.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>
#include <weft/weft.hpp>

TEST_CASE("threads can hammer an atomic counter", "[stress]") {
  constexpr int kThreads = 4;
  constexpr int kIncrements = 100000;
  std::atomic<int> counter{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&counter] {
      for (int j = 0; j < kIncrements; ++j) counter.fetch_add(1, std::memory_order_relaxed);
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(counter.load() == kThreads * kIncrements);
}
