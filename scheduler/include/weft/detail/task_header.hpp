// weft/detail/task_header.hpp - the state every spawned task carries, and the
// protocol by which tasks are suspended, woken and cancelled.
//
// # Where the header lives
// A spawned task costs one allocation: its coroutine frame. The frame's
// promise is a TaskHeader (and the result, if any), so the header, the result
// and the coroutine's locals share that allocation. A Task<T> that is only
// ever awaited inline uses three words of its header (the state, its caller
// and its exception) and leaves the rest unused; that costs bytes, not time.
//
// # The state word
// `state` holds the scheduling state (who may run the task) and a few flags:
//   kScheduled  the task sits in a run queue, or is about to; exactly one
//               queue holds it. A worker that takes a task for its first
//               step leaves it in kScheduled for that step (no CAS, so a
//               task that ends in its first step pays one state RMW, its
//               completion): only that worker touches it, as with kRunning.
//   kRunning    a worker is resuming it after its first step. Only the
//               thread that set kRunning touches the coroutine and the
//               fields marked "owner".
//   kNotified   a wake arrived while running (or in the first step, or
//               queued for it); the worker requeues the task when the step
//               ends suspended (yield_now uses this on purpose).
//   kComplete   the coroutine has finished; the outcome is published. Set
//               with release order after the result is written, so a reader
//               that sees it with acquire order may read the result.
//   kCancelPending  a cancel request not yet delivered to the coroutine.
//   kStarted    the first step has ended with the body suspended (set by
//               that step's end); a cancel before the first step runs none
//               of the body.
// Wakers (any thread) move idle -> scheduled with a CAS; only the winner
// enqueues, so a task is never in two queues. The worker moves scheduled ->
// running (except for a first step, see kScheduled), and after the resume
// returns running -> idle (or -> scheduled when notified). Because a wake
// during the run only sets kNotified, a completion that races with the
// coroutine's own suspension is never lost and never resumes the coroutine
// on two threads.
//
// # Suspension points and cancellation
// Every weft awaiter that suspends a task embeds a Suspension and records it in
// the header (`waiting_on`) before suspending. task.cancel(msg) from any thread
// only counts the request, sets kCancelPending and wakes the task. The worker
// that then holds the task in kRunning sees the flag and, if the task waits on
// a Suspension that has not completed, calls its `cancel` hook instead of
// resuming. The hook runs with exclusive access to the task, so awaiters need
// no lock against a concurrent resume. The hook returns true when it takes
// responsibility: the operation will complete, either with CancelledError or,
// if it had already finished, normally and with kCancelPending re-armed so the
// request is raised at the next suspension point (cancellation never throws
// away a completed result, e.g. bytes the kernel already moved). It returns
// false when the operation had already completed, and the worker re-arms the
// flag itself. A task is resumed only when its wait is over: the completer
// calls complete_wait(task), which sets kWaitDone in the same CAS that
// schedules (or notifies) the task. That CAS is the completer's last touch of
// the task: once it is visible a worker may resume the task, which may finish
// and free its frame (the Suspension with it) at once. So a completer reads
// everything it needs before calling complete_wait, and nothing after.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <string>

namespace weft {
class Runtime;
}

namespace weft::detail {

struct TaskHeader;

/// A place a task waits. Embedded in every suspending weft awaiter; lives in
/// the coroutine frame, so it outlives the wait.
struct Suspension {
  /// Called at most once per wait, by the thread holding the task in kRunning,
  /// when a cancel request arrives. See the essay above for the contract.
  bool (*cancel)(Suspension*) noexcept = nullptr;
};

/// A registration on a task's completion: a join waiter or a done callback.
/// Fired exactly once, by the thread that completes the task, after the
/// outcome is published.
struct WaitNode {
  WaitNode* next = nullptr;
  void (*fire)(WaitNode*, TaskHeader*) noexcept = nullptr;
};

/// The registrations on a one-shot event (a task's completion, a future's
/// result): a lock-free intrusive stack that any thread may push to until it
/// is closed, once, by whoever completes the event; closing hands back the
/// nodes in registration order so they fire FIFO.
class WaiterList {
 public:
  /// Any thread. False (nothing registered) if already closed.
  bool push(WaitNode* n) noexcept {
    WaitNode* head = head_.load(std::memory_order_acquire);
    do {
      if (head == closed()) return false;
      n->next = head;
    } while (!head_.compare_exchange_weak(head, n, std::memory_order_acq_rel,
                                          std::memory_order_acquire));
    return true;
  }
  /// Closes the list and fires every node, oldest first, with `arg`. Only
  /// the first call finds nodes; later ones do nothing.
  void close_and_fire(TaskHeader* arg) noexcept {
    WaitNode* list = head_.exchange(closed(), std::memory_order_acq_rel);
    if (list == closed()) return;
    WaitNode* rev = nullptr;
    while (list) {
      WaitNode* n = list->next;
      list->next = rev;
      rev = list;
      list = n;
    }
    while (rev) {
      WaitNode* n = rev->next;  // read first: firing may free the node
      rev->fire(rev, arg);
      rev = n;
    }
  }

