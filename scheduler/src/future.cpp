// future.cpp - the shared state of Future<T>/Promise<T>.
//
// status_ is both the outcome and the futex word that blocking get() sleeps
// on. Completion is claimed with a CAS (kPending -> kSetting) so exactly one
// completer writes the result; the outcome is then published with a seq_cst
// exchange and waiters (an intrusive lock-free stack closed by a sentinel,
// like a task's) are fired once. A thread about to sleep in get() first sets
// kSleepers in the same word, so completing a future nobody blocks on costs
// no futex system call: the completer's exchange sees the flag, or the
// sleeper's futex_wait sees the word changed and does not sleep.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>
#include <weft/future.hpp>
#include <weft/runtime.hpp>

#include "worker.hpp"

namespace weft::detail {

namespace {

void futex_wake_all(std::atomic<std::uint32_t>* a) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(a), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

// Waits while *a == expected, until the absolute CLOCK_MONOTONIC deadline
// (ns; < 0: none). Returns false on timeout.
bool futex_wait(const std::atomic<std::uint32_t>* a, std::uint32_t expected,
                std::int64_t deadline_ns) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (deadline_ns >= 0) {
    ts.tv_sec = deadline_ns / 1000000000;
    ts.tv_nsec = deadline_ns % 1000000000;
    tsp = &ts;
  }
  // FUTEX_WAIT_BITSET takes an absolute deadline on CLOCK_MONOTONIC, the
  // steady_clock of libstdc++.
  long r = syscall(SYS_futex, const_cast<std::uint32_t*>(reinterpret_cast<const std::uint32_t*>(a)),
                   FUTEX_WAIT_BITSET_PRIVATE, expected, tsp, nullptr, FUTEX_BITSET_MATCH_ANY);
  return !(r == -1 && errno == ETIMEDOUT);
}

void future_waiter_fire(WaitNode* n, TaskHeader*) noexcept {
  auto* w = static_cast<FutureWaiter*>(n);
  complete_wait(w->task);
}

bool future_waiter_cancel(Suspension* s) noexcept {
  auto* w = static_cast<FutureWaiter*>(s);
  try {
    return w->core->cancel(cancel_message(w->task));
  } catch (...) {
    return false;
  }
}

}  // namespace

// A done-callback registration. It sits in the future's waiter list (one
// reference) and may be named by a DoneCallbackHandle (another). `state`
// decides, once, whether it runs (kArmed -> kFired, by the completer) or is
// removed (kArmed -> kRemoved, by remove_done_callback): whoever wins the CAS
// owns `cb`.
struct DoneCallbackNode : WaitNode {
  enum : std::uint32_t { kArmed = 0, kFired = 1, kRemoved = 2 };
  std::atomic<std::uint32_t> state{kArmed};
  std::atomic<std::uint32_t> refs{1};
  const FutureCore* core = nullptr;  // identity only, never dereferenced
  CallbackNode* cb = nullptr;
  Worker* loop = nullptr;  // kept valid by the reference on its runtime
};

