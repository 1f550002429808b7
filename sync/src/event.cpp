// event.cpp - Event, Condition and Barrier.
#include <weft/sync/barrier.hpp>
#include <weft/sync/condition.hpp>
#include <weft/sync/event.hpp>

namespace weft {

using detail::SyncWaiter;

// ---------------------------------------------------------------- Event

bool Event::suspend(SyncWaiter* w, std::coroutine_handle<> h) {
  detail::TaskHeader* t = detail::sync_current_task("Event::wait");
  if (detail::take_pending_cancel(t)) {
    w->state = SyncWaiter::kCancelled;
    return false;
  }
  std::unique_lock g(m_);
  if (set_.load(std::memory_order_relaxed)) {
    w->state = SyncWaiter::kGranted;
    return false;
  }
  detail::sync_enqueue(waiters_, w, t, h, this, &Event::cancel_hook);
  return true;
}

void Event::set() noexcept {
  detail::WakeChain wake;
  {
    std::lock_guard g(m_);
    // release: what the setter wrote before set() is visible to waiters that
    // see is_set() (the woken ones synchronise through the mutex and the
    // complete_wait CAS on their task's state word).
    set_.store(true, std::memory_order_release);
    wake.add_all(waiters_.take_all(), SyncWaiter::kGranted);
  }
}

bool Event::cancel_hook(detail::Suspension* s) noexcept {
  auto* w = static_cast<SyncWaiter*>(s);
  auto* self = static_cast<Event*>(w->owner);
  std::unique_lock g(self->m_);
  if (w->state != SyncWaiter::kQueued) return false;  // set() won: deliver True
  self->waiters_.remove(w);
  return detail::sync_finish_cancel(w, g);
}

// ---------------------------------------------------------------- Condition

bool Condition::suspend(SyncWaiter* w, std::coroutine_handle<> h) {
  detail::TaskHeader* t = detail::sync_current_task("Condition::wait");
  std::unique_lock g(m_);
  if (detail::take_pending_cancel(t)) {
    g.unlock();
    lock_->release();
    w->state = SyncWaiter::kCancelled;
    return false;
  }
  detail::sync_enqueue(waiters_, w, t, h, this, &Condition::cancel_hook);
  g.unlock();
  // Release the lock only once we are queued, so a notify that follows our
  // release (made under the lock by its holder) cannot miss us. Note: the
  // node may be granted and the task woken before this returns; the runtime
  // resumes it only after this step ends (see task_header.hpp).
  lock_->release();
  return true;
}

Task<void> Condition::wait() {
  if (!lock_->locked()) throw RuntimeError("cannot wait on un-acquired lock");
  std::exception_ptr err;
  try {
    co_await WaitAwaiter{this};
  } catch (const CancelledError&) {
    err = std::current_exception();
  }
  // Re-acquire even if cancelled (§N 94); a cancel meanwhile is kept and
  // re-raised once the lock is held (the latest one, as asyncio does).
  for (;;) {
    try {
      co_await lock_->acquire();
      break;
    } catch (const CancelledError&) {
      err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
}

void Condition::notify_locked(std::size_t n, detail::WakeChain& wake) noexcept {
  while (n > 0 && !waiters_.empty()) {
    wake.add(waiters_.pop_front(), SyncWaiter::kGranted);
    --n;
  }
}

void Condition::notify(std::size_t n) {
  if (!lock_->locked()) throw RuntimeError("cannot notify on un-acquired lock");
  detail::WakeChain wake;
  std::lock_guard g(m_);
  notify_locked(n, wake);
}

void Condition::pass_on() noexcept {
  detail::WakeChain wake;
  std::lock_guard g(m_);
  notify_locked(1, wake);
}

bool Condition::cancel_hook(detail::Suspension* s) noexcept {
  auto* w = static_cast<SyncWaiter*>(s);
  auto* self = static_cast<Condition*>(w->owner);
  std::unique_lock g(self->m_);
  if (w->state == SyncWaiter::kQueued) {
    self->waiters_.remove(w);
    return detail::sync_finish_cancel(w, g);
  }
  // Notified, then cancelled before it ran: hand the wake-up on (3.13, §N 95).
  w->state = SyncWaiter::kCancelled;
  detail::WakeChain wake;
  self->notify_locked(1, wake);
  g.unlock();
  return true;
}

// ---------------------------------------------------------------- Barrier

Barrier::Barrier(std::size_t parties) : parties_(parties) {
  if (parties < 1) throw ValueError("parties must be > 0");
}

bool Barrier::suspend(SyncWaiter* w, std::coroutine_handle<> h) {
  detail::TaskHeader* t = detail::sync_current_task("Barrier::wait");
  if (detail::take_pending_cancel(t)) {
    w->state = SyncWaiter::kCancelled;
    return false;
  }
  detail::WakeChain wake;
  std::unique_lock g(m_);
  if (broken_) {
    w->state = SyncWaiter::kBroken;
    return false;
  }
  w->value = count_++;
  if (count_ == parties_) {
    // The last arrival trips the barrier; a new cycle starts at once.
    count_ = 0;
    wake.add_all(waiters_.take_all(), SyncWaiter::kGranted);
    w->state = SyncWaiter::kGranted;
    return false;
  }
  detail::sync_enqueue(waiters_, w, t, h, this, &Barrier::cancel_hook);
  return true;
}

std::size_t Barrier::WaitAwaiter::await_resume() const {
  switch (w.state) {
    case SyncWaiter::kCancelled:
      detail::throw_cancelled(detail::current_header());
    case SyncWaiter::kBroken:
      throw BrokenBarrierError();
    default:
      return w.value;
  }
}

void Barrier::abort() noexcept {
  detail::WakeChain wake;
  std::lock_guard g(m_);
  broken_ = true;
  count_ = 0;
  wake.add_all(waiters_.take_all(), SyncWaiter::kBroken);
}

void Barrier::reset() noexcept {
  detail::WakeChain wake;
  std::lock_guard g(m_);
  broken_ = false;
  count_ = 0;
  wake.add_all(waiters_.take_all(), SyncWaiter::kBroken);
}

std::size_t Barrier::n_waiting() const {
  std::lock_guard g(m_);
  return count_;
}

bool Barrier::broken() const {
  std::lock_guard g(m_);
  return broken_;
}

bool Barrier::cancel_hook(detail::Suspension* s) noexcept {
  auto* w = static_cast<SyncWaiter*>(s);
  auto* self = static_cast<Barrier*>(w->owner);
  std::unique_lock g(self->m_);
  if (w->state != SyncWaiter::kQueued) return false;  // tripped: keep the index
  self->waiters_.remove(w);
  // Leave the cycle: later arrivals' indices shift down by one.
  --self->count_;
  for (SyncWaiter* o = self->waiters_.front(); o; o = o->next)
    if (o->value > w->value) --o->value;
  return detail::sync_finish_cancel(w, g);
}

}  // namespace weft
