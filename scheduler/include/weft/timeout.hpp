// weft/timeout.hpp - timeout scopes and wait_for (asyncio.timeout,
// asyncio.timeout_at, asyncio.wait_for).
//
//   auto cm = weft::timeout(50ms);
//   try {
//     co_await cm.run(body());            // `async with cm: await body()`
//   } catch (const weft::TimeoutError&) { /* cm.expired() */ }
//
// A scope is entered when run(body) starts and left when the body ends; the
// body runs inline in the calling task. When the deadline passes while the
// scope is entered, the task is cancelled (one cancel() request); the body
// sees CancelledError at its current await, and leaving the scope turns it
// into TimeoutError (the CancelledError nested, std::nested_exception, as
// Python's __cause__) - but only if, after withdrawing its own request
// (uncancel), the task's cancelling() is back to what it was on entry (§H
// 62). So of nested scopes with the same deadline only the outermost raises
// TimeoutError, an inner scope whose outer expired passes CancelledError on,
// and a foreign cancel() always propagates as CancelledError (§H 66-67).
// Leaving the scope always withdraws its request, so no stray cancellation
// remains (§H 68, §C 34). An exception other than CancelledError passes
// through unchanged, even after expiry (§H 65). A deadline already passed on
// entry cancels at once: the body's first await, even yield_now(), raises
// (§H 64). A scope with no deadline (nullopt) never fires (§H 63).
//
// A Timeout may be entered once (RuntimeError "has already been entered"),
// must be entered inside a task (RuntimeError), and must outlive its run().
// reschedule() moves or (nullopt) disables the deadline while entered;
// before entry it throws RuntimeError("... has not been entered"), after
// expiry or exit RuntimeError("Cannot change state of ... Timeout") (§H 69).
//
// wait_for(aw, d) is a timeout scope around `co_await aw` (3.12+, §G): on
// timeout the awaited task is cancelled and wait_for waits until it has
// really finished (its cleanup included) before raising TimeoutError; if the
// task suppresses the cancel and returns a value, that value is returned
// (§G 58). A Task<T> argument runs inline, as a coroutine does in Python's
// wait_for; with d <= 0 it never starts and TimeoutError is raised (§G 57).
//
// Threads: a Timeout is used by the task that runs it. The deadline fires on
// the loop that armed it and cancels the task wherever it runs; both sides
// synchronise on the scope's shared state. expired()/when() may be called
// from any thread.
#pragma once

#include <exception>
#include <optional>
#include <utility>
#include <weft/clock.hpp>
#include <weft/ensure_future.hpp>
#include <weft/errors.hpp>
#include <weft/join_handle.hpp>
#include <weft/task.hpp>

namespace weft {

namespace detail {
struct TimeoutState;
}

class Timeout {
 public:
  /// A scope with deadline `when` (nullopt: none). Throws std::bad_alloc.
  explicit Timeout(std::optional<TimePoint> when);
  ~Timeout();
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;

  /// The deadline, nullopt if disabled.
  std::optional<TimePoint> when() const;
  /// Moves the deadline (nullopt disables it). Throws RuntimeError unless
  /// the scope is entered and has not expired.
  void reschedule(std::optional<TimePoint> when);
  /// True if the deadline passed while the scope was entered.
  bool expired() const noexcept;

  /// Runs `body` inside the scope (see the header comment).
  template <class T>
  Task<T> run(Task<T> body) {
    enter();
    std::exception_ptr error;
    bool cancel_error = false;
    if constexpr (std::is_void_v<T>) {
      try {
        co_await std::move(body);
      } catch (const CancelledError&) {
        error = std::current_exception();
        cancel_error = true;
      } catch (...) {
        error = std::current_exception();
      }
      leave(error, cancel_error);
    } else {
      std::optional<T> value;
      try {
        value.emplace(co_await std::move(body));
      } catch (const CancelledError&) {
        error = std::current_exception();
        cancel_error = true;
      } catch (...) {
        error = std::current_exception();
      }
      leave(error, cancel_error);
      co_return std::move(*value);
    }
  }

 private:
  void enter();
  /// Leaves the scope; rethrows `error` (or TimeoutError in its place).
  void leave(std::exception_ptr error, bool cancel_error);
  detail::TimeoutState* s_;
};

/// A scope expiring `delay` from now (nullopt: never). Throws std::bad_alloc.
Timeout timeout(std::optional<Duration> delay);
/// A scope expiring at `when` (nullopt: never). Throws std::bad_alloc.
Timeout timeout_at(std::optional<TimePoint> when);

namespace detail {
template <class T>
Task<T> await_handle(JoinHandle<T> h) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(h);
  } else {
    co_return co_await std::move(h);
  }
}

template <class T>
Task<T> wait_for_task(Task<T> body, std::optional<Duration> d) {
  if (d && d->count() <= 0) throw TimeoutError("weft::wait_for: timed out");  // never started
  Timeout cm(d ? std::optional<TimePoint>(Clock::now() + *d) : std::nullopt);
  co_return co_await cm.run(std::move(body));
}

template <class T>
Task<T> wait_for_handle(JoinHandle<T> h, std::optional<Duration> d) {
  if (d && d->count() <= 0 && !h.done()) {
    // 3.12's timeout <= 0: cancel, wait until it really finished, then
    // its value if it suppressed the cancel, else TimeoutError.
    h.cancel();
    try {
      co_return co_await await_handle(h);
    } catch (const CancelledError&) {
      if (!h.cancelled()) throw;
      std::throw_with_nested(TimeoutError("weft::wait_for: timed out"));
    }
  }
  Timeout cm(d ? std::optional<TimePoint>(Clock::now() + *d) : std::nullopt);
  co_return co_await cm.run(await_handle(std::move(h)));
}
}  // namespace detail

/// wait_for(task, d): see the header comment. Throws TimeoutError,
/// CancelledError, or what the awaited task throws.
template <class T>
Task<T> wait_for(Task<T> task, std::optional<Duration> d) {
  return detail::wait_for_task(std::move(task), d);
}
template <class T>
Task<T> wait_for(JoinHandle<T> h, std::optional<Duration> d) {
  return detail::wait_for_handle(std::move(h), d);
}
template <class T>
Task<T> wait_for(Future<T> f, std::optional<Duration> d) {
  return detail::wait_for_handle(ensure_future(std::move(f)), d);
}

}  // namespace weft