 private:
  static WaitNode* closed() noexcept { return reinterpret_cast<WaitNode*>(std::uintptr_t{1}); }
  std::atomic<WaitNode*> head_{nullptr};
};

/// A message for one loop's thread from another thread (call_soon_threadsafe,
/// cross-thread cancels of timers and ring operations). See src/inbox.hpp.
struct InboxItem {
  InboxItem* next = nullptr;
  void (*run)(InboxItem*) noexcept = nullptr;
};

/// Cold per-task data, allocated on first use (a name, a cancel message).
/// Kept in a side table keyed by the header (task.cpp), not in the header:
/// most tasks have none, and every task would pay the pointer.
struct TaskExtras {
  std::string name;
  std::string cancel_message;
};

struct TaskHeader {
  static constexpr std::uint32_t kScheduled = 1u << 0;
  static constexpr std::uint32_t kRunning = 1u << 1;
  static constexpr std::uint32_t kNotified = 1u << 2;
  static constexpr std::uint32_t kComplete = 1u << 3;
  static constexpr std::uint32_t kCancelPending = 1u << 4;
  static constexpr std::uint32_t kStarted = 1u << 5;
  static constexpr std::uint32_t kOutcomeError = 1u << 6;      // ended with an exception
  static constexpr std::uint32_t kOutcomeCancelled = 1u << 7;  // ended cancelled
  static constexpr std::uint32_t kRetrieved = 1u << 8;         // someone looked at the outcome
  // Notified by yield_now: requeue behind all ready work.
  static constexpr std::uint32_t kYielded = 1u << 9;
  static constexpr std::uint32_t kWaitDone = 1u << 10;  // the current wait completed
  // The body ended with a CancelledError (set and read by the thread running
  // the task, between unhandled_exception and the final suspend).
  static constexpr std::uint32_t kThrewCancel = 1u << 11;
  // The task has an entry in the side table of TaskExtras (task.cpp); set
  // once, never cleared while the task lives.
  static constexpr std::uint32_t kHasExtras = 1u << 12;
  // The body ended with an exception that the task keeps (see error_slot);
  // set by the thread running the task, in unhandled_exception, before the
  // final suspend publishes kComplete.
  static constexpr std::uint32_t kErrorStored = 1u << 13;
  // add_waiter announced a registration (set before the push, never
  // cleared): complete_task closes the waiter list only if the state it
  // replaces has this bit, so a task nobody waits on completes with one
  // atomic read-modify-write instead of two.
  static constexpr std::uint32_t kHasWaiters = 1u << 14;
  // complete_task unlinked the task from the registry itself (it failed, or
  // its shard is the completing worker's own), so the task's own reference
  // is still held by the worker that ran it, which drops it when the step
  // has ended (Worker::end_step). Without it the reference went to that
  // worker's unregister batch (Worker::defer_unregister).
  static constexpr std::uint32_t kUnlinked = 1u << 15;
  // Bits 16..31: 1 + the index of the worker that last took the task to run
  // (0: none yet), written by that worker's scheduled -> running CAS; read
  // by wakers for the remote_wakes metric only.
  static constexpr unsigned kLastWorkerShift = 16;

  std::atomic<std::uint32_t> state{0};
  std::atomic<std::uint32_t> refs{0};
  TaskHeader* next = nullptr;            // run-queue link (owned by the holding queue)
  std::coroutine_handle<> resume_point;  // owner: innermost suspended coroutine
  // Owner: the current wait, null when none. Once the body has ended (the
  // task never waits again) this word holds the task's exception instead:
  // see error_slot.
  Suspension* waiting_on = nullptr;
  WaiterList waiters;
  // A spawned task's links in the runtime registry (under the shard lock).
  // A Task awaited inline is never in the registry; its first link word
  // holds the coroutine that awaits it (PromiseBase::caller).
  union {
    TaskHeader* reg_prev = nullptr;
    void* inline_caller;
  };
  TaskHeader* reg_next = nullptr;
  // The runtime of a spawned task; null while a Task is only awaited inline.
  Runtime* runtime = nullptr;
  // Cancel requests not withdrawn (TaskRef::cancelling), saturating at
  // INT16_MAX (request_cancel).
  std::atomic<std::int16_t> cancelling{0};
  // References dropped on the worker owning the task's registry shard while
  // the task is listed there: counted here, with no locked instruction,
  // instead of taken off `refs`. Read and written only inside that shard
  // (its owner, or a thread holding its lock); whoever unlinks the task
  // folds the count into `refs` (RuntimeImpl::registry_remove).
  std::uint16_t local_drops = 0;
  // Also names the registry shard: id & (shards - 1) (see spawn_on in task.cpp).
  // The worker that last ran the task is kept in the state word's upper
  // half (kLastWorkerShift) and the cold data in a side table (kHasExtras),
  // so the header is 72 bytes.
  std::uint32_t id = 0;

