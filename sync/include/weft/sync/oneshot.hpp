// weft/sync/oneshot.hpp - oneshot<T>(): a single-use channel (Tokio's oneshot).
//
// auto [tx, rx] = weft::oneshot<int>(); tx.send(42); int v = co_await rx;
//
// Cheaper than Promise/Future on purpose: one allocation (from the per-thread
// frame recycler) holding the value, a state word and the receiver's
// Suspension; send is one CAS plus a wake; no futex, no callbacks, no runtime
// reference. Dropping the sender unsent makes the receiver throw
// ChannelClosed.
//
// Cancellation: a cancelled `co_await rx` either gets the value (if it was
// sent first; the cancel is raised at the next suspension point) or throws
// CancelledError, and the receiver may then be awaited again.
//
// Threads: send() from any thread, also outside the runtime; the receiver is
// awaited by one weft task at a time.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <utility>
#include <weft/detail/frame_alloc.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/sync/errors.hpp>

namespace weft {
namespace detail {

template <class T>
struct OneshotState : Suspension {
  static constexpr std::uint32_t kWaiting = 1;  // a receiver is suspended
  static constexpr std::uint32_t kValue = 2;    // value published
  static constexpr std::uint32_t kClosed = 4;   // sender dropped unsent
  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }

  std::atomic<std::uint32_t> state{0};
  std::atomic<std::uint32_t> refs{2};
  TaskHeader* task = nullptr;  // the suspended receiver (valid while kWaiting)
  bool cancelled = false;      // written by the cancel hook, read by the receiver
  std::optional<T> value;

  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // Publishes `bit` (kValue or kClosed) and wakes a suspended receiver.
  void publish(std::uint32_t bit) noexcept {
    // acq_rel: release publishes `value`; acquire sees the receiver's `task`.
    std::uint32_t old = state.fetch_or(bit, std::memory_order_acq_rel);
    if (old & kWaiting) {
      complete_wait(task);
    }
  }
  static bool cancel_hook(Suspension* s) noexcept {
    auto* st = static_cast<OneshotState*>(s);
    std::uint32_t w = kWaiting;
    // Withdraw the wait unless the sender got there first.
    if (!st->state.compare_exchange_strong(w, 0, std::memory_order_acquire)) return false;
    st->cancelled = true;
    complete_wait(st->task);
    return true;
  }
};

}  // namespace detail

template <class T>
class OneshotSender;
template <class T>
class OneshotReceiver;
template <class T>
std::pair<OneshotSender<T>, OneshotReceiver<T>> oneshot();

template <class T>
class OneshotSender {
 public:
  OneshotSender(OneshotSender&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  OneshotSender& operator=(OneshotSender&& o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~OneshotSender() {
    if (s_) {
      s_->publish(detail::OneshotState<T>::kClosed);
      s_->release();
    }
  }
  /// Sends the value (once: the sender is consumed). Never throws except
  /// what T's constructor throws. Any thread.
  template <class... A>
  void send(A&&... v) && {
    auto* s = std::exchange(s_, nullptr);
    s->value.emplace(std::forward<A>(v)...);
    s->publish(detail::OneshotState<T>::kValue);
    s->release();
  }

 private:
  template <class U>
  friend std::pair<OneshotSender<U>, OneshotReceiver<U>> oneshot();
  explicit OneshotSender(detail::OneshotState<T>* s) noexcept : s_(s) {}
  detail::OneshotState<T>* s_;
};

template <class T>
class OneshotReceiver {
  using State = detail::OneshotState<T>;

 public:
  OneshotReceiver(OneshotReceiver&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  OneshotReceiver& operator=(OneshotReceiver&& o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~OneshotReceiver() {
    if (s_) s_->release();
  }

  struct Awaiter {
    State* s;
    bool await_ready() const noexcept {
      return s->state.load(std::memory_order_acquire) & (State::kValue | State::kClosed);
    }
    bool await_suspend(std::coroutine_handle<> h) {
      detail::TaskHeader* t = detail::current_header();
      if (t == nullptr) detail::throw_no_task("oneshot receive");
      s->cancelled = false;
      if (detail::take_pending_cancel(t)) {
        s->cancelled = true;
        return false;
      }
      s->task = t;
      s->cancel = &State::cancel_hook;
      detail::suspend_at(t, s, h);
      std::uint32_t e = 0;
      // release: `task` is visible to the sender that sees kWaiting.
      if (s->state.compare_exchange_strong(e, State::kWaiting, std::memory_order_acq_rel))
        return true;
      t->waiting_on = nullptr;  // sent or closed meanwhile
      return false;
    }
    T await_resume() {
      if (s->cancelled) {
        s->cancelled = false;
        detail::throw_cancelled(detail::current_header());
      }
      if (!(s->state.load(std::memory_order_acquire) & State::kValue)) throw ChannelClosed();
      return std::move(*s->value);
    }
  };
  /// Waits for the value (moved out: await once). Throws ChannelClosed if the
  /// sender was dropped unsent, CancelledError if cancelled while waiting.
  Awaiter operator co_await() noexcept { return Awaiter{s_}; }

 private:
  template <class U>
  friend std::pair<OneshotSender<U>, OneshotReceiver<U>> oneshot();
  explicit OneshotReceiver(State* s) noexcept : s_(s) {}
  State* s_;
};

/// A new one-shot channel: {sender, receiver}. Throws std::bad_alloc only.
template <class T>
std::pair<OneshotSender<T>, OneshotReceiver<T>> oneshot() {
  auto* s = new detail::OneshotState<T>();
  return {OneshotSender<T>(s), OneshotReceiver<T>(s)};
}

}  // namespace weft
