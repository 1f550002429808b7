// Placeholder: proves the test plumbing (umbrella header, generated version
// header, Catch2 main, ctest discovery) works. Real tests replace it.
#include <catch2/catch.hpp>
#include <string_view>
#include <weft/version.hpp>
#include <weft/weft.hpp>

TEST_CASE("weft headers and generated version are usable", "[smoke]") {
  REQUIRE(WEFT_VERSION_MAJOR == 0);
  REQUIRE(std::string_view(WEFT_VERSION).substr(0, 2) == "0.");
}
