// Uses weft the way a user would: weft::weft and <weft/weft.hpp>, then a
// runtime that spawns a task, sleeps and awaits it. Built twice: against an
// installed weft (find_package, tests/consumer) and with weft as a
// subdirectory (tests/subdir, WEFT_CONSUMER_KIND "subdir"). WEFT_VERSION
// comes from the header weft generates, so this also checks that the
// generated include path reaches the user's project.
#include <chrono>
#include <cstdio>
#include <weft/weft.hpp>

#ifndef WEFT_CONSUMER_KIND
#define WEFT_CONSUMER_KIND "consumer"
#endif

weft::Task<int> child(int x) {
  co_await weft::sleep(std::chrono::milliseconds(1));
  co_return x * 2;
}

weft::Task<int> main_task() { co_return co_await weft::spawn(child(21)); }

int main() {
  int v = weft::run(main_task());
  std::printf("%s: weft %s computed %d\n", WEFT_CONSUMER_KIND, WEFT_VERSION, v);
  return v == 42 ? 0 : 1;
}
