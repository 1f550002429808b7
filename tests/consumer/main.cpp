// Uses an installed weft the way a user would: find_package(weft) and
// weft::weft, then a runtime that spawns a task, sleeps and awaits it.
#include <chrono>
#include <cstdio>
#include <weft/weft.hpp>

weft::Task<int> child(int x) {
  co_await weft::sleep(std::chrono::milliseconds(1));
  co_return x * 2;
}

weft::Task<int> main_task() { co_return co_await weft::spawn(child(21)); }

int main() {
  int v = weft::run(main_task());
  std::printf("consumer: weft %s computed %d\n", WEFT_VERSION, v);
  return v == 42 ? 0 : 1;
}
