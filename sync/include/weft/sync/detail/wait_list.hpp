// weft/sync/detail/wait_list.hpp - the waiter node and FIFO list every sync
// primitive is built from.
//
// # The design
// A task that must wait on a primitive (Lock, Semaphore, Event, Queue, ...)
// puts a SyncWaiter in the primitive's FIFO list. The node lives in the
// awaiter, i.e. in the waiting coroutine's frame, so a wait allocates nothing.
// The list is guarded by one std::mutex per primitive. We chose std::mutex over
// a spinlock on purpose: the 2-core VMs weft is measured on preempt threads
// often, a spinning waker behind a preempted holder burns its whole slice, and
// TSan understands pthread mutexes natively (PLATFORM.md). The uncontended
// fast paths (Lock when free, Semaphore when value > 0, Event when set) are
// one atomic CAS/load and never touch the mutex.
//
// # The node's life (state is guarded by the primitive's mutex)
//   kQueued    in the list; only a waker (under the mutex) or the cancel hook
//              (under the mutex) takes it out.
//   kGranted   a waker took it out and gave it what it waited for (the lock,
//              a permit, a notification), and queued it on a WakeChain. After
//              unlocking, the chain reads the node's `next` and `task`, then
//              calls complete_wait(task): that CAS on the task's state word
//              (acq_rel, see task_header.hpp) publishes the grant, and after it
//              the task may run and free its frame, the node with it, so the
//              waker touches neither again. (A ThreadWaiter, whose `task` is
//              null, is signalled under its own mutex instead; see below.)
//   kCancelled the cancel hook took it out (or a pending cancel was found at
//              the await): await_resume throws CancelledError.
//   kBroken    primitive-specific failure (Barrier broken, Queue shut down...)
//
// # Cancellation (see weft/detail/task_header.hpp)
// The hook runs on the thread holding the task. If the node is still queued
// it is unlinked, marked cancelled and completed at once: a cancelled waiter
// never consumes a wake-up. If a waker already granted it (its wake is in
// flight), the primitive decides: Lock, Semaphore and Condition hand the
// grant on to the next waiter (asyncio 3.13's rule) and the task still raises
// CancelledError; Event and oneshot keep the delivered result and let the
// runtime re-arm the cancel for the next suspension point.
#pragma once

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <mutex>
#include <thread>
#include <weft/detail/intrusive_list.hpp>
#include <weft/detail/task_header.hpp>

namespace weft::detail {

/// A test-and-test-and-set spinlock for the Channel, whose critical sections
/// are a few pointer moves but whose std::mutex, contended by producers on
/// both workers, went to sleep in futex(2) (measured: mpsc_bounded spent its
/// time in futex wake-ups). It spins briefly, then yields the CPU, so a
/// holder preempted on these 2-core VMs costs a yield, not a burnt slice.
/// TSan understands it (plain std::atomic acquire/release).
class SpinLock {
 public:
  void lock() noexcept {
    for (int spins = 0;; ++spins) {
      // acquire: the previous holder's writes are visible to us.
      if (!held_.exchange(true, std::memory_order_acquire)) return;
      while (held_.load(std::memory_order_relaxed)) {
        if (++spins > kSpinsBeforeYield) {
          std::this_thread::yield();
          spins = 0;
        }
      }
    }
  }
  bool try_lock() noexcept { return !held_.exchange(true, std::memory_order_acquire); }
  void unlock() noexcept { held_.store(false, std::memory_order_release); }

