// Placeholder: the runtime replaces this with a first coroutine program.
#include <cstdio>
#include <weft/weft.hpp>

int main() {
  std::puts("hello from weft");
  return 0;
}
