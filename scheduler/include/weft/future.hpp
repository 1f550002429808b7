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
// remove_done_callback (§B 19): asyncio removes callbacks by identity, and a
// C++ callable has none (two lambdas may be equal, a std::function cannot be
// compared). So add_done_callback returns a DoneCallbackHandle naming that one
// registration, and remove_done_callback(handle) removes it and returns the
// count removed: 1, or 0 if it already ran (was queued), was removed before,
// or belongs to another future. To remove several, keep several handles.
// A removed callback never runs and its captures are released at once.
//
// wrap_future(f) (§B 21): a future of this runtime is returned as is; a
// future of another runtime (or of none) gets a wrapper bound to the calling
// thread's runtime that completes with the same outcome; cancelling the
// wrapper cancels the source, unless the source already holds an outcome,
// which is then kept. While both are pending, the wrapper and its source keep
// each other alive: complete or cancel one of them (asyncio leaves the same
// cycle to the garbage collector). (wrap_future of a std::future is in
// executor.hpp.)
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

template <class T>
class Future;
template <class T>
class Promise;
class DoneCallbackHandle;

namespace detail {

class RuntimeImpl;
struct DoneCallbackNode;  // future.cpp
void done_callback_release(DoneCallbackNode* n) noexcept;

/// The type-independent part of a future's shared state (future.cpp). States
/// come from the same per-thread recycler as coroutine frames
/// (FrameAllocated): a one-shot future per message must not cost a malloc.
class FutureCore : public FrameAllocated {
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

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    // A count of 1 is this reference alone; another is made only by copying
    // a counted one, so the last release reads instead of a locked decrement.
    if (refs_.load(std::memory_order_acquire) == 1 ||
        refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      delete this;
  }
  Status status() const noexcept {
    return static_cast<Status>(status_.load(std::memory_order_acquire) & kStatusMask);
  }
  bool done() const noexcept { return status() >= kValue; }

  /// Claims the right to complete; false if already completed or claimed.
  bool begin_set() noexcept;
  /// Publishes the outcome and fires waiters; call after begin_set().
  void finish_set(Status s) noexcept;
  /// Gives back a claim taken by begin_set() (the value's constructor threw),
  /// keeping the sleepers' flag.
  void abort_set() noexcept { status_.fetch_and(kSleepers, std::memory_order_acq_rel); }
  void set_exception(std::exception_ptr e);  // InvalidStateError if done
  bool cancel(const std::string& msg);       // false if done
  /// Throws the stored error / CancelledError; returns if it holds a value.
  /// InvalidStateError while pending.
  void check() const;
  std::exception_ptr exception() const;  // see Future::exception
  /// Blocks the calling foreign thread; false on timeout (deadline_ns < 0: none).
  bool wait_blocking(std::int64_t deadline_ns) const;
  bool add_waiter(WaitNode* n) noexcept;  // false if already done
  /// Registers cb; returns a counted reference on the registration (for
  /// remove_done_callback), or null if `want_handle` is false.
  DoneCallbackNode* add_done_callback(CallbackNode* cb, bool want_handle);
  /// 1 if `n` was a registration on this future not yet run or removed.
  std::size_t remove_done_callback(DoneCallbackNode* n) noexcept;
  const std::string& cancel_message() const noexcept;
  /// The runtime this future is bound to (null: none).
  RuntimeImpl* runtime_impl() const noexcept { return rt_; }

 private:
  // status_ holds a Status in its low bits and kSleepers, set by a thread
  // about to block in get() so that completing a future nobody blocks on
  // costs no futex call.
  static constexpr std::uint32_t kStatusMask = 0xff;
  static constexpr std::uint32_t kSleepers = 0x100;

  // Every pending future costs these bytes (a million idle tasks each wait on
  // one), so the layout is packed: the outcome that is not a value shares
  // one word (the exception of kError, or the cancel message of kCancelled,
  // on the heap as it is rare; status_ says which), the sleepers are a flag
  // in the status word, and Future<void> stores no value at all (kValue
  // says it all). 40 bytes for Future<void>.
  std::atomic<std::uint32_t> refs_{1};
  std::atomic<std::uint32_t> status_{kPending};  // also the futex word of get()
  WaiterList waiters_;
  RuntimeImpl* rt_;  // counted reference, may be null
  union {
    std::exception_ptr error_;  // kError: constructed by set_exception
    std::string* cancel_msg_;   // kCancelled: set before it is published; null: empty
  };
};

template <class T>
class FutureState final : public FutureCore {
 public:
  using FutureCore::FutureCore;
  std::optional<T> value;
};

template <>
class FutureState<void> final : public FutureCore {
 public:
  using FutureCore::FutureCore;
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
RuntimeImpl* impl_of(Runtime* rt) noexcept;  // null for null
struct FutureAccess;

}  // namespace detail

/// Names one add_done_callback registration, for remove_done_callback.
/// Threads: any. Holding one keeps a small node alive, not the future.
class DoneCallbackHandle {
 public:
  DoneCallbackHandle() noexcept = default;
  explicit DoneCallbackHandle(detail::DoneCallbackNode* n) noexcept : n_(n) {}
  DoneCallbackHandle(DoneCallbackHandle&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
  DoneCallbackHandle& operator=(DoneCallbackHandle o) noexcept {
    std::swap(n_, o.n_);
    return *this;
  }
  DoneCallbackHandle(const DoneCallbackHandle&) = delete;
  ~DoneCallbackHandle() {
    if (n_) detail::done_callback_release(n_);
  }
  explicit operator bool() const noexcept { return n_ != nullptr; }
  detail::DoneCallbackNode* node() const noexcept { return n_; }

 private:
  detail::DoneCallbackNode* n_ = nullptr;
};

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
  /// Returns a handle for remove_done_callback (ignoring it is fine).
  /// Throws RuntimeError when called outside the runtime on a future that
  /// belongs to no runtime.
  template <class F>
  DoneCallbackHandle add_done_callback(F&& fn) const {
    Future self(*this);
    return DoneCallbackHandle(s_->add_done_callback(
        detail::make_callback([self, f = std::forward<F>(fn)]() mutable { f(self); }), true));
  }
  /// Removes the registration `h` names if it has not been queued yet (§B
  /// 19); returns how many were removed (0 or 1). Never throws.
  std::size_t remove_done_callback(const DoneCallbackHandle& h) const noexcept {
    return s_->remove_done_callback(h.node());
  }

