// weft/future.hpp - Future<T> and Promise<T>: thread-safe one-shot results.
//
// A Promise<T> is the writing end, a Future<T> the reading end of one shared
// result (asyncio.Future and concurrent.futures.Future in one type). Any
// thread may complete it (set_result, set_exception, or cancel through the
// future); any weft task on any worker may co_await it; a thread outside the
// runtime may block on get(), with an optional timeout.
//
// Completing a future that a task awaits wakes that task on a worker of its
// runtime; nothing runs inside set_result but that wake. Done callbacks are
// never run inside set_result/set_exception/cancel: they are queued on a loop
// (the loop of the thread that registered them, or worker 0 of the future's
// runtime when registered from outside), in registration order, also when the
// future was already done (§B 18).
//
// Cancelling a task that awaits a future cancels the future (§C 25), as in
// asyncio; shield it (issue: structured concurrency) to prevent that.
//
// Threads: every member may be called from any thread, except that get()
// throws RuntimeError on a worker thread (it would block the loop: co_await
// instead) and co_await needs a weft task.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <weft/clock.hpp>
#include <weft/detail/frame_alloc.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/errors.hpp>
#include <weft/loop.hpp>

namespace weft {

class Runtime;

namespace detail {

class RuntimeImpl;

/// The type-independent part of a future's shared state (future.cpp).
class FutureCore {
 public:
  enum Status : std::uint32_t {
    kPending = 0,
    kSetting = 1,
    kValue = 2,
    kError = 3,
    kCancelled = 4
  };

  /// Binds to `rt` (may be null) and keeps its internals alive.
  explicit FutureCore(Runtime* rt) noexcept;
  virtual ~FutureCore();

  // Shared states come from the same per-thread recycler as coroutine frames:
  // a one-shot future per message must not cost a malloc.
  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  Status status() const noexcept {
    return static_cast<Status>(status_.load(std::memory_order_acquire));
  }
  bool done() const noexcept { return status() >= kValue; }

  /// Claims the right to complete; false if already completed or claimed.
  bool begin_set() noexcept;
  /// Publishes the outcome and fires waiters; call after begin_set().
  void finish_set(Status s) noexcept;
  /// Gives back a claim taken by begin_set() (the value's constructor threw).
  void abort_set() noexcept { status_.store(kPending, std::memory_order_release); }
  void set_exception(std::exception_ptr e);  // InvalidStateError if done
  bool cancel(const std::string& msg);       // false if done
  /// Throws the stored error / CancelledError; returns if it holds a value.
  /// InvalidStateError while pending.
  void check() const;
  std::exception_ptr exception() const;  // see Future::exception
  /// Blocks the calling foreign thread; false on timeout (deadline_ns < 0: none).
  bool wait_blocking(std::int64_t deadline_ns) const;
  bool add_waiter(WaitNode* n) noexcept;  // false if already done
  void add_done_callback(CallbackNode* cb);
  const std::string& cancel_message() const noexcept { return cancel_msg_; }

