// settle.hpp - wakes the tasks parked on a list of Promise<void> (drain,
// wait_closed, serve_forever waiters of the streams and the server).
#pragma once

#include <vector>
#include <weft/future.hpp>

namespace weft::io::detail {

/// Completes every promise and empties the list. A promise whose waiter was
/// cancelled (its future cancelled with it) is skipped. Never throws.
inline void settle(std::vector<Promise<void>>& ps) noexcept {
  for (auto& p : ps) {
    try {
      p.set_result();
    } catch (...) {
      // That waiter was cancelled: nothing to wake.
    }
  }
  ps.clear();
}

}  // namespace weft::io::detail
