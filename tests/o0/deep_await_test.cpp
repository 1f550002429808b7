// Built at -O0 (tests/o0): g++ emits no tail calls there, so this is where a
// Task implementation that relies on the compiler's symmetric transfer would
// overflow the stack. weft hands control on through a trampoline instead.
#include <catch2/catch.hpp>
#include <weft/weft.hpp>

#ifdef __OPTIMIZE__
#error "tests/o0 files must be compiled without optimisation"
#endif

namespace {

weft::Task<int> ready_one() { co_return 1; }

weft::Task<long> await_many_in_a_loop(int n) {
  long sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await ready_one();
  co_return sum;
}

weft::Task<long> nested(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await nested(depth - 1);
}

weft::Task<void> nested_void(int depth, long& count) {
  if (depth == 0) co_return;
  ++count;
  co_await nested_void(depth - 1, count);
}

weft::RuntimeOptions one_worker() {
  weft::RuntimeOptions o;
  o.workers = 1;
  return o;
}

}  // namespace

TEST_CASE("Task: a million consecutive awaits of finished tasks keep the stack flat at -O0",
          "[task][o0]") {
  REQUIRE(weft::run(await_many_in_a_loop(1'000'000), one_worker()) == 1'000'000);
}

TEST_CASE("Task: a million nested awaits keep the stack flat at -O0", "[task][o0]") {
  REQUIRE(weft::run(nested(1'000'000), one_worker()) == 1'000'000);
}

TEST_CASE("Task<void>: a million nested awaits at -O0", "[task][o0]") {
  long count = 0;
  weft::run(nested_void(1'000'000, count), one_worker());
  REQUIRE(count == 1'000'000);
}
