// weft/loop.hpp - the event loop each worker thread runs (asyncio's loop).
//
// Every worker of a Runtime runs one Loop; Loop::current() returns the calling
// thread's loop, or null outside a worker (asyncio's get_running_loop, which
// raises instead: use running_loop() for that behaviour). Callbacks scheduled
// on a loop run on that loop's thread, in FIFO order for call_soon; a callback
// scheduled from a running callback runs in the next iteration, after
// everything already queued (ASYNCIO_SEMANTICS §A 1-2). Timers fire in
// deadline order and, unlike CPython, timers with equal deadlines fire in the
// order they were scheduled (§A 4: weft's stricter guarantee). Due timers are
// queued after callbacks already ready (§A 5).
//
// Tasks are not callbacks: a task is not bound to a loop and may move to
// another worker at every suspension (work stealing). The relative order of a
// callback and a task step is therefore not specified.
//
// An exception escaping a callback does not stop the loop: it is reported to
// the runtime's exception handler ("Exception in callback") and later
// callbacks still run (§A 7).
//
// Threads: call_soon, call_later and call_at must be called on the loop's own
// thread and throw RuntimeError otherwise (asyncio's debug-mode check, always
// on here: it costs one comparison). call_soon_threadsafe may be called from
// any thread, inside the runtime or not, and wakes the loop if it sleeps.
// Handle and TimerHandle may be cancelled from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>
#include <weft/clock.hpp>
#include <weft/detail/task_header.hpp>

namespace weft {

class Runtime;
class Loop;

namespace detail {

/// Heap entry of a loop's timer structure. Lives in a callback node or in a
/// sleeping task's frame. Owned by the loop it was armed on.
struct TimerNode {
  std::int64_t deadline_ns = 0;  // steady_clock nanoseconds
  std::uint64_t seq = 0;         // tie-break: scheduling order
  std::int32_t heap_index = -1;  // -1 when not in the heap
  void (*fire)(TimerNode*) noexcept = nullptr;
};

/// A scheduled callback (call_soon, call_later, call_at, done callbacks).
/// Reference counted: the loop holds one reference while it is queued, each
/// Handle holds one.
struct CallbackNode : TimerNode, InboxItem {
  CallbackNode* ready_next = nullptr;  // the loop's ready list
  std::atomic<std::uint32_t> refs{1};
  std::atomic<bool> cancelled{false};
  virtual void invoke() = 0;
  virtual ~CallbackNode() = default;
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

template <class F>
struct CallbackImpl final : CallbackNode {
  template <class G>
  explicit CallbackImpl(G&& g) : fn(std::forward<G>(g)) {}
  void invoke() override { fn(); }
  std::decay_t<F> fn;
};

template <class F>
CallbackNode* make_callback(F&& f) {
  return new CallbackImpl<std::decay_t<F>>(std::forward<F>(f));
}

}  // namespace detail

/// asyncio.Handle: a callback scheduled with call_soon / call_soon_threadsafe.
/// Threads: any thread may copy, cancel or query a Handle.
class Handle {
 public:
  Handle() noexcept = default;
  explicit Handle(detail::CallbackNode* n) noexcept : n_(n) {
    if (n_) n_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  Handle(const Handle& o) noexcept : Handle(o.n_) {}
  Handle(Handle&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
  Handle& operator=(Handle o) noexcept {
    std::swap(n_, o.n_);
    return *this;
  }
  ~Handle() {
    if (n_) n_->release();
  }
  /// Prevents the callback from running if it has not run yet. Never throws.
  void cancel() noexcept {
    if (n_) n_->cancelled.store(true, std::memory_order_release);
  }
  /// True once cancel() was called.
  bool cancelled() const noexcept { return n_ && n_->cancelled.load(std::memory_order_acquire); }

 protected:
  detail::CallbackNode* n_ = nullptr;
};

/// asyncio.TimerHandle: a callback scheduled with call_later / call_at.
class TimerHandle : public Handle {
 public:
  using Handle::Handle;
  /// The deadline the callback is scheduled for (loop.time() + delay).
  TimePoint when() const noexcept {
    return n_ ? TimePoint(std::chrono::nanoseconds(n_->deadline_ns)) : TimePoint{};
  }
};

class Loop {
 public:
  /// The loop of the calling worker thread, or null outside the runtime.
  static Loop* current() noexcept;

  /// Schedules f() to run in this loop's next iteration, FIFO.
  /// Throws RuntimeError if called from another thread or a closed loop.
  template <class F>
  Handle call_soon(F&& f) {
    check_owner("call_soon");
    detail::CallbackNode* n = detail::make_callback(std::forward<F>(f));
    Handle h(n);
    post_soon(n);
    return h;
  }
  /// Schedules f() at time() + delay; a negative delay means "already due"
  /// (still ordered by deadline). Throws RuntimeError off the loop's thread.
  template <class F>
  TimerHandle call_later(Duration delay, F&& f) {
    return call_at(time() + delay, std::forward<F>(f));
  }
  /// Schedules f() at `when`. Throws RuntimeError off the loop's thread.
  template <class F>
  TimerHandle call_at(TimePoint when, F&& f) {
    check_owner("call_at");
    detail::CallbackNode* n = detail::make_callback(std::forward<F>(f));
    n->deadline_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
    TimerHandle h(n);
    post_timer(n);
    return h;
  }
  /// Schedules f() on this loop from any thread and wakes the loop. From the
  /// loop's own thread it is FIFO with call_soon. Throws RuntimeError if the
  /// runtime has shut down.
  template <class F>
  Handle call_soon_threadsafe(F&& f) {
    detail::CallbackNode* n = detail::make_callback(std::forward<F>(f));
    Handle h(n);
    post_threadsafe(n);
    return h;
  }
  /// The loop's clock (asyncio's loop.time()).
  TimePoint time() const noexcept { return Clock::now(); }
  /// The runtime this loop belongs to.
  Runtime& runtime() const noexcept;
  /// This loop's worker index, 0 .. workers-1.
  unsigned index() const noexcept;

  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

 protected:
  Loop() = default;
  ~Loop() = default;

 private:
  void check_owner(const char* what) const;
  void post_soon(detail::CallbackNode* n);
  void post_timer(detail::CallbackNode* n);
  void post_threadsafe(detail::CallbackNode* n);
};

/// asyncio.get_running_loop(): the calling worker's loop.
/// Throws RuntimeError("no running event loop") outside a worker.
Loop& running_loop();

}  // namespace weft
