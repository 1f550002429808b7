// examples/embed.cpp - embedding a Runtime in a program that has its own
// threads (asyncio.Runner): block_on from outside, spawn from any thread,
// a thread-safe Future completed by a plain std::thread, and the metrics.
#include <cstdio>
#include <thread>
#include <weft/weft.hpp>

weft::Task<int> main_task(weft::Future<int> from_thread) {
  int v = co_await from_thread;  // completed by a thread outside the runtime
  co_return v + 1;
}

weft::Task<void> background() { co_await weft::yield_now(); }

int main() {
  weft::RuntimeOptions options;
  options.workers = 4;
  weft::Runtime rt(options);
  weft::Promise<int> promise(&rt);
  std::thread producer([&promise] { promise.set_result(41); });

  int v = rt.block_on(main_task(promise.get_future()));  // from a thread outside the runtime
  auto h = rt.spawn(background());                       // from any thread
  rt.block_on([](weft::JoinHandle<void> handle) -> weft::Task<void> { co_await handle; }(h));
  weft::Metrics m = rt.metrics();  // steals, parks, io_uring_enter calls, ...
  rt.shutdown();                   // also done by the destructor
  producer.join();

  std::printf("result %d after %llu task steps on %zu workers\n", v,
              static_cast<unsigned long long>(m.total().tasks_polled), m.workers.size());
  return v == 42 ? 0 : 1;
}
