// weft/sync/channel.hpp - Channel<T>, a multi-producer multi-consumer channel
// (Tokio's mpsc, and like Go's channels open to many receivers).
//
// Channel<T>(capacity) is bounded (send waits while `capacity` items are
// buffered); Channel<T>::unbounded() never makes a sender wait. A Channel
// object is a cheap, copyable handle on shared state: give one copy to each
// producer and consumer. close() ends the channel: further sends throw
// ChannelClosed (the item is not sent), blocked senders throw ChannelClosed,
// and receivers drain what is buffered, then receive std::nullopt.
//
// Items are reserved, not merely signalled (unlike Queue): a send to a
// waiting receiver moves the item into that receiver's awaiter, and a
// receive from a full buffer pulls the first blocked sender's item in. A
// recv() cancelled after being handed an item but before it ran gives the
// item back (to the next receiver or the front of the buffer) and raises
// CancelledError; a cancelled send() either delivered its item (it then
// completes normally, the cancel raised at the next suspension point) or did
// not. No item is lost or duplicated.
//
// Cost: one short spinlock section per send/recv (detail::SpinLock says
// why not std::mutex here); no allocation except the buffer's own growth.
//
// Threads: every member may be called from any thread. try_send(),
// try_recv() and close() also from threads outside the runtime, and
// blocking_send()/blocking_recv() only from those (Tokio's blocking_send and
// blocking_recv): they block the calling thread, queued FIFO with the tasks
// that wait, and throw RuntimeError on a worker thread, whose loop they
// would stall. send()/recv() must be awaited inside a weft task.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <weft/loop.hpp>
#include <weft/sync/detail/wait_list.hpp>
#include <weft/sync/errors.hpp>

namespace weft {
namespace detail {

template <class T>
struct ChannelState {
  explicit ChannelState(std::size_t cap) : capacity(cap) {}
  std::atomic<std::size_t> refs{1};
  const std::size_t capacity;  // 0: unbounded
  SpinLock m;                  // see SpinLock for why not std::mutex
  std::deque<T> buf;
  bool closed = false;
  WaitList receivers;  // SyncWaiter::value points at the awaiter's optional<T>
  WaitList senders;    // SyncWaiter::value points at the awaiter's T
};

}  // namespace detail

template <class T>
class Channel {
  using State = detail::ChannelState<T>;
  using SyncWaiter = detail::SyncWaiter;

 public:
  /// A bounded channel. ValueError if capacity == 0 (use unbounded()).
  explicit Channel(std::size_t capacity) : s_(new State(capacity)) {
    if (capacity == 0) {
      delete s_;
      throw ValueError("Channel capacity must be > 0 (use Channel::unbounded())");
    }
  }
  /// A channel whose send never waits.
  static Channel unbounded() { return Channel(new State(0)); }

