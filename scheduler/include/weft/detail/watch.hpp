// weft/detail/watch.hpp - Watch: one task waiting on a set of other tasks.
//
// gather, wait, shield, as_completed and TaskGroup all need the same thing:
// a task suspends until some of a set of tasks have finished, and it may stop
// waiting (cancelled, timed out) while they run on. The core's JoinWaiter
// cannot be withdrawn once registered on a task (it lives in the waiter's
// frame and the task's waiter list is a lock-free stack), so a Watch
// registers a small heap node on each watched task instead. The node holds a
// reference on the Watch; the Watch is freed when the last node has fired and
// the owner has let go. The awaiting side is a WatchWait (a Suspension in the
// awaiter's frame) that the Watch "arms" while the task is suspended.
//
// # Who touches what
// Everything mutable sits under one mutex: completions arrive on the threads
// that finish the watched tasks, the cancel hook runs on the thread holding
// the waiter, a timeout on the loop that armed it. Waiting combinators are not
// a hot path (one lock per child completion); the scheduler's hot paths are
// untouched.
//
// # Completing a wait
// Exactly one of {a completion that satisfies the condition, the cancel hook,
// expire()} disarms an armed WatchWait; it stores `done` (release) under the
// lock, and wakes the task after unlocking. While armed the Watch holds a
// reference on the waiting task, so that wake can never touch a freed task
// even if a concurrent cancel-wake resumed and finished it meanwhile.
//
// # Cancellation of the waiter
// What a cancel of the waiting task means differs: wait/shield/as_completed
// stop waiting at once (the watched tasks are not touched); gather cancels the
// unfinished children and keeps waiting (§E 44); a TaskGroup aborts (virtual
// on_cancel_locked).
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <vector>
#include <weft/detail/task_header.hpp>
#include <weft/join_handle.hpp>

namespace weft::detail {

class Watch;

/// A wait on a Watch, embedded in the awaiter (and so in the waiting frame).
struct WatchWait : Suspension {
  static constexpr std::size_t kAll = std::numeric_limits<std::size_t>::max();
  // ---- the condition (set before suspending) ----
  std::size_t min_done = kAll;   // wake once this many finished (kAll: every one)
  bool on_failure = false;       // ... or once one ended with an error or cancelled
  bool on_error = false;         // ... or once one ended with an error (not cancelled)
  bool cancel_children = false;  // a cancel of the waiter cancels the children and waits on
  // ---- the outcome ----
  bool cancelled = false;  // the waiter was cancelled while waiting
  bool timed_out = false;  // expire() ended the wait
  std::string cancel_message;
  TaskHeader* task = nullptr;
  Watch* watch = nullptr;
};

/// A registration on one watched task (heap: it may outlive the waiter).
struct WatchNode : WaitNode {
  Watch* watch = nullptr;
  std::size_t index = 0;
  TaskRef task;
  WatchNode* live_prev = nullptr;  // the Watch's list of unfinished tasks
  WatchNode* live_next = nullptr;
};

class Watch {
 public:
  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

  Watch() = default;
  virtual ~Watch() = default;
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  /// Reserves room for `n` completions in the completion order (so that
  /// recording one never allocates). Owner only, before add().
  void reserve(std::size_t n) {
    std::lock_guard g(m_);
    order_.reserve(n);
  }
  /// Watches task `t` as entry `index`; `reserved`: its slot was counted by
  /// reserve_slot_locked() already. Throws std::bad_alloc.
  void add(TaskHeader* t, std::size_t index, bool reserved = false);
  /// Gives back a slot taken by reserve_slot_locked() whose task never came.
  void unreserve() noexcept;

  /// Awaiter support: false if the condition holds already (no suspension).
  bool suspend(WatchWait* w, std::coroutine_handle<> h);
  /// Ends an armed wait with timed_out, and makes later waits time out once
  /// the completions recorded so far are used up (any thread).
  void expire() noexcept;
  /// Requests cancellation of every unfinished watched task (any thread).
  void cancel_unfinished(const std::string& msg) noexcept;

