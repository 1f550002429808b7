// weft/sync/event.hpp - Event (asyncio.Event).
//
// wait() returns at once while the event is set; set() wakes every waiter
// (each sees the event as set, even if clear() follows at once, §M 90). A
// cancelled wait() leaves no waiter behind (§M 89).
//
// Threads: set(), clear() and is_set() may be called from any thread,
// including threads outside the runtime; wait() must be awaited inside a weft
// task.
#pragma once

#include <atomic>
#include <coroutine>
#include <mutex>
#include <weft/sync/detail/wait_list.hpp>

namespace weft {

class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  struct WaitAwaiter {
    Event* e;
    detail::SyncWaiter w{};
    bool await_ready() const noexcept { return e->is_set(); }
    bool await_suspend(std::coroutine_handle<> h) { return e->suspend(&w, h); }
    /// asyncio's wait() returns True; so does this.
    bool await_resume() const {
      if (w.state == detail::SyncWaiter::kCancelled)
        detail::throw_cancelled(detail::current_header());
      return true;
    }
  };
  /// Waits until set. Throws CancelledError if cancelled while waiting.
  WaitAwaiter wait() noexcept { return WaitAwaiter{this}; }
  /// Sets the flag and wakes every waiter. Never throws. Any thread.
  void set() noexcept;
  /// Clears the flag. Never throws. Any thread.
  void clear() noexcept { set_.store(false, std::memory_order_relaxed); }
  bool is_set() const noexcept { return set_.load(std::memory_order_acquire); }

 private:
  bool suspend(detail::SyncWaiter* w, std::coroutine_handle<> h);
  static bool cancel_hook(detail::Suspension* s) noexcept;
  std::atomic<bool> set_{false};
  std::mutex m_;
  detail::WaitList waiters_;
};

}  // namespace weft
