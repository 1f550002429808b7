// weft/sync/barrier.hpp - Barrier (asyncio.Barrier).
//
// wait() blocks until `parties` tasks have arrived; each then gets a distinct
// arrival index 0..parties-1 and the barrier starts a new cycle (§O 99).
// abort() breaks it: current and future waiters raise BrokenBarrierError.
// reset() raises BrokenBarrierError in the current waiters and makes the
// barrier usable again. A waiter cancelled before the barrier trips leaves
// (its arrival no longer counts).
//
// Threads: every member may be called from any thread; wait() must be
// awaited inside a weft task.
#pragma once

#include <coroutine>
#include <cstddef>
#include <mutex>
#include <weft/sync/detail/wait_list.hpp>
#include <weft/sync/errors.hpp>

namespace weft {

class Barrier {
 public:
  /// Throws ValueError if parties < 1.
  explicit Barrier(std::size_t parties);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  struct WaitAwaiter {
    Barrier* b;
    detail::SyncWaiter w{};
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) { return b->suspend(&w, h); }
    std::size_t await_resume() const;
  };
  /// Waits for the other parties; returns this task's arrival index. Throws
  /// BrokenBarrierError if the barrier is or becomes broken or is reset,
  /// CancelledError if cancelled while waiting.
  WaitAwaiter wait() noexcept { return WaitAwaiter{this}; }
  /// Breaks the barrier (current and future waiters: BrokenBarrierError).
  void abort() noexcept;
  /// Breaks the current cycle's waiters, then makes the barrier usable again.
  void reset() noexcept;
  std::size_t parties() const noexcept { return parties_; }
  std::size_t n_waiting() const;
  bool broken() const;

 private:
  bool suspend(detail::SyncWaiter* w, std::coroutine_handle<> h);
  static bool cancel_hook(detail::Suspension* s) noexcept;
  const std::size_t parties_;
  std::size_t count_ = 0;
  bool broken_ = false;
  mutable std::mutex m_;
  detail::WaitList waiters_;
};

}  // namespace weft
