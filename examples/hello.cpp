// examples/hello.cpp - the README's first example: spawn tasks across the
// workers, await them in order, sleep, and return a value from run().
#include <chrono>
#include <cstdio>
#include <vector>
#include <weft/weft.hpp>

using namespace std::chrono_literals;

weft::Task<int> square(int x) {
  co_await weft::sleep(1ms);  // a timer on the worker's loop
  co_return x* x;
}

weft::Task<int> main_task() {
  std::vector<weft::JoinHandle<int>> handles;
  for (int i = 1; i <= 10; ++i) handles.push_back(weft::spawn(square(i)));  // asyncio.create_task
  int sum = 0;
  for (auto& h : handles) sum += co_await h;  // results in spawn order
  co_return sum;
}

int main() {
  int sum = weft::run(main_task());  // asyncio.run: runs main, then cancels and closes everything
  std::printf("sum of squares 1..10 = %d\n", sum);
  return sum == 385 ? 0 : 1;
}
