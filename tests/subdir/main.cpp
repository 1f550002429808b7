// Uses weft built as a subdirectory of this project (add_subdirectory) the
// way a user would: weft::weft and <weft/weft.hpp>, then a run() whose main
// task spawns a child, sleeps and awaits it. WEFT_VERSION comes from the
// header weft generates in its build tree, so this also checks that the
// generated include path reaches a parent project.
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
  std::printf("subdir: weft %s computed %d\n", WEFT_VERSION, v);
  return v == 42 ? 0 : 1;
}
