// lock.cpp - Lock's slow paths and Semaphore (both hand the resource directly
// to the first waiter; see weft/sync/detail/wait_list.hpp).
#include <weft/sync/lock.hpp>
#include <weft/sync/semaphore.hpp>

namespace weft {

using detail::SyncWaiter;

// ---------------------------------------------------------------- Lock

bool Lock::suspend(SyncWaiter* w, std::coroutine_handle<> h) {
  detail::TaskHeader* t = detail::sync_current_task("Lock::acquire");
  if (detail::take_pending_cancel(t)) {
    w->state = SyncWaiter::kCancelled;
    return false;
  }
  std::unique_lock g(m_);
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (!(s & kLocked)) {
      // Free. Under the mutex, free implies no waiters (release hands over).
      if (state_.compare_exchange_weak(s, s | kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        w->state = SyncWaiter::kGranted;
        return false;
      }
    } else if (s & kContended) {
      break;
    } else if (state_.compare_exchange_weak(s, s | kContended, std::memory_order_relaxed,
                                            std::memory_order_relaxed)) {
      // From here release() takes the mutex and sees us.
      break;
    }
  }
  detail::sync_enqueue(waiters_, w, t, h, this, &Lock::cancel_hook);
  return true;
}

void Lock::release() {
  std::uint32_t s = kLocked;
  // release: the holder's writes are visible to the next holder.
  if (state_.compare_exchange_strong(s, 0, std::memory_order_release, std::memory_order_relaxed))
    return;
  if (!(s & kLocked)) throw RuntimeError("Lock is not acquired.");
  std::unique_lock g(m_);
  release_slow(g);
}

// Hands the lock to the first waiter, or frees it. Called with m_ held in
// `g`; returns with it released.
void Lock::release_slow(std::unique_lock<std::mutex>& g) noexcept {
  detail::WakeChain wake;
  if (SyncWaiter* w = waiters_.pop_front()) {
    // The lock stays held: ownership passes to `w` (no barging).
    if (waiters_.empty()) state_.store(kLocked, std::memory_order_release);
    wake.add(w, SyncWaiter::kGranted);
  } else {
    state_.store(0, std::memory_order_release);
  }
  g.unlock();
}

bool Lock::cancel_hook(detail::Suspension* s) noexcept {
  auto* w = static_cast<SyncWaiter*>(s);
  auto* self = static_cast<Lock*>(w->owner);
  std::unique_lock g(self->m_);
  if (w->state == SyncWaiter::kQueued) {
    self->waiters_.remove(w);
    if (self->waiters_.empty()) self->state_.fetch_and(~kContended, std::memory_order_relaxed);
    return detail::sync_finish_cancel(w, g);
  }
  // Granted, wake in flight: the task raises CancelledError and the lock
  // passes on to the next waiter (§L 88), so exactly one task holds it.
  w->state = SyncWaiter::kCancelled;
  self->release_slow(g);
  return true;
}

// ---------------------------------------------------------------- Semaphore

Semaphore::Semaphore(std::int64_t value) : state_(value * 2) {
  if (value < 0) throw ValueError("Semaphore initial value must be >= 0");
}

bool Semaphore::suspend(SyncWaiter* w, std::coroutine_handle<> h) {
  detail::TaskHeader* t = detail::sync_current_task("Semaphore::acquire");
  if (detail::take_pending_cancel(t)) {
    w->state = SyncWaiter::kCancelled;
    return false;
  }
  std::unique_lock g(m_);
  std::int64_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (s >= 2 && !(s & kWaiters)) {
      if (state_.compare_exchange_weak(s, s - 2, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        w->state = SyncWaiter::kGranted;
        return false;
      }
    } else if (s & kWaiters) {
      break;
    } else if (state_.compare_exchange_weak(s, s | kWaiters, std::memory_order_relaxed,
                                            std::memory_order_relaxed)) {
      break;
    }
  }
  detail::sync_enqueue(waiters_, w, t, h, this, &Semaphore::cancel_hook);
  return true;
}

void Semaphore::release() {
  std::int64_t s = state_.load(std::memory_order_relaxed);
  while (!(s & kWaiters)) {
    if (bound_ >= 0 && (s >> 1) >= bound_)
      throw ValueError("BoundedSemaphore released too many times");
    if (state_.compare_exchange_weak(s, s + 2, std::memory_order_release,
                                     std::memory_order_relaxed))
      return;
  }
  std::unique_lock g(m_);
  release_locked(g, true);
}

void Semaphore::release_locked(std::unique_lock<std::mutex>& g, bool check_bound) {
  detail::WakeChain wake;
  if (SyncWaiter* w = waiters_.pop_front()) {
    if (waiters_.empty()) state_.fetch_and(~kWaiters, std::memory_order_release);
    wake.add(w, SyncWaiter::kGranted);
    g.unlock();
    return;
  }
  std::int64_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (check_bound && bound_ >= 0 && (s >> 1) >= bound_) {
      state_.fetch_and(~kWaiters, std::memory_order_relaxed);
      throw ValueError("BoundedSemaphore released too many times");
    }
    if (state_.compare_exchange_weak(s, (s & ~kWaiters) + 2, std::memory_order_release,
                                     std::memory_order_relaxed))
      break;
  }
  g.unlock();
}

bool Semaphore::cancel_hook(detail::Suspension* s) noexcept {
  auto* w = static_cast<SyncWaiter*>(s);
  auto* self = static_cast<Semaphore*>(w->owner);
  std::unique_lock g(self->m_);
  if (w->state == SyncWaiter::kQueued) {
    self->waiters_.remove(w);
    if (self->waiters_.empty()) self->state_.fetch_and(~kWaiters, std::memory_order_relaxed);
    return detail::sync_finish_cancel(w, g);
  }
  // Granted: the permit goes on (§O 98: cancelled waiters never use one up).
  w->state = SyncWaiter::kCancelled;
  try {
    self->release_locked(g, false);
  } catch (...) {
  }
  return true;
}

}  // namespace weft