  // Lives in the awaiting coroutine's frame, so it holds the state once
  // (w.core), not twice: a million idle tasks each carry one.
  struct Awaiter {
    detail::FutureWaiter w;
    detail::FutureState<T>* state() const noexcept {
      return static_cast<detail::FutureState<T>*>(w.core);
    }
    bool await_ready() const noexcept { return w.core->done(); }
    bool await_suspend(std::coroutine_handle<> h) { return detail::future_await_suspend(&w, h); }
    T await_resume() {
      detail::FutureState<T>* s = state();
      // One cancel request yields one CancelledError (see JoinHandle).
      if (s->status() == detail::FutureCore::kCancelled)
        (void)detail::take_pending_cancel(detail::current_header());
      s->check();
      if constexpr (!std::is_void_v<T>) return T(*s->value);
    }
  };
  /// Waits for the future from a task; yields a copy of the value (§B 20:
  /// awaiting a done future does not suspend).
  Awaiter operator co_await() const noexcept {
    Awaiter a;
    a.w.core = s_;
    return a;
  }

 private:
  friend class Promise<T>;
  friend struct detail::FutureAccess;
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
    if constexpr (!std::is_void_v<T>) {
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
  friend struct detail::FutureAccess;
  detail::FutureState<T>* s_;
};

namespace detail {

struct FutureAccess {
  template <class T>
  static FutureState<T>* state(const Future<T>& f) noexcept {
    return f.s_;
  }
  template <class T>
  static FutureState<T>* state(const Promise<T>& p) noexcept {
    return p.s_;
  }
};

/// Copies src's outcome into dst once src is done (fired inside src's
/// completion; dst's own done callbacks are still only queued). Defensive:
/// fired by a src destroyed while pending, it cancels dst.
template <class T>
struct ChainNode final : WaitNode {
  FutureState<T>* src = nullptr;  // not counted: the node lives in src's list
  Promise<T> dst;
  explicit ChainNode(Promise<T> d) : dst(std::move(d)) { fire = &ChainNode::on_fire; }
  static void on_fire(WaitNode* n, TaskHeader*) noexcept {
    auto* c = static_cast<ChainNode*>(n);
    FutureState<T>* d = FutureAccess::state(c->dst);
    try {
      switch (c->src->status()) {
        case FutureCore::kValue:
          if constexpr (std::is_void_v<T>) {
            c->dst.set_result();
          } else {
            c->dst.set_result(*c->src->value);
          }
          break;
        case FutureCore::kError:
          c->dst.set_exception(c->src->exception());
          break;
        case FutureCore::kCancelled:
          d->cancel(c->src->cancel_message());
          break;
        default:
          d->cancel("weft::wrap_future: the source future was destroyed while pending");
      }
    } catch (...) {
      // dst already done (its own cancel won), or the copy threw: hand on the
      // copy's error if dst is still open.
      try {
        if (!d->done()) c->dst.set_exception(std::current_exception());
      } catch (...) {
      }
    }
    delete c;
  }
};

/// On dst's completion: if dst was cancelled, cancel src (which keeps an
/// outcome it already has).
template <class T>
struct CancelBackNode final : WaitNode {
  FutureState<T>* dst = nullptr;
  Future<T> src;
  explicit CancelBackNode(Future<T> s) : src(std::move(s)) { fire = &CancelBackNode::on_fire; }
  static void on_fire(WaitNode* n, TaskHeader*) noexcept {
    auto* c = static_cast<CancelBackNode*>(n);
    if (c->dst->status() == FutureCore::kCancelled) {
      try {
        c->src.cancel(c->dst->cancel_message());
      } catch (...) {
      }
    }
    delete c;
  }
};

/// Makes `dst` follow `src` (and cancelling dst cancel src).
template <class T>
void chain_futures(const Future<T>& src, Promise<T> dst) {
  Future<T> dst_f = dst.get_future();
  FutureState<T>* s = FutureAccess::state(src);
  auto* back = new CancelBackNode<T>(src);
  back->dst = FutureAccess::state(dst_f);
  auto* fwd = new ChainNode<T>(std::move(dst));
  fwd->src = s;
  if (!back->dst->add_waiter(back)) CancelBackNode<T>::on_fire(back, nullptr);
  if (!s->add_waiter(fwd)) ChainNode<T>::on_fire(fwd, nullptr);
}

}  // namespace detail

/// asyncio.wrap_future for weft futures (see the header comment): `f` itself
/// if it belongs to the calling thread's runtime, else a follower bound to it.
/// Threads: any (outside the runtime the follower belongs to no runtime).
template <class T>
Future<T> wrap_future(Future<T> f) {
  Runtime* rt = detail::current_runtime();
  detail::RuntimeImpl* here = detail::impl_of(rt);
  if (!f.valid() || detail::FutureAccess::state(f)->runtime_impl() == here) return f;
  Promise<T> p(rt);
  Future<T> out = p.get_future();
  detail::chain_futures(f, std::move(p));
  return out;
}

}  // namespace weft
