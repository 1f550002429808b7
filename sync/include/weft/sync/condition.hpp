// weft/sync/condition.hpp - Condition (asyncio.Condition).
//
// A condition variable bound to a Lock (its own, or one given). wait()
// releases the lock, waits for notify(), and re-acquires the lock before
// returning or throwing, also when cancelled (§N 94). notify(n) wakes at most
// n waiters in FIFO order. A waiter that was notified and then cancelled
// hands its notification on to the next waiter (asyncio 3.13, §N 95), so no
// wake-up is lost.
//
// Threads: any thread may call any member, but wait/notify/notify_all need
// the lock held (RuntimeError otherwise, §N 91; weft's Lock has no owner,
// so "held" means held by anyone) and waiting needs a weft task.
#pragma once

#include <coroutine>
#include <mutex>
#include <type_traits>
#include <utility>
#include <weft/sync/detail/wait_list.hpp>
#include <weft/sync/lock.hpp>
#include <weft/task.hpp>

namespace weft {

class Condition {
 public:
  /// Uses `lock` (which must outlive the condition) or, if null, its own.
  explicit Condition(Lock* lock = nullptr) noexcept : lock_(lock ? lock : &own_) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  /// The underlying lock's operations.
  Lock::AcquireAwaiter acquire() noexcept { return lock_->acquire(); }
  Lock::GuardAwaiter lock() noexcept { return lock_->lock(); }
  void release() { lock_->release(); }
  bool locked() const noexcept { return lock_->locked(); }

  /// Releases the lock, waits for a notify, re-acquires the lock. Throws
  /// RuntimeError if the lock is not held; CancelledError (after
  /// re-acquiring) if cancelled.
  Task<void> wait();

  /// Waits until pred() is truthy and returns its value (§N 93). Needs the
  /// lock only if pred() is false at first (§N 91).
  template <class Pred>
  Task<std::invoke_result_t<Pred&>> wait_for(Pred pred) {
    auto r = pred();
    while (!r) {
      co_await wait();
      r = pred();
    }
    co_return r;
  }

  /// Wakes up to n waiters, FIFO. RuntimeError if the lock is not held.
  void notify(std::size_t n = 1);
  /// Wakes every waiter. RuntimeError if the lock is not held.
  void notify_all() { notify(static_cast<std::size_t>(-1)); }

 private:
  struct WaitAwaiter {
    Condition* c;
    detail::SyncWaiter w{};
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) { return c->suspend(&w, h); }
    void await_resume() const {
      if (w.state == detail::SyncWaiter::kCancelled)
        detail::throw_cancelled(detail::current_header());
      if (detail::sync_cancelled_after_grant(w)) {
        c->pass_on();  // notified, cancelled before it ran: hand the wake-up on (§N 95)
        detail::throw_cancelled(w.task);
      }
    }
  };
  void pass_on() noexcept;
  bool suspend(detail::SyncWaiter* w, std::coroutine_handle<> h);
  static bool cancel_hook(detail::Suspension* s) noexcept;
  void notify_locked(std::size_t n, detail::WakeChain& wake) noexcept;

  Lock own_;
  Lock* lock_;
  std::mutex m_;
  detail::WaitList waiters_;
};

}  // namespace weft
