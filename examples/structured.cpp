// Structured concurrency: gather, wait and TaskGroup (the README's snippets).
// Exits 0 when every step produced what it should.
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <vector>
#include <weft/weft.hpp>

using namespace std::chrono_literals;

weft::Task<int> fetch(int i) {
  co_await weft::sleep(std::chrono::milliseconds(i));
  co_return i * 10;
}

weft::Task<int> fails() {
  co_await weft::sleep(1ms);
  throw std::runtime_error("backend down");
}

weft::Task<int> main_task() {
  int failures = 0;

  // gather: results in argument order, whatever order they finish in.
  auto [a, b] = co_await weft::gather(fetch(3), fetch(1));
  if (a != 30 || b != 10) ++failures;

  // wait: the first to finish, with a timeout; nothing is cancelled.
  std::vector<weft::JoinHandle<int>> hs{weft::spawn(fetch(1)), weft::spawn(fetch(50))};
  auto [done, pending] = co_await weft::wait(hs, weft::ReturnWhen::FirstCompleted, 1s);
  if (done.size() != 1 || done[0].result() != 10) ++failures;
  for (auto& h : pending) h.cancel();

  // TaskGroup: every child has finished when task_group returns; the first
  // failure cancels the others and comes out in an ExceptionGroup.
  try {
    co_await weft::task_group([](weft::TaskGroup& tg) -> weft::Task<> {
      tg.spawn(fetch(1));
      tg.spawn(fails());
      tg.spawn(fetch(1000));  // cancelled when fails() fails
      co_return;
    });
    ++failures;
  } catch (const weft::ExceptionGroup& g) {
    if (g.exceptions().size() != 1) ++failures;
  }

  // timeout scopes and wait_for.
  try {
    co_await weft::wait_for(fetch(1000), 5ms);
    ++failures;
  } catch (const weft::TimeoutError&) {
  }
  co_return failures;
}

int main() {
  int failures = weft::run(main_task());
  std::printf("%s\n", failures == 0 ? "structured: ok" : "structured: FAILED");
  return failures == 0 ? 0 : 1;
}