  Channel(const Channel& o) noexcept : s_(o.s_) {
    s_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  Channel(Channel&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Channel& operator=(Channel o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~Channel() {
    if (s_ && s_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s_;
  }

  struct SendAwaiter {
    State* s;
    T item;
    SyncWaiter w{};
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      detail::TaskHeader* t = detail::sync_current_task("Channel::send");
      detail::WakeChain wake;
      std::lock_guard g(s->m);
      if (Channel::try_send_locked(s, item, wake)) {
        w.state = SyncWaiter::kGranted;
        return false;
      }
      if (s->closed) {
        w.state = SyncWaiter::kBroken;
        return false;
      }
      if (detail::take_pending_cancel(t)) {
        w.state = SyncWaiter::kCancelled;
        return false;
      }
      w.value = reinterpret_cast<std::uintptr_t>(&item);
      detail::sync_enqueue(s->senders, &w, t, h, s, &Channel::send_cancel);
      return true;
    }
    void await_resume() const {
      if (w.state == SyncWaiter::kCancelled) detail::throw_cancelled(detail::current_header());
      if (w.state == SyncWaiter::kBroken) throw ChannelClosed();
    }
  };
  /// Sends `item`, waiting while the buffer is full. Throws ChannelClosed if
  /// closed (before or while waiting), CancelledError if cancelled while
  /// waiting; in both cases the item was not sent.
  SendAwaiter send(T item) { return SendAwaiter{s_, std::move(item)}; }

  /// Sends without waiting: false (item untouched) if the buffer is full.
  /// Throws ChannelClosed if closed. Any thread, also outside the runtime.
  bool try_send(T& item) {
    detail::WakeChain wake;
    std::lock_guard g(s_->m);
    if (try_send_locked(s_, item, wake)) return true;
    if (s_->closed) throw ChannelClosed();
    return false;
  }
  bool try_send(T&& item) { return try_send(item); }

  /// Sends `item` from a thread outside the runtime, blocking the thread
  /// while the buffer is full (Tokio's blocking_send). Throws ChannelClosed
  /// if the channel is closed before or while it blocks (the item is then
  /// not sent), as send() does; RuntimeError if called on a worker thread
  /// of a runtime (inside a task, use co_await send()).
  void blocking_send(T item) {
    check_not_worker("blocking_send", "co_await send()");
    detail::ThreadWaiter w;
    {
      detail::WakeChain wake;
      std::lock_guard g(s_->m);
      if (try_send_locked(s_, item, wake)) return;
      if (s_->closed) throw ChannelClosed();
      w.value = reinterpret_cast<std::uintptr_t>(&item);
      w.owner = s_;
      w.state = SyncWaiter::kQueued;
      s_->senders.push_back(&w);  // a receiver moves `item` out, or close() breaks us
    }
    w.wait();
    if (w.state == SyncWaiter::kBroken) throw ChannelClosed();
  }

  struct RecvAwaiter {
    State* s;
    std::optional<T> slot{};
    SyncWaiter w{};
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      detail::TaskHeader* t = detail::sync_current_task("Channel::recv");
      detail::WakeChain wake;
      std::lock_guard g(s->m);
      if (Channel::try_recv_locked(s, slot, wake) || s->closed) return false;
      if (detail::take_pending_cancel(t)) {
        w.state = SyncWaiter::kCancelled;
        return false;
      }
      w.value = reinterpret_cast<std::uintptr_t>(&slot);
      detail::sync_enqueue(s->receivers, &w, t, h, s, &Channel::recv_cancel);
      return true;
    }
    std::optional<T> await_resume() {
      if (w.state == SyncWaiter::kCancelled) detail::throw_cancelled(detail::current_header());
      if (slot && detail::sync_cancelled_after_grant(w)) {
        // Handed an item, then cancelled before running: a task that returns
        // with a cancel pending ends cancelled and would drop the item, so
        // give it back (to the front) and raise as asyncio does.
        Channel::give_back(s, std::move(*slot));
        detail::throw_cancelled(w.task);
      }
      return std::move(slot);
    }
  };
  /// Receives the next item; std::nullopt once closed and drained. Throws
  /// CancelledError if cancelled while waiting (no item was taken).
  RecvAwaiter recv() noexcept { return RecvAwaiter{s_}; }
  /// Receives without waiting: nullopt if nothing is buffered.
  std::optional<T> try_recv() {
    std::optional<T> v;
    detail::WakeChain wake;
    std::lock_guard g(s_->m);
    try_recv_locked(s_, v, wake);
    return v;
  }

  /// Receives the next item from a thread outside the runtime, blocking the
  /// thread while nothing is buffered (Tokio's blocking_recv); std::nullopt
  /// once closed and drained, as recv(). Throws RuntimeError if called on a
  /// worker thread of a runtime (inside a task, use co_await recv()).
  std::optional<T> blocking_recv() {
    check_not_worker("blocking_recv", "co_await recv()");
    std::optional<T> slot;
    detail::ThreadWaiter w;
    {
      detail::WakeChain wake;
      std::lock_guard g(s_->m);
      if (try_recv_locked(s_, slot, wake) || s_->closed) return slot;
      w.value = reinterpret_cast<std::uintptr_t>(&slot);
      w.owner = s_;
      w.state = SyncWaiter::kQueued;
      s_->receivers.push_back(&w);  // a sender fills `slot`, or close() ends it
    }
    w.wait();
    return slot;
  }

  /// Closes the channel (idempotent). Never throws. Any thread.
  void close() noexcept {
    detail::WakeChain wake;
    std::lock_guard g(s_->m);
    s_->closed = true;
    // Waiting receivers exist only while the buffer is empty: they get the end.
    wake.add_all(s_->receivers.take_all(), SyncWaiter::kGranted);
    wake.add_all(s_->senders.take_all(), SyncWaiter::kBroken);
  }
  bool is_closed() const {
    std::lock_guard g(s_->m);
    return s_->closed;
  }
  /// Buffered items.
  std::size_t size() const {
    std::lock_guard g(s_->m);
    return s_->buf.size();
  }
  std::size_t capacity() const noexcept { return s_->capacity; }

 private:
  explicit Channel(State* s) noexcept : s_(s) {}

  // Blocking a worker thread would stall its loop (and every task on it).
  static void check_not_worker(const char* what, const char* instead) {
    if (Loop::current() != nullptr)
      throw RuntimeError(std::string("weft::Channel::") + what +
                         ": cannot block a worker thread of a runtime; inside a task use " +
                         instead);
  }

  static bool try_send_locked(State* s, T& item, detail::WakeChain& wake) {
    if (s->closed) return false;
    if (SyncWaiter* r = s->receivers.pop_front()) {
      reinterpret_cast<std::optional<T>*>(r->value)->emplace(std::move(item));
      wake.add(r, SyncWaiter::kGranted);
      return true;
    }
    if (s->capacity != 0 && s->buf.size() >= s->capacity) return false;
    s->buf.push_back(std::move(item));
    return true;
  }
  // Returns an item a cancelled receiver was handed: to the next waiting
  // receiver, else to the front of the buffer (which may then hold one item
  // more than its capacity, briefly).
  static void give_back(State* s, T&& item) {
    detail::WakeChain wake;
    std::lock_guard g(s->m);
    if (SyncWaiter* r = s->receivers.pop_front()) {
      reinterpret_cast<std::optional<T>*>(r->value)->emplace(std::move(item));
      wake.add(r, SyncWaiter::kGranted);
      return;
    }
    s->buf.push_front(std::move(item));
  }
  static bool try_recv_locked(State* s, std::optional<T>& out, detail::WakeChain& wake) {
    if (s->buf.empty()) return false;
    out.emplace(std::move(s->buf.front()));
    s->buf.pop_front();
    if (SyncWaiter* w = s->senders.pop_front()) {
      s->buf.push_back(std::move(*reinterpret_cast<T*>(w->value)));
      wake.add(w, SyncWaiter::kGranted);
    }
    return true;
  }
  // A granted send/receive already moved its item: keep the result, let the
  // runtime re-arm the cancel (return false). A queued one just leaves.
  static bool send_cancel(detail::Suspension* sp) noexcept {
    auto* w = static_cast<SyncWaiter*>(sp);
    auto* s = static_cast<State*>(w->owner);
    std::unique_lock g(s->m);
    if (w->state != SyncWaiter::kQueued) return false;
    s->senders.remove(w);
    return detail::sync_finish_cancel(w, g);
  }
  static bool recv_cancel(detail::Suspension* sp) noexcept {
    auto* w = static_cast<SyncWaiter*>(sp);
    auto* s = static_cast<State*>(w->owner);
    std::unique_lock g(s->m);
    if (w->state != SyncWaiter::kQueued) return false;
    s->receivers.remove(w);
    return detail::sync_finish_cancel(w, g);
  }

  State* s_;
};

}  // namespace weft
