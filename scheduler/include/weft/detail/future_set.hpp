// weft/detail/future_set.hpp - FutureSet: one task waiting on many Futures,
// woken once.
//
// gather(range of Future<T>) used to wrap every future in a task of its own
// (ensure_future) and watch the tasks: a spawn per future, and one wake of a
// wrapper per completion. Futures completed by threads outside the runtime
// (an executor's jobs) then woke a parked worker once per future: 10,000
// CpuPool jobs gathered that way, or awaited one by one, parked and woke the
// awaiting worker hundreds of times a run (bench cpu_fanout). A FutureSet
// registers one node per future (FutureCore::add_waiter) and wakes the task
// once: when every future is done, or, for gather without return_exceptions,
// when the first one fails or is cancelled (§E 41, 43).
//
// # The control word
// `ctl_` holds the number of nodes not fired yet (low 32 bits), kArmed (the
// task has suspended on the set) and kWakeWanted (the wake condition held).
// A firing node that meets the condition sets kWakeWanted; whoever sets it
// while kArmed is set, or sets kArmed while it is set, owns the wake: the
// firing thread calls complete_wait, the suspending task does not suspend.
// So the task is woken exactly once, and never before it has suspended (its
// resume point is recorded before kArmed is set).
//
// # Lifetime
// The set is one heap block with the nodes in it, counted: one reference per
// node until it fires, one for the awaiting side. After an early wake (the
// first failure) nodes stay registered on futures still pending and fire
// later, into the still counted block; they read their future only while it
// fires (it is alive then), never after.
//
// # Cancellation of the waiter
// The Suspension's hook (run by the worker holding the task, §C) cancels
// every future (asyncio's gather cancels its children, §E 44); they complete,
// so the wait ends, and the awaiter raises CancelledError with the request's
// message even with return_exceptions. A future being set by another thread
// at that moment finishes on its own. If the condition already held, the hook
// leaves the results alone and returns false (the request is re-armed and
// raised at the next suspension point).
//
// Threads: a FutureSet is made and awaited by one task (a worker thread);
// its nodes fire on whatever thread completes each future.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <weft/detail/task_header.hpp>

namespace weft::detail {

class FutureCore;
class FutureSet;

struct FutureSetNode : WaitNode {
  FutureSet* set = nullptr;
  FutureCore* core = nullptr;  // read only while it fires
  std::size_t index = 0;
};

/// The wait, embedded in the awaiter (and so in the waiting frame).
struct FutureSetWait : Suspension {
  FutureSet* set = nullptr;
};

class FutureSet {
 public:
  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

  /// A set over `cores` (n of them, duplicates allowed, none registered yet).
  /// `settled`: wait for all (return_exceptions); else also end at the first
  /// failure. Throws std::bad_alloc, std::length_error past 2^32 - 1 futures.
  static FutureSet* make(FutureCore* const* cores, std::size_t n, bool settled);
  /// Drops the awaiting side's reference.
  void release() noexcept;

  /// Registers the nodes and suspends the current task until the condition
  /// holds; false (no suspension) if it already holds, or on a cancel
  /// pending at the call (the futures are then cancelled; see cancelled()).
  /// Throws RuntimeError outside a task.
  bool suspend(FutureSetWait* w, std::coroutine_handle<> h);

  /// After the wait: the index of the first future that failed or was
  /// cancelled (npos if none), and whether the waiter was cancelled.
  std::size_t first_failure() const noexcept {
    return first_failure_.load(std::memory_order_acquire);
  }
  bool cancelled() const noexcept { return cancelled_; }
  const std::string& cancel_message() const noexcept { return cancel_message_; }

 private:
  static constexpr std::uint64_t kCountMask = 0xffffffffu;
  static constexpr std::uint64_t kArmed = std::uint64_t{1} << 32;
  static constexpr std::uint64_t kWakeWanted = std::uint64_t{1} << 33;

  FutureSet(std::size_t n, bool settled) noexcept;
  ~FutureSet() = default;
  FutureSetNode* nodes() noexcept { return reinterpret_cast<FutureSetNode*>(this + 1); }

  static void fire(WaitNode* n, TaskHeader*) noexcept;
  static bool cancel_hook(Suspension* s) noexcept;
  void node_fired(FutureSetNode* n) noexcept;
  void want_wake() noexcept;
  void cancel_waiter() noexcept;

  std::atomic<std::uint64_t> ctl_;
  std::atomic<std::uint32_t> refs_;
  std::atomic<std::size_t> first_failure_{npos};
  const std::size_t n_;
  const bool settled_;
  TaskHeader* task_ = nullptr;  // written before kArmed is set
  // Written by the awaiting task or its cancel hook (which holds the task),
  // read by the task after it resumes.
  bool cancelled_ = false;
  std::string cancel_message_;
};

/// co_await on a FutureSet (see FutureSet::suspend).
struct FutureSetAwaiter {
  FutureSetWait w;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return w.set->suspend(&w, h); }
  void await_resume() const noexcept {}
};

/// Owns the awaiting side's reference.
class FutureSetRef {
 public:
  explicit FutureSetRef(FutureSet* s) noexcept : s_(s) {}
  FutureSetRef(const FutureSetRef&) = delete;
  FutureSetRef& operator=(const FutureSetRef&) = delete;
  ~FutureSetRef() {
    if (s_) s_->release();
  }
  FutureSet* operator->() const noexcept { return s_; }
  FutureSetAwaiter wait() const noexcept {
    FutureSetAwaiter a;
    a.w.set = s_;
    return a;
  }

 private:
  FutureSet* s_;
};

}  // namespace weft::detail
