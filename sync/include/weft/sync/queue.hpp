// weft/sync/queue.hpp - Queue<T>, LifoQueue<T>, PriorityQueue<T> (asyncio's).
//
// maxsize <= 0 means unbounded. put() waits while full, get() while empty;
// each put wakes one blocked getter and each get one blocked putter, FIFO
// (§P 104). As in asyncio a woken getter does not reserve an item: it looks
// again when it runs, and a get_nowait() that ran first may have taken it.
// Items move under the queue's mutex and a get() returns the item it took
// without suspending again, so cancelling a get() or put() never loses or
// duplicates an item (§P 105, 106); a woken-then-cancelled waiter hands its
// wake-up on. task_done()/join() count unfinished items; shutdown() is
// 3.13's (§P 107).
//
// Threads: every member may be called from any thread, including threads
// outside the runtime (put_nowait, get_nowait, task_done, shutdown);
// get(), put() and join() must be awaited inside a weft task.
#pragma once

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>
#include <weft/sync/detail/wait_list.hpp>
#include <weft/sync/errors.hpp>
#include <weft/task.hpp>

namespace weft {
namespace detail {

template <class T>
struct FifoStore {
  std::deque<T> items;
  void push(T&& v) { items.push_back(std::move(v)); }
  T pop() {
    T v = std::move(items.front());
    items.pop_front();
    return v;
  }
};
template <class T>
struct LifoStore {
  std::vector<T> items;
  void push(T&& v) { items.push_back(std::move(v)); }
  T pop() {
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
};
template <class T, class Compare>
struct HeapStore {
  std::vector<T> items;
  // std heaps are max-heaps; asyncio's PriorityQueue pops the smallest.
  struct Rev {
    bool operator()(const T& a, const T& b) const { return Compare{}(b, a); }
  };
  void push(T&& v) {
    items.push_back(std::move(v));
    std::push_heap(items.begin(), items.end(), Rev{});
  }
  T pop() {
    std::pop_heap(items.begin(), items.end(), Rev{});
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
};

template <class T, class Store>
class BasicQueue {
 public:
  /// maxsize <= 0: unbounded (§P 101).
  explicit BasicQueue(std::ptrdiff_t maxsize = 0) : maxsize_(maxsize) {}
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;

  /// Removes and returns an item, waiting while empty. Throws QueueShutDown
  /// once shut down and drained; CancelledError if cancelled while waiting
  /// (no item is taken then).
  Task<T> get() {
    for (;;) {
      bool shut = false;
      if (std::optional<T> v = take(shut)) co_return std::move(*v);
      if (shut) throw QueueShutDown();
      co_await WaitAwaiter{this, kGetter};
    }
  }
  /// Adds an item, waiting while full. Throws QueueShutDown if shut down
  /// (also while waiting); CancelledError if cancelled while waiting (the
  /// item is then not added).
  Task<void> put(T item) {
    for (;;) {
      if (give(item)) co_return;
      co_await WaitAwaiter{this, kPutter};
    }
  }
  /// Throws QueueEmpty if empty (QueueShutDown if also shut down).
  T get_nowait() {
    bool shut = false;
    if (std::optional<T> v = take(shut)) return std::move(*v);
    if (shut) throw QueueShutDown();
    throw QueueEmpty();
  }
  /// Throws QueueFull if full, QueueShutDown if shut down. Any thread.
  void put_nowait(T item) {
    if (!give(item)) throw QueueFull();
  }
  /// Marks one got item processed. ValueError if called more times than
  /// items were put (§P 103).
  void task_done() {
    WakeChain wake;
    std::lock_guard g(m_);
    if (unfinished_ == 0) throw ValueError("task_done() called too many times");
    if (--unfinished_ == 0) wake.add_all(joiners_.take_all(), SyncWaiter::kGranted);
  }
  struct JoinAwaiter {
    BasicQueue* q;
    SyncWaiter w{};
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      TaskHeader* t = sync_current_task("Queue::join");
      std::lock_guard g(q->m_);
      if (q->unfinished_ == 0) return false;
      if (take_pending_cancel(t)) {
        w.state = SyncWaiter::kCancelled;
        return false;
      }
      w.value = kJoiner;
      sync_enqueue(q->joiners_, &w, t, h, q, &BasicQueue::cancel_hook);
      return true;
    }
    void await_resume() const {
      if (w.state == SyncWaiter::kCancelled) throw_cancelled(current_header());
    }
  };
  /// Waits until every item put has been marked done.
  JoinAwaiter join() noexcept { return JoinAwaiter{this}; }
  /// Shuts the queue down (§P 107): puts raise QueueShutDown; gets drain,
  /// then raise. immediate: drops the items (each counted done) and wakes
  /// every getter. Never throws but bad_alloc. Any thread.
  void shutdown(bool immediate = false) {
    WakeChain wake;
    std::lock_guard g(m_);
    shut_ = true;
    if (immediate) {
      while (!store_.items.empty()) {
        (void)store_.pop();
        if (unfinished_ > 0) --unfinished_;
      }
      if (unfinished_ == 0) wake.add_all(joiners_.take_all(), SyncWaiter::kGranted);
    }
    wake.add_all(getters_.take_all(), SyncWaiter::kGranted);
    wake.add_all(putters_.take_all(), SyncWaiter::kGranted);
  }
  std::size_t qsize() const {
    std::lock_guard g(m_);
    return store_.items.size();
  }
  bool empty() const { return qsize() == 0; }
  bool full() const {
    std::lock_guard g(m_);
    return full_locked();
  }
  std::ptrdiff_t maxsize() const noexcept { return maxsize_; }