void done_callback_release(DoneCallbackNode* n) noexcept {
  if (n->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete n;
}

RuntimeImpl* impl_of(Runtime* rt) noexcept { return rt ? &rt->impl() : nullptr; }

namespace {

void future_callback_fire(WaitNode* n, TaskHeader*) noexcept {
  auto* d = static_cast<DoneCallbackNode*>(n);
  RuntimeImpl& rt = d->loop->rt();
  std::uint32_t expected = DoneCallbackNode::kArmed;
  // acq_rel: pairs with the remover's CAS, so exactly one side owns cb.
  if (d->state.compare_exchange_strong(expected, DoneCallbackNode::kFired,
                                       std::memory_order_acq_rel)) {
    d->loop->post_foreign(d->cb);  // dropped if that runtime has shut down
  }
  done_callback_release(d);
  rt.release();
}

}  // namespace

FutureCore::FutureCore(Runtime* rt) noexcept
    : rt_(rt ? &rt->impl() : nullptr), cancel_msg_(nullptr) {
  if (rt_) rt_->add_ref();
}

FutureCore::~FutureCore() {
  // Nodes still registered on a future that dies pending: removed done
  // callbacks and wrap_future followers (which do not keep their source
  // alive). Firing them lets each clean up; they see kPending.
  waiters_.close_and_fire(nullptr);
  // No completer can be running: it holds a reference.
  const Status s = status();
  if (s == kError) {
    error_.~exception_ptr();
  } else if (s == kCancelled) {
    delete cancel_msg_;
  }
  if (rt_) rt_->release();
}

const std::string& FutureCore::cancel_message() const noexcept {
  static const std::string empty;
  return status() == kCancelled && cancel_msg_ ? *cancel_msg_ : empty;
}

bool FutureCore::begin_set() noexcept {
  std::uint32_t s = status_.load(std::memory_order_relaxed);
  do {
    if ((s & kStatusMask) != kPending) return false;
  } while (!status_.compare_exchange_weak(s, (s & kSleepers) | kSetting, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
  return true;
}

void FutureCore::finish_set(Status s) noexcept {
  const std::uint32_t was = status_.exchange(s, std::memory_order_seq_cst);
  // Whoever completes holds a reference (a Promise, a Future, or the awaiter
  // whose task is being cancelled), so the state outlives the firing even if
  // a woken waiter drops its own reference at once.
  waiters_.close_and_fire(nullptr);
  if (was & kSleepers) futex_wake_all(&status_);
}

void FutureCore::set_exception(std::exception_ptr e) {
  if (!e) throw std::invalid_argument("weft::Promise::set_exception: null exception_ptr");
  if (!begin_set()) throw InvalidStateError("weft::Promise::set_exception: future already done");
  ::new (static_cast<void*>(&error_)) std::exception_ptr(std::move(e));
  finish_set(kError);
}

bool FutureCore::cancel(const std::string& msg) {
  if (!begin_set()) return false;
  // Written by the thread that won begin_set, before finish_set publishes
  // kCancelled with a seq_cst store: a reader that sees kCancelled (acquire)
  // sees the pointer. Out of memory: the cancel stands, without its message.
  if (!msg.empty()) {
    try {
      cancel_msg_ = new std::string(msg);
    } catch (...) {
    }
  }
  finish_set(kCancelled);
  return true;
}

void FutureCore::check() const {
  switch (status()) {
    case kValue:
      return;
    case kError:
      std::rethrow_exception(error_);
    case kCancelled:
      throw CancelledError(cancel_message());
    default:
      throw InvalidStateError("Result is not set.");
  }
}

std::exception_ptr FutureCore::exception() const {
  switch (status()) {
    case kValue:
      return nullptr;
    case kError:
      return error_;
    case kCancelled:
      throw CancelledError(cancel_message());
    default:
      throw InvalidStateError("Exception is not set.");
  }
}

bool FutureCore::wait_blocking(std::int64_t deadline_ns) const {
  if (Worker::current() != nullptr)
    throw RuntimeError(
        "weft::Future::get() called on a worker thread; it would block the loop (co_await it "
        "instead)");
  auto* self = const_cast<FutureCore*>(this);
  for (;;) {
    if (done()) return true;
    // The flag stays set once raised (another thread may still sleep): at
    // worst one futex call too many for this future's completer.
    const std::uint32_t s =
        self->status_.fetch_or(kSleepers, std::memory_order_seq_cst) | kSleepers;
    if ((s & kStatusMask) >= kValue) return true;
    if (!futex_wait(&status_, s, deadline_ns) && !done()) return false;
  }
}

bool FutureCore::add_waiter(WaitNode* n) noexcept { return waiters_.push(n); }

DoneCallbackNode* FutureCore::add_done_callback(CallbackNode* cb, bool want_handle) {
  Worker* loop = Worker::current();
  if (loop == nullptr) {
    if (rt_ == nullptr) {
      cb->release();
      throw RuntimeError(
          "weft::Future::add_done_callback: called outside the runtime on a future bound to no "
          "runtime");
    }
    loop = rt_->workers[0].get();
  }
  if (loop->rt().shut_down.load(std::memory_order_acquire)) {
    cb->release();
    throw RuntimeError("weft::Future::add_done_callback: the runtime has shut down");
  }
  DoneCallbackNode* d;
  try {
    d = new DoneCallbackNode;
  } catch (...) {
    cb->release();
    throw;
  }
  d->fire = future_callback_fire;
  d->cb = cb;
  d->loop = loop;
  d->core = this;
  if (want_handle) d->refs.store(2, std::memory_order_relaxed);
  loop->rt().add_ref();
  if (!add_waiter(d)) {
    future_callback_fire(d, nullptr);  // already done: still queued, never run inline
  }
  return want_handle ? d : nullptr;
}

std::size_t FutureCore::remove_done_callback(DoneCallbackNode* d) noexcept {
  if (d == nullptr || d->core != this) return 0;
  std::uint32_t expected = DoneCallbackNode::kArmed;
  if (!d->state.compare_exchange_strong(expected, DoneCallbackNode::kRemoved,
                                        std::memory_order_acq_rel))
    return 0;
  // We own cb now: release its captures (a copy of this future among them)
  // at once, so a removed callback cannot keep its future alive. The node
  // itself stays in the list until the future completes or dies.
  CallbackNode* cb = std::exchange(d->cb, nullptr);
  cb->release();
  return 1;
}

bool future_await_suspend(FutureWaiter* w, std::coroutine_handle<> h) {
  TaskHeader* t = current_header();
  if (t == nullptr) throw_no_task("Future await");
  if (take_pending_cancel(t)) {
    // A pending cancel is forwarded to the awaited future (§C 30), as
    // asyncio's Task.__step does with _must_cancel.
    if (!w->core->cancel(cancel_message(t))) rearm_cancel(t);
    return false;
  }
  w->task = t;
  w->fire = future_waiter_fire;
  w->cancel = future_waiter_cancel;
  suspend_at(t, w, h);
  if (!w->core->add_waiter(w)) {
    t->waiting_on = nullptr;
    return false;
  }
  return true;
}

}  // namespace weft::detail
