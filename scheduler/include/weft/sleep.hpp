// weft/sleep.hpp - sleep, sleep_until, yield_now (asyncio.sleep).
//
// sleep(d) suspends the calling task for at least d of loop time; sleep(d)
// with d <= 0 and yield_now() suspend for exactly one loop iteration and arm
// no timer (§D 39): the task goes to the back of the ready tasks, behind
// every task and callback already queued, and runs again after the loop has
// polled I/O and fired due timers. A NaN delay throws ValueError (§D 39,
// 3.13). Cancelling a sleeping task removes its timer (§D 38).
//
// Threads: only inside a weft task (RuntimeError otherwise, when awaited).
#pragma once

#include <chrono>
#include <cmath>
#include <coroutine>
#include <type_traits>
#include <weft/clock.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/errors.hpp>
#include <weft/loop.hpp>

namespace weft {

namespace detail {

struct SleepState;
/// Arms the timer on the current worker (or, for a deadline already past,
/// requeues the task like yield_now). Returns false, without suspending, when
/// a pending cancel request was consumed instead. Defined in timers.cpp.
bool sleep_suspend(SleepState* s, std::coroutine_handle<> h);

/// The part of a sleep that the owning loop's timer heap and inbox refer to.
struct SleepState : TimerNode, Suspension, InboxItem {
  TaskHeader* task = nullptr;
  void* owner = nullptr;               // the Worker whose heap holds `timer`
  std::atomic<std::uint8_t> phase{0};  // see timers.cpp
  bool cancelled = false;              // completed by a cancel
};

struct YieldAwaiter {
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) const {
    TaskHeader* t = current_header();
    if (t == nullptr) throw_no_task("yield_now");
    if (t->state.load(std::memory_order_relaxed) & TaskHeader::kCancelPending) return false;
    suspend_at(t, nullptr, h);
    // Ask the worker to requeue us behind everything ready (kNotified while
    // running means "run me again later").
    t->state.fetch_or(TaskHeader::kNotified | TaskHeader::kYielded, std::memory_order_relaxed);
    return true;
  }
  void await_resume() const {
    TaskHeader* t = current_header();
    if (take_pending_cancel(t)) throw_cancelled(t);
  }
};

struct SleepAwaiter {
  explicit SleepAwaiter(std::int64_t deadline) noexcept { st.deadline_ns = deadline; }
  SleepState st;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return sleep_suspend(&st, h); }
  void await_resume() {
    TaskHeader* t = current_header();
    if (st.cancelled || take_pending_cancel(t)) throw_cancelled(t);
  }
};

inline std::int64_t to_ns(TimePoint t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace detail

/// Suspends the task for one loop iteration (asyncio.sleep(0)).
inline detail::YieldAwaiter yield_now() noexcept { return {}; }

/// Suspends the task until `deadline`. A deadline not in the future yields
/// once (no timer). Throws CancelledError if the task is cancelled meanwhile.
inline detail::SleepAwaiter sleep_until(TimePoint deadline) noexcept {
  return detail::SleepAwaiter(detail::to_ns(deadline));
}

/// Suspends the task for at least `delay` (asyncio.sleep). delay <= 0 yields
/// once. Throws ValueError for a NaN delay, CancelledError on cancellation.
template <class Rep, class Period>
detail::SleepAwaiter sleep(std::chrono::duration<Rep, Period> delay) {
  if constexpr (std::is_floating_point_v<Rep>) {
    if (std::isnan(delay.count())) throw ValueError("weft::sleep: delay is NaN");
  }
  TimePoint now = Clock::now();
  auto d = std::chrono::duration_cast<Duration>(delay);
  return sleep_until(d.count() <= 0 ? now - Duration(1) : now + d);
}

}  // namespace weft