 private:
  std::atomic<std::uint32_t> refs_{1};
  std::atomic<std::uint32_t> status_{kPending};  // also the futex word of get()
  std::atomic<std::uint32_t> sleepers_{0};
  WaiterList waiters_;
  RuntimeImpl* rt_;  // counted reference, may be null
  std::exception_ptr error_;
  std::string cancel_msg_;
};

template <class T>
class FutureState final : public FutureCore {
 public:
  using FutureCore::FutureCore;
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
};

struct FutureWaiter : WaitNode, Suspension {
  TaskHeader* task = nullptr;
  FutureCore* core = nullptr;
};
/// Suspends the current task on `core`; false (no suspension) if it
/// completed meanwhile. A pending cancel of the task is forwarded to the
/// future (it is cancelled). Defined in future.cpp.
bool future_await_suspend(FutureWaiter* w, std::coroutine_handle<> h);
Runtime* current_runtime() noexcept;

}  // namespace detail

template <class T>
class Promise;

template <class T>
class Future {
 public:
  Future() noexcept = default;
  Future(const Future& o) noexcept : s_(o.s_) {
    if (s_) s_->add_ref();
  }
  Future(Future&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Future& operator=(Future o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~Future() {
    if (s_) s_->release();
  }

  bool valid() const noexcept { return s_ != nullptr; }
  /// True once completed (value, exception or cancelled).
  bool done() const noexcept { return s_->done(); }
  bool cancelled() const noexcept { return s_->status() == detail::FutureCore::kCancelled; }
  /// Cancels the future; returns false if it was already done (§B 17).
  bool cancel(const std::string& msg = {}) { return s_->cancel(msg); }

  /// The value. Throws InvalidStateError while pending, CancelledError if
  /// cancelled, or the stored exception.
  decltype(auto) result() const {
    s_->check();
    if constexpr (!std::is_void_v<T>) return static_cast<const T&>(*s_->value);
  }
  /// The stored exception (null for a value). Throws InvalidStateError while
  /// pending and CancelledError if cancelled (§B 14-17).
  std::exception_ptr exception() const { return s_->exception(); }

  /// Blocks the calling thread until done and returns result() (a copy).
  /// Throws RuntimeError on a worker thread.
  T get() const {
    s_->wait_blocking(-1);
    return copy_result();
  }
  /// As get(), but throws TimeoutError if not done within `timeout`.
  T get(Duration timeout) const {
    std::int64_t deadline = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                (Clock::now() + timeout).time_since_epoch())
                                .count();
    if (!s_->wait_blocking(deadline)) throw TimeoutError("weft::Future::get: timed out");
    return copy_result();
  }

  /// Queues fn(Future<T>) on a loop once done (see the header comment).
  /// Throws RuntimeError when called outside the runtime on a future that
  /// belongs to no runtime.
  template <class F>
  void add_done_callback(F&& fn) const {
    Future self(*this);
    s_->add_done_callback(
        detail::make_callback([self, f = std::forward<F>(fn)]() mutable { f(self); }));
  }

  struct Awaiter {
    detail::FutureState<T>* s;
    detail::FutureWaiter w;
    bool await_ready() const noexcept { return s->done(); }
    bool await_suspend(std::coroutine_handle<> h) {
      w.core = s;
      return detail::future_await_suspend(&w, h);
    }
    T await_resume() {
      // One cancel request yields one CancelledError (see JoinHandle).
      if (s->status() == detail::FutureCore::kCancelled)
        (void)detail::take_pending_cancel(detail::current_header());
      s->check();
      if constexpr (!std::is_void_v<T>) return T(*s->value);
    }
  };
  /// Waits for the future from a task; yields a copy of the value (§B 20:
  /// awaiting a done future does not suspend).
  Awaiter operator co_await() const noexcept { return Awaiter{s_, {}}; }

 private:
  friend class Promise<T>;
  explicit Future(detail::FutureState<T>* s) noexcept : s_(s) {}
  T copy_result() const {
    s_->check();
    if constexpr (!std::is_void_v<T>) return T(*s_->value);
  }
  detail::FutureState<T>* s_ = nullptr;
};

/// The writing end. Threads: any thread may call any member.
template <class T>
class Promise {
 public:
  /// A new pending future bound to the current runtime (or to `rt`).
  explicit Promise(Runtime* rt = detail::current_runtime()) : s_(new detail::FutureState<T>(rt)) {}
  Promise(Promise&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Promise& operator=(Promise&& o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  ~Promise() {
    if (s_) s_->release();
  }

  /// A reading end (as many as wanted).
  Future<T> get_future() const noexcept {
    s_->add_ref();
    return Future<T>(s_);
  }
  /// Completes with a value. Throws InvalidStateError if already done
  /// (including cancelled), §B 15.
  template <class... A>
  void set_result(A&&... v) {
    if (!s_->begin_set()) throw InvalidStateError("weft::Promise::set_result: future already done");
    if constexpr (std::is_void_v<T>) {
      s_->value.emplace(true);
    } else {
      try {
        s_->value.emplace(std::forward<A>(v)...);
      } catch (...) {
        s_->abort_set();  // give the claim back
        throw;
      }
    }
    s_->finish_set(detail::FutureCore::kValue);
  }
  /// Completes with an exception. Throws InvalidStateError if already done.
  void set_exception(std::exception_ptr e) { s_->set_exception(std::move(e)); }
  bool done() const noexcept { return s_->done(); }

 private:
  detail::FutureState<T>* s_;
};

}  // namespace weft
