// future_set.cpp - FutureSet: one task waiting on many Futures (see
// weft/detail/future_set.hpp for the protocol).
#include <new>
#include <stdexcept>
#include <weft/detail/future_set.hpp>
#include <weft/future.hpp>

namespace weft::detail {

FutureSet::FutureSet(std::size_t n, bool settled) noexcept
    : ctl_(n), refs_(static_cast<std::uint32_t>(n) + 1), n_(n), settled_(settled) {}

FutureSet* FutureSet::make(FutureCore* const* cores, std::size_t n, bool settled) {
  // The count shares a word with the flags, and every node holds a reference.
  if (n >= kCountMask) throw std::length_error("weft::gather: more than 4294967294 futures");
  void* mem = ::operator new(sizeof(FutureSet) + n * sizeof(FutureSetNode));
  auto* s = ::new (mem) FutureSet(n, settled);
  FutureSetNode* nodes = s->nodes();
  for (std::size_t i = 0; i < n; ++i) {
    auto* node = ::new (static_cast<void*>(nodes + i)) FutureSetNode;
    node->fire = &FutureSet::fire;
    node->set = s;
    node->core = cores[i];
    node->index = i;
  }
  return s;
}

void FutureSet::release() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // The nodes are trivially destructible.
  this->~FutureSet();
  ::operator delete(static_cast<void*>(this));
}

void FutureSet::fire(WaitNode* n, TaskHeader*) noexcept {
  auto* node = static_cast<FutureSetNode*>(n);
  node->set->node_fired(node);
}

void FutureSet::node_fired(FutureSetNode* n) noexcept {
  // The future is alive while it fires (its completer, or its destructor if
  // it dies pending, holds it); `n` is not read after the release below.
  const FutureCore::Status st = n->core->status();
  bool wake = false;
  if (st == FutureCore::kError || st == FutureCore::kCancelled) {
    std::size_t none = npos;
    if (first_failure_.compare_exchange_strong(none, n->index, std::memory_order_acq_rel) &&
        !settled_)
      wake = true;
  }
  const std::uint64_t left = ctl_.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if ((left & kCountMask) == 0) wake = true;
  if (wake) want_wake();
  release();
}

void FutureSet::want_wake() noexcept {
  const std::uint64_t old = ctl_.fetch_or(kWakeWanted, std::memory_order_acq_rel);
  // Only the first to want the wake, and only once the task has suspended:
  // before that the task sees kWakeWanted when it arms and does not suspend.
  // complete_wait is the last touch of the task (task_header.hpp).
  if ((old & kArmed) && !(old & kWakeWanted)) complete_wait(task_);
}

void FutureSet::cancel_waiter() noexcept {
  // The waiter raises CancelledError with the request's message (§E 44).
  cancelled_ = true;
  try {
    cancel_message_ = detail::cancel_message(task_);
  } catch (...) {
  }
  // And every future is cancelled. They are alive: the awaiting coroutine
  // holds them while it waits. One already done (or being set by another
  // thread) is left as is.
  FutureSetNode* nodes = this->nodes();
  for (std::size_t i = 0; i < n_; ++i) {
    try {
      (void)nodes[i].core->cancel(cancel_message_);
    } catch (...) {
      // FutureCore::cancel keeps the cancel without its message when out of
      // memory; nothing else throws.
    }
  }
}

bool FutureSet::cancel_hook(Suspension* s) noexcept {
  FutureSet* set = static_cast<FutureSetWait*>(s)->set;
  // Already satisfied: the results stand and the worker re-arms the request.
  if (set->ctl_.load(std::memory_order_acquire) & kWakeWanted) return false;
  // Every future completes now (or is being set by another thread), so the
  // wait ends: the task is woken by the last node, or by the first failure.
  set->cancel_waiter();
  return true;
}

bool FutureSet::suspend(FutureSetWait* w, std::coroutine_handle<> h) {
  TaskHeader* t = current_header();
  if (t == nullptr) throw_no_task("gather");
  w->cancel = &FutureSet::cancel_hook;  // w->set is this (FutureSetRef::wait)
  task_ = t;
  // Cancelled before waiting: the futures are cancelled first, so most
  // register as done; the wait still covers one being set elsewhere.
  if (take_pending_cancel(t)) cancel_waiter();
  suspend_at(t, w, h);
  FutureSetNode* nodes = this->nodes();
  for (std::size_t i = 0; i < n_; ++i)
    if (!nodes[i].core->add_waiter(&nodes[i])) node_fired(&nodes[i]);  // already done
  if (n_ == 0) want_wake();
  const std::uint64_t old = ctl_.fetch_or(kArmed, std::memory_order_acq_rel);
  if (old & kWakeWanted) {
    t->waiting_on = nullptr;
    return false;
  }
  return true;
}

}  // namespace weft::detail
