// Placeholder that checks the tests/o0 plumbing itself: files here must be
// compiled without optimisation even in Release builds. Real -O0 tests (deep
// co_await chains relying on symmetric transfer, frame lifetimes) go next to it.
#include <catch2/catch.hpp>
#include <weft/weft.hpp>

TEST_CASE("tests/o0 files are compiled without optimisation", "[o0]") {
#ifdef __OPTIMIZE__
  constexpr bool optimised = true;
#else
  constexpr bool optimised = false;
#endif
  REQUIRE_FALSE(optimised);
}
