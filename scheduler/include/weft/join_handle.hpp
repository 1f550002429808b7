// weft/join_handle.hpp - spawned tasks: spawn(), JoinHandle<T>, TaskRef.
//
// spawn(task) is asyncio's create_task: it runs none of the task now; the
// first step is queued on the current worker (tasks start in spawn order on a
// worker, though another worker may steal them) and the handle comes back at
// once. A JoinHandle is a reference-counted handle on the task: awaitable
// (yields the result or rethrows the exception), queryable (done, cancelled,
// result, exception) and cancellable. Dropping every handle does not cancel
// the task: it runs on, detached, as a Tokio task does; asyncio users should
// note that weft keeps detached tasks alive (asyncio only holds a weak
// reference).
//
// Cancellation (ASYNCIO_SEMANTICS §C): cancel(msg) is a request, delivered as
// CancelledError at the task's next suspension point; a task cancelled before
// its first step runs none of its body; the task may catch the error and go
// on. cancelling() counts requests, uncancel() withdraws one, and at zero a
// request not yet delivered is dropped (3.13). A request that arrives while
// the task waits on an operation that has already completed does not throw
// the result away: the result is delivered and the cancellation raised at the
// next suspension point. Awaiting a task forwards a cancel of the awaiter to
// it; if it swallows the cancel and returns a value, the awaiter receives the
// value and is not cancelled (§C 35).
//
// A task that ends with an exception nobody retrieved (by awaiting it or by
// result()/exception()) is reported when its last handle goes, to the
// runtime's unhandled-exception hook (stderr by default; always stderr when
// that last handle is dropped outside the runtime's workers, where the
// runtime may no longer exist).
//
// Threads: every member of TaskRef/JoinHandle may be called from any thread.
// Awaiting requires being inside a weft task.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <weft/errors.hpp>
#include <weft/loop.hpp>
#include <weft/task.hpp>

namespace weft {

/// Options for spawn (asyncio's create_task keywords).
///
/// Trivially copyable on purpose: g++ 12 relocates temporaries of a
/// `co_await` full-expression into the coroutine frame bitwise, which breaks
/// a std::string member (its small-string pointer points at the old place).
/// `co_await weft::spawn(t)` builds such a temporary, so the name is a view,
/// copied when the task is spawned.
struct SpawnOptions {
  /// The task's name; empty means the default "Task-<id>".
  std::string_view name = {};
};

class TaskRef;

namespace detail {
// Defined in task.cpp / runtime.cpp.
/// Spawns on the calling worker (weft::spawn), leaving two references (the
/// task's own and the JoinHandle's, which the caller adopts): false,
/// touching nothing, if the thread is not a worker. Throws std::bad_alloc
/// (the name) with nothing set up, so the caller still owns the coroutine.
bool spawn_here(TaskHeader* h, std::coroutine_handle<> root, std::string_view name);
Runtime* current_runtime() noexcept;
void post_done_callback(TaskHeader* h, CallbackNode* cb);
[[noreturn]] void throw_no_loop(const char* what);

struct JoinWaiter : WaitNode, Suspension {
  TaskHeader* waiter = nullptr;
  TaskHeader* target = nullptr;
};
bool join_await_suspend(JoinWaiter* w, std::coroutine_handle<> h);
}  // namespace detail

/// A type-erased reference to a spawned task (what all_tasks() and
/// current_task() return; JoinHandle<T> derives from it).
class TaskRef {
 public:
  TaskRef() noexcept = default;
  explicit TaskRef(detail::TaskHeader* h, bool adopt = false) noexcept : h_(h) {
    if (h_ && !adopt) detail::add_ref(h_);
  }
  TaskRef(const TaskRef& o) noexcept : TaskRef(o.h_) {}
  TaskRef(TaskRef&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  TaskRef& operator=(TaskRef o) noexcept {
    std::swap(h_, o.h_);
    return *this;
  }
  ~TaskRef() {
    if (h_) detail::release_ref(h_);
  }

  explicit operator bool() const noexcept { return h_ != nullptr; }
  friend bool operator==(const TaskRef& a, const TaskRef& b) noexcept { return a.h_ == b.h_; }

  /// True once the task has finished (value, exception or cancelled).
  bool done() const noexcept { return state() & detail::TaskHeader::kComplete; }
  /// True if the task finished cancelled.
  bool cancelled() const noexcept { return state() & detail::TaskHeader::kOutcomeCancelled; }
  /// Requests cancellation (see the header comment). Returns false if the
  /// task is already done. Throws std::bad_alloc only (storing msg).
  bool cancel(const std::string& msg = {}) const { return h_ && detail::request_cancel(h_, &msg); }
  /// Number of cancel requests not withdrawn by uncancel(), counted up to
  /// 32,767 (further requests leave it there). Never throws; any thread.
  int cancelling() const noexcept {
    return h_ ? h_->cancelling.load(std::memory_order_acquire) : 0;
  }
  /// Withdraws one cancel request; returns the new count. At zero a request
  /// not yet delivered is dropped. Never throws.
  int uncancel() const noexcept;
  /// The exception the task ended with, or null if it returned a value.
  /// Throws InvalidStateError while pending, CancelledError if cancelled.
  std::exception_ptr exception() const;
  /// The task's name ("Task-<id>" unless given). Never throws but bad_alloc.
  std::string name() const;
  /// A number unique among the runtime's tasks alive at the same time.
  std::uint32_t id() const noexcept { return h_ ? h_->id : 0; }
  /// Schedules fn(TaskRef) on a loop once the task is done (at once if it
  /// already is); never runs it inside the completion itself (§B 18).
  template <class F>
  void add_done_callback(F&& fn) const {
    TaskRef self(*this);
    detail::post_done_callback(
        h_, detail::make_callback([self, f = std::forward<F>(fn)]() mutable { f(self); }));
  }

  detail::TaskHeader* header() const noexcept { return h_; }

 protected:
  std::uint32_t state() const noexcept {
    return h_ ? h_->state.load(std::memory_order_acquire) : 0;
  }
  /// Throws the outcome if it is an error/cancel; marks it retrieved.
  void check_outcome() const;
  detail::TaskHeader* h_ = nullptr;
};

/// Handle on a spawned Task<T>. See the header comment.
template <class T>
class JoinHandle : public TaskRef {
 public:
  using TaskRef::TaskRef;

