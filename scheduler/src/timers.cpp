// timers.cpp - sleep: a timer in the sleeping task's frame, armed on the
// heap of the worker that runs the task when it goes to sleep.
//
// SleepState::phase:
//   kArmed        in the owner's heap
//   kFired        the owner fired it (or cancelled it on its own thread)
//   kCancelPosted another worker asked the owner to cancel it; the frame
//                 cannot resume before the owner handles the inbox item
// Only the owner thread touches the heap; the only cross-thread transition is
// kArmed -> kCancelPosted, by CAS, so a fire and a remote cancel never both
// complete the sleep.
#include <weft/sleep.hpp>

#include "worker.hpp"

namespace weft::detail {

namespace {
enum : std::uint8_t { kArmed = 0, kFired = 1, kCancelPosted = 2 };

void finish(SleepState* st, bool cancelled) noexcept {
  st->cancelled = cancelled;
  complete_wait(st->task);
}

void sleep_fire(TimerNode* t) noexcept {
  SleepState* st = static_cast<SleepState*>(t);
  std::uint8_t expected = kArmed;
  if (st->phase.compare_exchange_strong(expected, kFired, std::memory_order_acq_rel))
    finish(st, false);
  // else: a remote cancel is posted; its inbox item completes the sleep.
}

void sleep_cancel_inbox(InboxItem* item) noexcept {
  auto* st = static_cast<SleepState*>(item);
  auto* owner = static_cast<Worker*>(st->owner);
  if (st->heap_index >= 0) owner->disarm_timer(st);
  finish(st, true);
}

bool sleep_cancel(Suspension* s) noexcept {
  auto* st = static_cast<SleepState*>(s);
  auto* owner = static_cast<Worker*>(st->owner);
  if (Worker::current() == owner) {
    if (st->phase.load(std::memory_order_acquire) != kArmed) return false;
    st->phase.store(kFired, std::memory_order_release);
    owner->disarm_timer(st);
    finish(st, true);
    return true;
  }
  std::uint8_t expected = kArmed;
  if (!st->phase.compare_exchange_strong(expected, kCancelPosted, std::memory_order_acq_rel))
    return false;  // it fired first
  st->run = sleep_cancel_inbox;
  owner->post_inbox(st);
  return true;
}
}  // namespace

bool sleep_suspend(SleepState* st, std::coroutine_handle<> h) {
  TaskHeader* t = current_header();
  Worker* w = Worker::current();
  if (t == nullptr || w == nullptr) throw_no_task("sleep");
  if (take_pending_cancel(t)) {
    st->cancelled = true;
    return false;
  }
  std::int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  if (st->deadline_ns <= now) {
    // sleep(0): one loop iteration, no timer (§D 39).
    suspend_at(t, nullptr, h);
    t->state.fetch_or(TaskHeader::kNotified | TaskHeader::kYielded, std::memory_order_relaxed);
    return true;
  }
  st->task = t;
  st->owner = w;
  st->fire = sleep_fire;
  st->cancel = sleep_cancel;
  w->arm_timer(st);
  suspend_at(t, st, h);
  return true;
}

}  // namespace weft::detail
