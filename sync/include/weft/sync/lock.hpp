// weft/sync/lock.hpp - Lock (asyncio.Lock), a mutex for tasks.
//
// `auto guard = co_await lock.lock();` is asyncio's `async with lock:`.
// Waiters acquire in strict FIFO order and release() hands the lock directly
// to the first waiter, so a newcomer can never barge past the queue (§L 87).
// A lock has no owner: any task (or thread) may release it (§L 86).
//
// Difference from asyncio: during the hand-over from release() to the woken
// waiter, locked() stays true (asyncio briefly reports false); ordering is as
// asyncio's, and ASYNCIO_SEMANTICS advises testing the order, not locked().
//
// Cost: acquiring a free lock and releasing an uncontended one is one CAS
// each; the mutex guarding the waiter list is taken only when there are
// waiters (see detail/wait_list.hpp).
//
// Threads: every member may be called from any thread; lock()/acquire() must
// be awaited inside a weft task.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <mutex>
#include <utility>
#include <weft/sync/detail/wait_list.hpp>

namespace weft {

class Lock;

/// Releases its lock on destruction (movable, not copyable).
class LockGuard {
 public:
  LockGuard() noexcept = default;
  explicit LockGuard(Lock* l) noexcept : l_(l) {}
  LockGuard(LockGuard&& o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
  LockGuard& operator=(LockGuard&& o) noexcept {
    if (this != &o) {
      reset();
      l_ = std::exchange(o.l_, nullptr);
    }
    return *this;
  }
  ~LockGuard() { reset(); }
  /// Releases now (idempotent). Never throws.
  void reset() noexcept;
  bool owns_lock() const noexcept { return l_ != nullptr; }

 private:
  Lock* l_ = nullptr;
};

class Lock {
 public:
  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  struct AcquireAwaiter {
    Lock* l;
    detail::SyncWaiter w{};
    bool await_ready() noexcept { return l->try_acquire(); }
    bool await_suspend(std::coroutine_handle<> h) { return l->suspend(&w, h); }
    void await_resume() const {
      if (w.state == detail::SyncWaiter::kCancelled)
        detail::throw_cancelled(detail::current_header());
      if (detail::sync_cancelled_after_grant(w)) {
        l->release();  // cancelled before it ran: the lock passes on (§L 88)
        detail::throw_cancelled(w.task);
      }
    }
  };
  struct GuardAwaiter : AcquireAwaiter {
    LockGuard await_resume() const {
      AcquireAwaiter::await_resume();
      return LockGuard(l);
    }
  };

  /// Awaits the lock and yields a LockGuard (asyncio's `async with`). Throws
  /// CancelledError if cancelled while waiting (the lock is then not held).
  GuardAwaiter lock() noexcept { return GuardAwaiter{{this}}; }
  /// Awaits the lock (asyncio's acquire); pair with release().
  AcquireAwaiter acquire() noexcept { return AcquireAwaiter{this}; }
  /// Takes the lock if free and nobody waits; never suspends or throws.
  bool try_acquire() noexcept {
    std::uint32_t s = 0;
    // acquire: what the previous holder wrote is visible to the new one.
    return state_.compare_exchange_strong(s, kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  /// Releases the lock, handing it to the first waiter if any. Throws
  /// RuntimeError if the lock is not held (§L 86). Any thread.
  void release();
  /// True while held (or being handed to a waiter).
  bool locked() const noexcept { return state_.load(std::memory_order_relaxed) & kLocked; }

 private:
  friend class Condition;
  static constexpr std::uint32_t kLocked = 1;
  static constexpr std::uint32_t kContended = 2;  // waiters exist: use the slow path
  bool suspend(detail::SyncWaiter* w, std::coroutine_handle<> h);
  static bool cancel_hook(detail::Suspension* s) noexcept;
  void release_slow(std::unique_lock<std::mutex>& g) noexcept;

  std::atomic<std::uint32_t> state_{0};
  std::mutex m_;
  detail::WaitList waiters_;
};

inline void LockGuard::reset() noexcept {
  if (l_) {
    try {
      std::exchange(l_, nullptr)->release();
    } catch (...) {
      // released by hand while guarded: nothing to do
    }
  }
}

}  // namespace weft
