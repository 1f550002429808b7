// weft/sync/semaphore.hpp - Semaphore and BoundedSemaphore (asyncio's).
//
// acquire() takes a permit or waits; release() hands a permit directly to the
// first waiter (strict FIFO, no barging, §O 97) or adds one. A waiter
// cancelled before or after being handed a permit never uses it up: the
// permit goes on to the next waiter (§O 98).
//
// Cost: acquire with value > 0 and release with no waiters are one CAS each.
//
// Threads: every member may be called from any thread; acquire() must be
// awaited inside a weft task.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <mutex>
#include <weft/errors.hpp>
#include <weft/sync/detail/wait_list.hpp>

namespace weft {

class Semaphore;

/// Releases one permit on destruction.
class SemaphoreGuard {
 public:
  SemaphoreGuard() noexcept = default;
  explicit SemaphoreGuard(Semaphore* s) noexcept : s_(s) {}
  SemaphoreGuard(SemaphoreGuard&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  SemaphoreGuard& operator=(SemaphoreGuard&& o) noexcept;
  ~SemaphoreGuard() { reset(); }
  void reset() noexcept;

 private:
  Semaphore* s_ = nullptr;
};

class Semaphore {
 public:
  /// Throws ValueError if value < 0 (§O 96).
  explicit Semaphore(std::int64_t value = 1);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  virtual ~Semaphore() = default;

  struct AcquireAwaiter {
    Semaphore* s;
    detail::SyncWaiter w{};
    bool await_ready() noexcept { return s->try_acquire(); }
    bool await_suspend(std::coroutine_handle<> h) { return s->suspend(&w, h); }
    void await_resume() const {
      if (w.state == detail::SyncWaiter::kCancelled)
        detail::throw_cancelled(detail::current_header());
      if (detail::sync_cancelled_after_grant(w)) {
        try {
          s->release();  // cancelled before it ran: the permit passes on (§O 98)
        } catch (...) {
        }
        detail::throw_cancelled(w.task);
      }
    }
  };
  struct GuardAwaiter : AcquireAwaiter {
    SemaphoreGuard await_resume() const {
      AcquireAwaiter::await_resume();
      return SemaphoreGuard(s);
    }
  };

  /// Awaits a permit. Throws CancelledError if cancelled while waiting.
  AcquireAwaiter acquire() noexcept { return AcquireAwaiter{this}; }
  /// Awaits a permit and yields a guard that releases it (`async with`).
  GuardAwaiter hold() noexcept { return GuardAwaiter{{this}}; }
  /// Takes a permit if one is free and nobody waits. Never throws.
  bool try_acquire() noexcept {
    std::int64_t s = state_.load(std::memory_order_relaxed);
    while (s >= 2 && !(s & kWaiters)) {
      if (state_.compare_exchange_weak(s, s - 2, std::memory_order_acquire,
                                       std::memory_order_relaxed))
        return true;
    }
    return false;
  }
  /// Returns a permit (to the first waiter if any). Semaphore: never throws;
  /// BoundedSemaphore: ValueError beyond the initial value (§O 96).
  void release();
  /// True if acquire() would not succeed at once (value 0 or waiters).
  bool locked() const noexcept {
    std::int64_t s = state_.load(std::memory_order_relaxed);
    return s < 2 || (s & kWaiters);
  }
  /// The free permits.
  std::int64_t value() const noexcept { return state_.load(std::memory_order_relaxed) >> 1; }

 protected:
  std::int64_t bound_ = -1;  // BoundedSemaphore's limit; -1: none

 private:
  // state_ = 2 * permits | kWaiters. kWaiters set => permits == 0 and the
  // release path must go through the mutex to hand the permit on.
  static constexpr std::int64_t kWaiters = 1;
  bool suspend(detail::SyncWaiter* w, std::coroutine_handle<> h);
  static bool cancel_hook(detail::Suspension* s) noexcept;
  void release_locked(std::unique_lock<std::mutex>& g, bool check_bound);

  std::atomic<std::int64_t> state_;
  std::mutex m_;
  detail::WaitList waiters_;
};

/// A Semaphore whose release() beyond the initial value throws ValueError.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::int64_t value = 1) : Semaphore(value) { bound_ = value; }
};

inline SemaphoreGuard& SemaphoreGuard::operator=(SemaphoreGuard&& o) noexcept {
  if (this != &o) {
    reset();
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}
inline void SemaphoreGuard::reset() noexcept {
  if (s_) {
    Semaphore* s = s_;
    s_ = nullptr;
    try {
      s->release();
    } catch (...) {
    }
  }
}

}  // namespace weft