 private:
  // ~100 loads is about the length of the longest critical section (a deque
  // push plus a wake-list pop); beyond that the holder is likely preempted.
  static constexpr int kSpinsBeforeYield = 100;
  std::atomic<bool> held_{false};
};

struct SyncWaiter : Suspension {
  enum State : std::uint8_t { kIdle, kQueued, kGranted, kCancelled, kBroken };
  SyncWaiter* prev = nullptr;
  SyncWaiter* next = nullptr;
  TaskHeader* task = nullptr;
  void* owner = nullptr;     // the primitive, for the cancel hook
  std::uintptr_t value = 0;  // primitive-specific (Barrier index, ...)
  State state = kIdle;
};

/// A waiter that is a thread outside the runtime rather than a task (the
/// Channel's blocking_send/blocking_recv): its `task` is null, and its wake
/// sets `woken` and signals the condition variable. It lives on the blocked
/// thread's stack; notify() holds the mutex until it has signalled, so the
/// thread cannot return and destroy the node while notify() still uses it
/// (the mutex may be destroyed right after its unlock, as POSIX allows).
struct ThreadWaiter : SyncWaiter {
  std::mutex m;
  std::condition_variable cv;
  bool woken = false;  // under m
  void notify() noexcept {
    std::lock_guard g(m);
    woken = true;
    cv.notify_one();
  }
  void wait() {
    std::unique_lock g(m);
    cv.wait(g, [this] { return woken; });
  }
};

/// Intrusive FIFO of SyncWaiters. Not thread-safe: guarded by its owner's mutex.
using WaitList = IntrusiveList<SyncWaiter>;

/// A chain of nodes to complete once the primitive's mutex is released.
class WakeChain {
 public:
  WakeChain() = default;
  WakeChain(const WakeChain&) = delete;
  WakeChain& operator=(const WakeChain&) = delete;
  ~WakeChain() { fire(); }
  /// Marks `w` with `s` (under the mutex) and queues its wake.
  void add(SyncWaiter* w, SyncWaiter::State s) noexcept {
    w->state = s;
    w->next = nullptr;
    if (tail_) {
      tail_->next = w;
    } else {
      head_ = w;
    }
    tail_ = w;
  }
  /// Adds a chain from WaitList::take_all.
  void add_all(SyncWaiter* chain, SyncWaiter::State s) noexcept {
    while (chain) {
      SyncWaiter* n = chain->next;
      add(chain, s);
      chain = n;
    }
  }
  /// Completes the queued nodes, in order. Call without the mutex held.
  void fire() noexcept {
    SyncWaiter* w = head_;
    head_ = tail_ = nullptr;
    while (w) {
      SyncWaiter* n = w->next;  // read first: the node may vanish after
      // A null task is a ThreadWaiter (only the Channel queues those). The
      // test is on a field this loads anyway, on the wake path only: the
      // uncontended paths never get here.
      if (w->task != nullptr) [[likely]] {
        complete_wait(w->task);
      } else {
        static_cast<ThreadWaiter*>(w)->notify();
      }
      w = n;
    }
  }

 private:
  SyncWaiter* head_ = nullptr;
  SyncWaiter* tail_ = nullptr;
};

/// The task running on this thread; throws RuntimeError if none.
inline TaskHeader* sync_current_task(const char* what) {
  TaskHeader* t = current_header();
  if (t == nullptr) throw_no_task(what);
  return t;
}

/// Prepares `w` for suspension of `t` at `h` and appends it to `list`.
/// Call with the owner's mutex held.
inline void sync_enqueue(WaitList& list, SyncWaiter* w, TaskHeader* t, std::coroutine_handle<> h,
                         void* owner, bool (*hook)(Suspension*) noexcept) noexcept {
  w->task = t;
  w->owner = owner;
  w->cancel = hook;
  w->state = SyncWaiter::kQueued;
  suspend_at(t, w, h);
  list.push_back(w);
}

/// True if `w` suspended, was granted, and a cancel request reached its task
/// after the grant but before it ran; consumes the request. asyncio raises
/// CancelledError in that case, and the hand-on primitives (Lock, Semaphore,
/// Condition, Queue) then pass the grant on to the next waiter.
inline bool sync_cancelled_after_grant(const SyncWaiter& w) noexcept {
  return w.state == SyncWaiter::kGranted && w.task != nullptr && take_pending_cancel(w.task);
}

/// The end of a cancel hook for a node the hook has unlinked: mark it
/// cancelled, unlock `g` (the owner's mutex), complete it. Returns true.
template <class Mutex>
inline bool sync_finish_cancel(SyncWaiter* w, std::unique_lock<Mutex>& g) noexcept {
  w->state = SyncWaiter::kCancelled;
  g.unlock();
  complete_wait(w->task);  // the task is ours (kRunning): this only marks it notified
  return true;
}

}  // namespace weft::detail
