// weft/clock.hpp - the clock every loop measures time with.
//
// Loop time is std::chrono::steady_clock (CLOCK_MONOTONIC on Linux), as
// asyncio's loop.time() is time.monotonic(). Deadlines are time_points of this
// clock; delays are any std::chrono::duration.
#pragma once

#include <chrono>

namespace weft {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

}  // namespace weft
