// watch.cpp - Watch: a task waiting on a set of tasks (see
// weft/detail/watch.hpp for the protocol).
#include <weft/detail/watch.hpp>

namespace weft::detail {

void watch_fire(WaitNode* wn, TaskHeader* t) noexcept {
  auto* n = static_cast<WatchNode*>(wn);
  n->watch->fired(n, t);
}

bool watch_cancel(Suspension* s) noexcept {
  auto* w = static_cast<WatchWait*>(s);
  Watch* watch = w->watch;
  TaskHeader* wake_me = nullptr;
  std::string msg;
  try {
    msg = cancel_message(w->task);
  } catch (...) {
  }
  {
    std::lock_guard g(watch->m_);
    if (watch->armed_ != w) return false;  // completed meanwhile: the worker re-arms
    w->cancelled = true;
    try {
      w->cancel_message = msg;
    } catch (...) {
    }
    if (watch->on_cancel_locked(w)) wake_me = watch->disarm_locked();
  }
  if (wake_me) Watch::finish_wake(wake_me);
  return true;  // either completed now or completes when the condition holds
}

bool Watch::on_cancel_locked(WatchWait* w) noexcept {
  if (!w->cancel_children) return true;
  cancel_unfinished_locked(w->cancel_message);
  return ready_locked(*w);
}

void Watch::unreserve() noexcept {
  TaskHeader* wake_me = nullptr;
  {
    std::lock_guard g(m_);
    --added_;
    if (armed_ && ready_locked(*armed_)) wake_me = disarm_locked();
  }
  if (wake_me) finish_wake(wake_me);
}

void Watch::add(TaskHeader* t, std::size_t index, bool reserved) {
  auto* n = new WatchNode;
  n->fire = watch_fire;
  n->watch = this;
  n->index = index;
  n->task = TaskRef(t);
  add_ref();  // held by the node until it fires
  TaskHeader* wake_me = nullptr;
  {
    std::lock_guard g(m_);
    if (!reserved) ++added_;
    n->live_next = live_;
    if (live_) live_->live_prev = n;
    live_ = n;
    if (!add_waiter(t, n))
      wake_me = record_locked(n, t);  // already finished
    else
      n = nullptr;
  }
  if (n) {
    if (wake_me) finish_wake(wake_me);
    delete n;
    release();
  }
}

TaskHeader* Watch::record_locked(WatchNode* n, TaskHeader* t) noexcept {
  if (n->live_prev)
    n->live_prev->live_next = n->live_next;
  else
    live_ = n->live_next;
  if (n->live_next) n->live_next->live_prev = n->live_prev;
  ++done_;
  if (order_.size() < order_.capacity()) order_.push_back(n->index);
  std::uint32_t s = t->state.load(std::memory_order_acquire);
  if (s & TaskHeader::kOutcomeCancelled) {
    if (first_failure_ == npos) first_failure_ = n->index;
  } else if (s & TaskHeader::kOutcomeError) {
    if (first_failure_ == npos) first_failure_ = n->index;
    if (first_error_ == npos) first_error_ = n->index;
    if (retrieve_errors_) t->state.fetch_or(TaskHeader::kRetrieved, std::memory_order_relaxed);
  }
  on_done_locked(t, n->index);
  if (armed_ && ready_locked(*armed_)) return disarm_locked();
  return nullptr;
}

void Watch::fired(WatchNode* n, TaskHeader* t) noexcept {
  TaskHeader* wake_me;
  {
    std::lock_guard g(m_);
    wake_me = record_locked(n, t);
  }
  if (wake_me) finish_wake(wake_me);
  delete n;  // drops its task reference (never the task's last: it is completing)
  release();
}

bool Watch::ready_locked(const WatchWait& w) const noexcept {
  std::size_t done = expired_at_ != npos ? expired_at_ : done_;
  std::size_t want = w.min_done == WatchWait::kAll ? added_ : w.min_done;
  if (done >= want) return true;
  if (w.on_failure && first_failure_ != npos) return true;
  if (w.on_error && first_error_ != npos) return true;
  return false;
}

TaskHeader* Watch::disarm_locked() noexcept {
  WatchWait* w = armed_;
  armed_ = nullptr;
  return w->task;
}

void Watch::finish_wake(TaskHeader* t) noexcept {
  complete_wait(t);
  release_ref(t);  // the reference taken when the wait was armed
}

bool Watch::suspend(WatchWait* w, std::coroutine_handle<> h) {
  TaskHeader* t = current_header();
  if (t == nullptr) throw_no_task("wait");
  w->task = t;
  w->watch = this;
  w->cancel = watch_cancel;
  const bool cancel_now = take_pending_cancel(t);
  std::string msg = cancel_now ? cancel_message(t) : std::string();
  std::lock_guard g(m_);
  if (cancel_now) {
    w->cancelled = true;
    w->cancel_message = std::move(msg);
    if (on_cancel_locked(w)) return false;
  }
  if (ready_locked(*w)) return false;
  if (expired_at_ != npos) {
    w->timed_out = true;
    return false;
  }
  suspend_at(t, w, h);
  detail::add_ref(t);
  armed_ = w;
  return true;
}

void Watch::expire() noexcept {
  TaskHeader* wake_me = nullptr;
  {
    std::lock_guard g(m_);
    if (expired_at_ == npos) expired_at_ = done_;
    if (armed_) {
      armed_->timed_out = true;
      wake_me = disarm_locked();
    }
  }
  if (wake_me) finish_wake(wake_me);
}

void Watch::cancel_unfinished(const std::string& msg) noexcept {
  std::lock_guard g(m_);
  cancel_unfinished_locked(msg);
}

void Watch::cancel_unfinished_locked(const std::string& msg) noexcept {
  // request_cancel only counts, flags and wakes: it never calls back into a
  // Watch, so holding the lock here cannot deadlock.
  for (WatchNode* n = live_; n; n = n->live_next) request_cancel(n->task.header(), &msg);
}

}  // namespace weft::detail