 private:
  static constexpr std::uintptr_t kGetter = 0, kPutter = 1, kJoiner = 2;
  bool full_locked() const noexcept {
    return maxsize_ > 0 && store_.items.size() >= static_cast<std::size_t>(maxsize_);
  }
  std::optional<T> take(bool& shut) {
    WakeChain wake;
    std::lock_guard g(m_);
    if (store_.items.empty()) {
      shut = shut_;
      return std::nullopt;
    }
    std::optional<T> v(store_.pop());
    if (SyncWaiter* p = putters_.pop_front()) wake.add(p, SyncWaiter::kGranted);
    return v;
  }
  // True if added; false if full. Throws QueueShutDown.
  bool give(T& item) {
    WakeChain wake;
    std::lock_guard g(m_);
    if (shut_) throw QueueShutDown();
    if (full_locked()) return false;
    store_.push(std::move(item));
    ++unfinished_;
    if (SyncWaiter* w = getters_.pop_front()) wake.add(w, SyncWaiter::kGranted);
    return true;
  }

  struct WaitAwaiter {
    BasicQueue* q;
    std::uintptr_t kind;
    SyncWaiter w{};
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      TaskHeader* t = sync_current_task("Queue::get/put");
      if (take_pending_cancel(t)) {
        w.state = SyncWaiter::kCancelled;
        return false;
      }
      std::lock_guard g(q->m_);
      bool ready = q->shut_ || (kind == kGetter ? !q->store_.items.empty() : !q->full_locked());
      if (ready) return false;
      w.value = kind;
      sync_enqueue(kind == kGetter ? q->getters_ : q->putters_, &w, t, h, q,
                   &BasicQueue::cancel_hook);
      return true;
    }
    void await_resume() const {
      if (w.state == SyncWaiter::kCancelled) throw_cancelled(current_header());
      if (sync_cancelled_after_grant(w)) {
        q->pass_on(kind);  // woken, cancelled before it ran: hand the wake-up on
        throw_cancelled(w.task);
      }
    }
  };

  void pass_on(std::uintptr_t kind) noexcept {
    WakeChain wake;
    std::lock_guard g(m_);
    pass_on_locked(kind, wake);
  }
  void pass_on_locked(std::uintptr_t kind, WakeChain& wake) noexcept {
    WaitList& list = kind == kGetter ? getters_ : putters_;
    bool can = shut_ || (kind == kGetter ? !store_.items.empty() : !full_locked());
    if (can && !list.empty()) wake.add(list.pop_front(), SyncWaiter::kGranted);
  }

  static bool cancel_hook(Suspension* s) noexcept {
    auto* w = static_cast<SyncWaiter*>(s);
    auto* q = static_cast<BasicQueue*>(w->owner);
    std::unique_lock g(q->m_);
    WaitList& list =
        w->value == kGetter ? q->getters_ : (w->value == kPutter ? q->putters_ : q->joiners_);
    if (w->state == SyncWaiter::kQueued) {
      list.remove(w);
      return sync_finish_cancel(w, g);
    }
    if (w->value == kJoiner) return false;
    // Woken, then cancelled before it ran: hand the wake-up on.
    w->state = SyncWaiter::kCancelled;
    WakeChain wake;
    q->pass_on_locked(w->value, wake);
    g.unlock();
    return true;
  }

  const std::ptrdiff_t maxsize_;
  mutable std::mutex m_;
  Store store_;
  std::size_t unfinished_ = 0;
  bool shut_ = false;
  WaitList getters_, putters_, joiners_;
};

}  // namespace detail

/// FIFO queue (asyncio.Queue).
template <class T>
class Queue : public detail::BasicQueue<T, detail::FifoStore<T>> {
  using detail::BasicQueue<T, detail::FifoStore<T>>::BasicQueue;
};
/// LIFO queue (asyncio.LifoQueue).
template <class T>
class LifoQueue : public detail::BasicQueue<T, detail::LifoStore<T>> {
  using detail::BasicQueue<T, detail::LifoStore<T>>::BasicQueue;
};
/// Smallest-first queue (asyncio.PriorityQueue); Compare is "less".
template <class T, class Compare = std::less<T>>
class PriorityQueue : public detail::BasicQueue<T, detail::HeapStore<T, Compare>> {
  using detail::BasicQueue<T, detail::HeapStore<T, Compare>>::BasicQueue;
};

}  // namespace weft