  // ---- results (under the lock) ----
  std::size_t added() const {
    std::lock_guard g(m_);
    return added_;
  }
  std::size_t done_count() const {
    std::lock_guard g(m_);
    return done_;
  }
  /// Index of the i-th task to finish, or npos if fewer finished.
  std::size_t completed(std::size_t i) const {
    std::lock_guard g(m_);
    return i < order_.size() ? order_[i] : npos;
  }
  std::size_t first_failure() const {
    std::lock_guard g(m_);
    return first_failure_;
  }
  std::size_t first_error() const {
    std::lock_guard g(m_);
    return first_error_;
  }
  /// Marks every error outcome as retrieved as it arrives (gather, groups:
  /// errors that lost the race to be raised are not "never retrieved").
  void retrieve_errors() noexcept { retrieve_errors_ = true; }

 protected:
  /// A watched task finished (lock held). Groups record errors here.
  virtual void on_done_locked(TaskHeader* /*t*/, std::size_t /*index*/) noexcept {}
  /// The armed waiter `w` is being cancelled (lock held). Return true to end
  /// the wait now, false to keep waiting.
  virtual bool on_cancel_locked(WatchWait* w) noexcept;
  void cancel_unfinished_locked(const std::string& msg) noexcept;
  /// Counts a task about to be added, so waits for "all" include it.
  std::size_t reserve_slot_locked() noexcept { return added_++; }
  bool ready_locked(const WatchWait& w) const noexcept;
  /// Disarms the armed waiter; returns the task to wake (call finish_wake).
  TaskHeader* disarm_locked() noexcept;
  static void finish_wake(TaskHeader* t) noexcept;
  void fired(WatchNode* n, TaskHeader* t) noexcept;
  /// Records a completion; returns the task to wake, or null.
  TaskHeader* record_locked(WatchNode* n, TaskHeader* t) noexcept;

  friend void watch_fire(WaitNode*, TaskHeader*) noexcept;
  friend bool watch_cancel(Suspension*) noexcept;

  mutable std::mutex m_;
  std::atomic<std::uint32_t> refs_{1};
  std::size_t added_ = 0;
  std::size_t done_ = 0;
  std::vector<std::size_t> order_;
  std::size_t first_failure_ = npos;
  std::size_t first_error_ = npos;
  std::size_t expired_at_ = npos;  // done_ when expire() ran
  WatchWait* armed_ = nullptr;
  WatchNode* live_ = nullptr;
  bool retrieve_errors_ = false;
};

/// An owning reference to a Watch (or a subclass).
template <class W = Watch>
class WatchRef {
 public:
  WatchRef() noexcept = default;
  explicit WatchRef(W* w) noexcept : w_(w) {}  // adopts
  WatchRef(const WatchRef& o) noexcept : w_(o.w_) {
    if (w_) w_->add_ref();
  }
  WatchRef(WatchRef&& o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
  WatchRef& operator=(WatchRef o) noexcept {
    std::swap(w_, o.w_);
    return *this;
  }
  ~WatchRef() {
    if (w_) w_->release();
  }
  W* operator->() const noexcept { return w_; }
  W* get() const noexcept { return w_; }

 private:
  W* w_ = nullptr;
};

/// co_await watch_until(w, cond): suspends until the condition holds, the
/// waiter is cancelled (see WatchWait), or the Watch expires.
struct WatchResult {
  bool cancelled = false;
  bool timed_out = false;
  std::string cancel_message;
};
struct WatchAwaiter {
  WatchAwaiter(Watch* watch_, std::size_t min_done, bool on_failure, bool on_error,
               bool cancel_children) noexcept
      : watch(watch_) {
    w.min_done = min_done;
    w.on_failure = on_failure;
    w.on_error = on_error;
    w.cancel_children = cancel_children;
  }
  Watch* watch;
  WatchWait w;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return watch->suspend(&w, h); }
  WatchResult await_resume() { return {w.cancelled, w.timed_out, std::move(w.cancel_message)}; }
};
inline WatchAwaiter watch_until(Watch* watch, std::size_t min_done, bool on_failure = false,
                                bool on_error = false, bool cancel_children = false) noexcept {
  return WatchAwaiter(watch, min_done, on_failure, on_error, cancel_children);
}

}  // namespace weft::detail