  /// Where the exception the body ended with is kept: the `waiting_on`
  /// word, free from then on (the body ran, so it waits on nothing, and a
  /// finished task is never run again). Holds a live exception_ptr exactly
  /// while kErrorStored is set; PromiseBase constructs and destroys it.
  void* error_slot() noexcept { return &waiting_on; }

  /// Under the task's registry shard: the task is no longer listed there
  /// (RegistryShard::unlink marks it so). Before its insertion it counts as
  /// listed: no reference but the spawner's exists yet.
  bool unlisted() const noexcept { return reg_prev == this; }
};
static_assert(sizeof(std::exception_ptr) == sizeof(Suspension*) &&
                  alignof(std::exception_ptr) <= alignof(Suspension*),
              "a task's exception is kept in its waiting_on word");

// ---- thread-local context (defined in task.cpp) ----
// The task whose step this thread is running, or null.
extern thread_local constinit TaskHeader* tl_current_task;
// The trampoline's next coroutine (see Task<T>).
extern thread_local constinit void* tl_next_coroutine;

inline TaskHeader* current_header() noexcept { return tl_current_task; }

/// Resumes `h` and every coroutine handed on through the trampoline, so that
/// chains of awaits never grow the stack, at any optimisation level.
inline void resume_chain(std::coroutine_handle<> h) {
  for (;;) {
    h.resume();
    void* next = tl_next_coroutine;
    if (next == nullptr) return;
    tl_next_coroutine = nullptr;
    h = std::coroutine_handle<>::from_address(next);
  }
}
inline void hand_on(std::coroutine_handle<> h) noexcept { tl_next_coroutine = h.address(); }

/// Wakes a task (from any thread) without completing its wait: a task whose
/// wait is not over is not resumed, only offered to its cancel hook. Safe to
/// call more than once.
void wake(TaskHeader* t) noexcept;
/// Completes the task's current wait and wakes it (from any thread). The
/// caller must not touch the task's frame after this call (see above).
void complete_wait(TaskHeader* t) noexcept;
/// Records that the running task now waits at `s` with coroutine `h`.
inline void suspend_at(TaskHeader* t, Suspension* s, std::coroutine_handle<> h) noexcept {
  t->resume_point = h;
  t->waiting_on = s;
}
/// Consumes a pending cancel request of the running task `t`, if any.
/// Returns true if there was one (the caller then raises CancelledError).
inline bool take_pending_cancel(TaskHeader* t) noexcept {
  if (t == nullptr) return false;
  if ((t->state.load(std::memory_order_acquire) & TaskHeader::kCancelPending) == 0) return false;
  t->state.fetch_and(~TaskHeader::kCancelPending, std::memory_order_acq_rel);
  return true;
}
/// Re-arms a cancel request on `t` (an operation completed normally although a
/// cancel was handed to it).
inline void rearm_cancel(TaskHeader* t) noexcept {
  t->state.fetch_or(TaskHeader::kCancelPending, std::memory_order_acq_rel);
}
/// Throws RuntimeError("weft::<what>: not inside a weft task").
[[noreturn]] void throw_no_task(const char* what);
/// The CancelledError to raise in task `t` (carries its latest cancel message).
[[noreturn]] void throw_cancelled(TaskHeader* t);
/// The latest cancel message of `t` (empty if none).
std::string cancel_message(const TaskHeader* t);

// ---- references and lifecycle (task.cpp) ----
inline void add_ref(TaskHeader* t) noexcept { t->refs.fetch_add(1, std::memory_order_relaxed); }
void release_ref(TaskHeader* t) noexcept;  // destroys the frame with the last ref
/// Drops `n` references the caller holds to an unlisted task (its own, plus
/// the local_drops folded when it was unlinked); destroys the frame with the
/// last. Worker-internal.
void release_refs(TaskHeader* t, std::uint32_t n) noexcept;
/// Registers a waiter; returns false (not registered) if t already completed.
bool add_waiter(TaskHeader* t, WaitNode* n) noexcept;
/// Requests cancellation (any thread). Returns false if already complete.
bool request_cancel(TaskHeader* t, const std::string* msg) noexcept;
/// Called by the final suspend of a spawned coroutine.
void complete_task(TaskHeader* t, bool threw, bool threw_cancel) noexcept;

}  // namespace weft::detail
