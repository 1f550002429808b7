// The one Catch2 main shared by every test executable (compiled once, linked
// into each of them by tests/CMakeLists.txt).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