  /// The task's value. Throws InvalidStateError while pending,
  /// CancelledError if cancelled, or the task's own exception.
  decltype(auto) result() const& {
    check_outcome();
    return promise().get();
  }
  /// Moves the value out (for move-only T).
  decltype(auto) result() && {
    check_outcome();
    if constexpr (std::is_void_v<T> || std::is_reference_v<T>) {
      return promise().get();
    } else {
      return T(std::move(promise().get()));
    }
  }

  struct Awaiter {
    const JoinHandle* self;
    bool move_out;
    detail::JoinWaiter w;
    bool await_ready() const noexcept { return self->done(); }
    bool await_suspend(std::coroutine_handle<> h) {
      w.target = self->h_;
      return detail::join_await_suspend(&w, h);
    }
    T await_resume() {
      // One cancel request yields one CancelledError: if the awaited task
      // ended cancelled, a request re-armed on us is spent with it.
      if (self->cancelled()) (void)detail::take_pending_cancel(detail::current_header());
      if constexpr (std::is_void_v<T> || std::is_reference_v<T>) {
        return self->result();
      } else if constexpr (std::is_copy_constructible_v<T>) {
        if (move_out) return std::move(*const_cast<JoinHandle*>(self)).result();
        return self->result();
      } else {
        // A move-only value can only be moved out; awaiting an lvalue handle
        // moves it too (the value is then gone from the handle).
        return std::move(*const_cast<JoinHandle*>(self)).result();
      }
    }
  };
  /// Waits for the task and yields its result: a copy, or moved out for
  /// `co_await std::move(handle)` and for move-only T. Rethrows the task's
  /// exception; CancelledError if it was cancelled. Throws RuntimeError if a
  /// task awaits itself.
  Awaiter operator co_await() const& noexcept { return Awaiter{this, false, {}}; }
  Awaiter operator co_await() && noexcept { return Awaiter{this, true, {}}; }

 private:
  // The header is the first member of the standard-layout PromiseBase, so the
  // two addresses are interconvertible.
  detail::TaskPromise<T>& promise() const noexcept {
    return *static_cast<detail::TaskPromise<T>*>(reinterpret_cast<detail::PromiseBase*>(h_));
  }
};

/// Spawns `task` on the calling worker's runtime (asyncio.create_task).
/// Threads: a worker of a runtime. Throws RuntimeError("no running event
/// loop") outside a worker, std::invalid_argument for an empty Task, and
/// std::bad_alloc if a name cannot be stored (the task is then destroyed
/// unstarted).
template <class T>
JoinHandle<T> spawn(Task<T> task, SpawnOptions opts = {}) {
  if (!task.valid()) {
    if (detail::current_runtime() == nullptr) detail::throw_no_loop("spawn");
    throw std::invalid_argument("weft::spawn: empty Task");
  }
  detail::TaskHeader* hdr = &task.handle().promise().header;
  // Two references on success: the task's own and the handle's (adopted).
  if (!detail::spawn_here(hdr, task.handle(), opts.name)) detail::throw_no_loop("spawn");
  (void)task.release();
  return JoinHandle<T>(hdr, /*adopt=*/true);
}

/// The task running on the calling thread (empty between tasks, e.g. in a
/// loop callback). Throws RuntimeError outside a worker (§C 37).
TaskRef current_task();
/// Every task of the current runtime that has not finished.
/// Throws RuntimeError outside a worker; use Runtime::all_tasks() elsewhere.
/// Costs two membarrier(2) calls per other worker (see Runtime::all_tasks).
std::vector<TaskRef> all_tasks();

}  // namespace weft
