// worker.hpp - one worker thread: its Loop, run queues, timers, inbox and
// io_uring ring, and the runtime-wide state the workers share.
//
// # One tick of a worker (DESIGN.md §2)
//   1. Run up to `event_interval` ready tasks: the LIFO slot first (at most
//      `lifo_cap` in a row), then the local queue, then a batch from the
//      global injection queue; every `global_queue_interval` tasks the
//      injection queue goes first, so outside work is never starved.
//   2. Maintenance: take the inbox (messages from other threads), requeue
//      the tasks that yielded during the tick (behind everything ready), fire
//      due timers, run the callbacks that were ready when this step began,
//      and hand the tick's SQEs to the kernel in one io_uring_enter, reaping
//      the CQEs in a batch. A tick that queued no SQE and has no operation in
//      flight makes no system call at all.
//   3. With nothing to run: search (steal half of a random victim's queue,
//      or take from the injection queue), spinning `spin_before_park` rounds,
//      then, with no I/O in flight, run queued CpuPool jobs while there are
//      some and nothing else to do (help_pools; cpu_pool.cpp says why), and
//      park in the ring wait with the next timer as the timeout.
//
// # Parking and waking (no lost wake-up, no syscall to an awake worker)
// A worker about to park counts itself in `num_parked`, stores kParked in its
// `park_state`, and then looks once more at every source of work. Whoever
// makes work available (a push to a local or the injection queue, an inbox
// message) issues a seq_cst fence and then reads those counters/states, so
// either the parker sees the work or the producer sees the parker (the
// classic store-load pairing). Where the kernel offers membarrier, a push
// to a local queue pays a compiler barrier instead of that fence, and the
// parker a membarrier(PRIVATE_EXPEDITED) after its own fence, which makes
// every running thread of the process pass a full barrier
// (RuntimeImpl::asymmetric_fences): pushes are frequent, parks are not.
// That barrier interrupts every core running a sibling, so a worker that
// parks while a sibling is awake sleeps kUnfencedParkNs first without it,
// and pays it only if it is still idle then (park, worker.cpp): a push it
// missed meanwhile waits for its awake owner or for that sleep to end.
// A push to the injection queue is a seq_cst CAS, which takes the fence's
// place: in the single order of seq_cst operations and fences, either it
// comes before the parker's fence (the parker sees the task) or after the
// parker's seq_cst count of itself (the producer's seq_cst load sees the
// parker). Only a worker in kParked is sent
// a wake-up system call, and only the producer whose CAS moved it out of
// kParked sends it. To avoid a thundering herd, a general wake-up is sent
// only when no worker is searching already; the woken worker searches, and
// when a searcher finds work and was the last one searching it wakes the
// next parked worker (Tokio's scheme).
#pragma once

#include <liburing.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <weft/detail/fixed_buffers.hpp>
#include <weft/io_op.hpp>
#include <weft/loop.hpp>
#include <weft/runtime.hpp>

#include "cpu_help.hpp"
#include "executor_slot.hpp"
#include "inbox.hpp"
#include "inject_queue.hpp"
#include "local_queue.hpp"
#include "timer_heap.hpp"

namespace weft::detail {

class RuntimeImpl;

/// A FIFO of tasks linked through TaskHeader::next, owned by one thread.
struct TaskList {
  TaskHeader* head = nullptr;
  TaskHeader* tail = nullptr;
  bool empty() const noexcept { return head == nullptr; }
  void push_back(TaskHeader* t) noexcept {
    t->next = nullptr;
    if (tail) {
      tail->next = t;
    } else {
      head = t;
    }
    tail = t;
  }
  TaskHeader* pop_front() noexcept {
    TaskHeader* t = head;
    head = t->next;
    if (head == nullptr) tail = nullptr;
    t->next = nullptr;
    return t;
  }
  /// Takes the whole list (linked through next, null-terminated).
  TaskHeader* take_all() noexcept {
    TaskHeader* t = head;
    head = tail = nullptr;
    return t;
  }
};

/// Posts cb to the calling worker's loop, or from outside to worker 0 of rt.
void post_callback_any(CallbackNode* cb, Runtime* rt) noexcept;
/// TimerNode::fire of call_later/call_at callbacks.
void callback_timer_fire(TimerNode* t) noexcept;

/// Counters written by one worker (relaxed load + store: a single writer
/// needs no read-modify-write), read by anyone.
struct alignas(64) Counters {
  std::atomic<std::uint64_t> tasks_polled{0}, tasks_spawned{0}, tasks_stolen{0}, steal_attempts{0},
      parks{0}, unparks{0}, lifo_polls{0}, global_polls{0}, remote_wakes{0}, overflows{0},
      sqes_submitted{0}, enter_calls{0}, cqes{0}, wake_syscalls{0}, cpu_jobs_helped{0},
      frames_refilled{0}, fence_syscalls{0};
};
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

/// user_data values with a meaning of their own (real ops carry a pointer,
/// which is never this small).
inline constexpr std::uint64_t kIgnoreToken = 0;   // cancels, skipped results
inline constexpr std::uint64_t kWakeToken = 1;     // MSG_RING wake-up
inline constexpr std::uint64_t kEventfdToken = 2;  // the armed eventfd read

class Worker;
/// The worker whose thread this is (worker.cpp sets it for the thread's
/// life), and the worker whose thread runs CpuPool jobs now (help_pools),
/// when tl_worker is null for the jobs' sake.
extern thread_local constinit Worker* tl_worker;
extern thread_local constinit Worker* tl_helping;

class Worker final : public Loop {
 public:
  // kNotifiedSearchLocal: as kNotifiedSearch, by a sibling that pushed a
  // task to its own local queue (RuntimeOptions::sibling_spin).
  enum ParkState : int {
    kAwake = 0,
    kParked = 1,
    kNotifiedSearch = 2,
    kNotifiedDirect = 3,
    kNotifiedSearchLocal = 4,
    // Parked after its search found only lone tasks (a sibling's single
    // queued task, left to its owner: see search). Such a worker sleeps
    // kLoneParkNs at most and is not woken for another lone task, only for
    // more work than that (park).
    kParkedLone = 5
  };
  static bool is_parked(int s) noexcept { return s == kParked || s == kParkedLone; }

  Worker(RuntimeImpl& rt, unsigned index);
  ~Worker();

  void start();
  void join();
  /// Closes the ring and the eventfd; only once no thread can wake us.
  void close_ring() noexcept { teardown_ring(); }

  // ---- owner-thread operations ----
  void schedule_local(TaskHeader* t, bool lifo) noexcept;
  /// Completes the wait of `t`, whose operation on this worker's ring has
  /// just finished (the owner thread, in reap). An idle task
  /// goes straight to kRunning, as run_task would take it, and into
  /// owned_ready_, a list no other thread reads: one CAS instead of three
  /// (the wake's, the queue pop's and run_task's), the most an I/O-bound
  /// task pays per operation. Any other state takes complete_wait's path.
  void complete_wait_owned(TaskHeader* t) noexcept;
  /// Queues t on this worker (a parked worker this wakes may then spin,
  /// RuntimeOptions::sibling_spin).
  void push_back(TaskHeader* t) noexcept;
  void post_soon_owner(CallbackNode* n) noexcept;
  void arm_timer(TimerNode* n) { timers_.push(n); }
  void disarm_timer(TimerNode* n) noexcept { timers_.remove(n); }
  io_uring_sqe* get_sqe();
  /// Makes sure `n` SQEs can be taken back to back without a submission in
  /// between (submits first if the SQ is short). Throws system_error(EBUSY)
  /// if even an empty SQ is too small.
  void reserve_sqes(unsigned n);
  /// get_sqe, but null instead of throwing.
  io_uring_sqe* get_sqe_nothrow() noexcept;
  /// An op was queued on this ring. A file operation queued while earlier
  /// ones are out at the device (submitted, not yet reaped) has the SQ
  /// handed to the kernel when the current step ends
  /// (RuntimeOptions::eager_file_submit): the device would otherwise wait
  /// for the tick. File operations that complete as they are submitted (a
  /// read the page cache serves) are never out when the next one is queued,
  /// so they stay batched with the tick: there, a system call per step cost
  /// 15% of the reads per second.
  void op_started(bool file_op) noexcept {
    ++inflight_;
    if (file_op) {
      if (eager_file_submit_ && file_ops_out_ > file_sqes_queued_)
        submit_after_step_ = step_hooks_ = true;
      ++file_ops_out_;
      ++file_sqes_queued_;
    }
  }
  void op_done(bool file_op) noexcept {
    --inflight_;
    if (file_op) --file_ops_out_;
  }
  /// Owner thread, inside a task's step: runs item->run(item) on this
  /// thread when the step ends, before the next task's (FIFO).
  void after_step(InboxItem* item) noexcept {
    item->next = nullptr;
    if (after_step_tail_ != nullptr) {
      after_step_tail_->next = item;
    } else {
      after_step_head_ = item;
    }
    after_step_tail_ = item;
    step_hooks_ = true;
  }
  /// Counts `d` armed on this ring (io_detached_begin). False, with nothing
  /// counted, once the worker is stopping.
  bool detached_armed(IoDetached* d) noexcept;
  /// `d`'s final CQE arrived (io_detached_end).
  void detached_ended(IoDetached* d) noexcept;
  std::uint32_t next_task_id() noexcept { return id_seq_ += id_stride_; }
  /// Takes a task that completed on this worker (without an error) off the
  /// registry later, in a batch with others (flush_unregister). Only for a
  /// task of another shard (another worker's, or outside spawns'):
  /// complete_task unlinks tasks of this worker's own shard at once. One
  /// entry into the shard per batch instead of one per task, so a worker
  /// completing tasks another worker spawns does not pull the shard's lines
  /// over (or pay a membarrier, see RegistryShard) on every completion. The
  /// task's own reference goes with it; the flush drops it after unlinking.
  void defer_unregister(TaskHeader* t) noexcept;
  /// Unlinks the deferred tasks and drops their references (owner thread;
  /// every tick, and when the worker stops). Tasks of another worker's
  /// shard wait until kForeignUnregisterBatch of them are pending, or until
  /// `all` (before parking, and when the worker stops): entering that shard
  /// costs a membarrier (RegistryShard). Returns true if it unlinked any.
  bool flush_unregister(bool all) noexcept;
  static constexpr std::uint64_t kForeignUnregisterBatch = 4096;
  /// Tasks of shard `s` this worker completed but has not unlinked yet
  /// (any thread, inside that shard: see RuntimeImpl::live_tasks).
  std::uint64_t unregister_pending(unsigned s) const noexcept {
    return unreg_[s].pending.load(std::memory_order_relaxed);
  }

  // ---- any thread ----
  /// Queues callback n to run on this loop (FIFO with call_soon when called
  /// on the owner thread). After shutdown the callback is dropped.
  void post_foreign(CallbackNode* n) noexcept;
  /// Queues a message for this worker's thread and wakes it if it sleeps.
  void post_inbox(InboxItem* item) noexcept;
  /// Wakes this worker if it is parked (direct wake, not a search token).
  void unpark_direct() noexcept;
  /// If parked, claims it with `as` and sends the wake-up. True if claimed.
  bool try_unpark(ParkState as) noexcept;

  RuntimeImpl& rt() const noexcept { return rt_; }
  unsigned index_value() const noexcept { return index_; }
  const Counters& counters() const noexcept { return m_; }
  std::uint32_t queue_size() const noexcept { return queue_.size(); }
  LocalQueue& queue() noexcept { return queue_; }
  int park_state() const noexcept { return park_state_.load(std::memory_order_acquire); }

  /// The worker whose thread this is, or null. Inline: every spawn and
  /// wake asks.
  static Worker* current() noexcept { return tl_worker; }
  /// current(), or the worker whose thread is running CpuPool jobs (for
  /// which current() is null: help_pools). For waking tasks only.
  static Worker* current_or_helping() noexcept { return tl_worker ? tl_worker : tl_helping; }

 private:
  friend class RuntimeImpl;
  void thread_main();
  bool setup_ring(std::string* error);
  void teardown_ring() noexcept;

  TaskHeader* next_task() noexcept;
  /// The next task of owned_ready_; spills the rest to the queue when a
  /// sibling is idle (see owned_ready_).
  TaskHeader* take_owned() noexcept;
  /// Moves owned_ready_ to the local queue (kRunning -> kScheduled with
  /// kWaitDone, as complete_wait leaves a queued task), where others can
  /// steal from it.
  void spill_owned() noexcept;
  TaskHeader* pop_inject_batch() noexcept;
  void run_task(TaskHeader* t) noexcept;

 public:
  /// The end of a step of t, which this thread holds (in kRunning, or in
  /// kScheduled for a first step, see run_task): back to idle, or requeued
  /// if a wake came meanwhile (owner of the hold only).
  void end_step(TaskHeader* t) noexcept;
  /// Set by a cancel hook that handed the task it runs under to another
  /// thread (reactor.cpp, op_cancel): run_task must not touch it again.
  void hand_over_task() noexcept { handed_over_ = true; }

 private:
  /// Debug mode: resumes t's step timing it, reports a slow one (slow_step.cpp).
  void run_step_timed(TaskHeader* t) noexcept;
  void maintenance() noexcept;
  void run_ready_callbacks() noexcept;
  void fire_timers() noexcept;
  void drain_inbox() noexcept;
  void requeue_deferred() noexcept;
  void reactor_poll(bool block, std::int64_t timeout_ns) noexcept;
  void reap() noexcept;
  /// Offers this worker's queued work to a parked sibling (after a push),
  /// or, while reap() wakes a batch of tasks, once for the whole batch:
  /// each notify_parked costs a fence (a locked instruction where
  /// membarrier is missing) and loads of the shared counters, and a batch
  /// of 32 completions pushed 31 tasks (io_nop).
  void notify_local() noexcept;
  /// Runs t's step, then what the step left for its end: the after_step
  /// items, and a submit if it queued a file operation (op_started).
  void run_task_and_submit(TaskHeader* t) noexcept {
    run_task(t);
    if (step_hooks_) [[unlikely]]
      end_step_hooks();
  }
  void end_step_hooks() noexcept;
  /// io_uring_submit, counted; every SQE queued so far reaches the kernel.
  void submit_now() noexcept;
  void arm_eventfd() noexcept;
  /// On the way out: cancels the armed detached requests and reaps until
  /// their final CQEs have arrived, draining the inbox as it goes.
  void drain_detached() noexcept;

  TaskHeader* search() noexcept;
  bool become_searching() noexcept;
  void leave_searching() noexcept;
  /// True if tasks are queued that another worker could take: in this
  /// worker's queue (besides the task it is about to run), a sibling's, or
  /// the injection queue.
  bool work_for_another() const noexcept;
  /// Work for this worker: its own, the injection queue's, or a sibling's
  /// queue holding at least `sibling_tasks` tasks (2: a sibling's lone task
  /// does not count, see park).
  bool has_work(std::uint32_t sibling_tasks = 1) const noexcept;
  // Parks in the ring wait; true if another thread's wake-up ended it.
  // `lone`: searches saw a streak of new lone tasks (lone_credit_; park
  // says what changes).
  bool park(bool lone = false) noexcept;
  /// True if another worker of the runtime is not parked (park).
  bool sibling_awake() const noexcept;
  void send_wake_to(Worker& target) noexcept;
  // Before parking: runs queued CpuPool jobs (cpu_help.hpp); true if any.
  bool help_pools() noexcept;
  class PoolHelper;
  bool help_stop_before_job(std::int64_t expected_ns) noexcept;

  RuntimeImpl& rt_;
  const unsigned index_;
  LocalQueue queue_;

  // owner-only state
  TaskHeader* lifo_ = nullptr;
  unsigned lifo_run_ = 0;
  TaskList deferred_;                   // tasks that yielded this tick
  CallbackNode* ready_head_ = nullptr;  // call_soon FIFO
  CallbackNode* ready_tail_ = nullptr;
  TimerHeap timers_;
  // Picks left until next_task looks at the inject queue first.
  std::uint32_t inject_countdown_ = 1;
  std::uint64_t rng_;
  std::uint32_t id_seq_;
  std::uint32_t id_stride_;
  // Completed tasks awaiting removal from the registry, per shard (linked
  // through TaskHeader::next: a completed task is in no run queue).
  // `pending` is written under the shard's lock when it goes down.
  struct Unregister {
    TaskHeader* head = nullptr;
    std::atomic<std::uint64_t> pending{0};
  };
  std::unique_ptr<Unregister[]> unreg_;
  bool unreg_any_ = false;
  bool searching_ = false;
  // The lone task the last search left to its owner (see search).
  const Worker* lone_victim_ = nullptr;
  std::uint32_t lone_head_ = 0;
  std::int64_t lone_since_ns_ = 0;  // when it was first seen there
  bool left_lone_ = false;          // the last search left a lone task
  bool lone_timed_out_ = false;     // the last park was lone and timed out
  std::uint8_t lone_credit_ = 0;    // lone parks left after a streak (search)
  unsigned lone_streak_ = 0;        // new lone tasks seen in a row (search)
  bool firing_timers_ = false;      // wakes go to the expedited list
  TaskList expedited_;              // tasks whose timer expired: run first
  // Tasks an operation completion on this ring took to kRunning
  // (complete_wait_owned): their wait is over and nobody else may run
  // them, so next_task hands them out without a queue's CAS. Invisible to
  // thieves: whenever a sibling is parked or searching, the next pick
  // spills the rest to the local queue (spill_owned), so an idle sibling
  // waits one task at most before it can take some. next_task alternates
  // between this list and the queue, so neither starves the other.
  TaskList owned_ready_;
  bool owned_turn_ = false;
  bool handed_over_ = false;    // see hand_over_task
  std::uint32_t inflight_ = 0;  // user operations awaiting a CQE
  // Armed detached requests (multishot accepts): they keep the reactor
  // polling but not the worker alive (drain_detached ends them).
  IoDetached* detached_head_ = nullptr;
  std::uint32_t detached_ = 0;
  bool detached_closed_ = false;  // drain_detached began: arm nothing new
  // The last park ended by a wake-up soon after it began: spin up to
  // opts.park_spin before the next park (see RuntimeOptions::park_spin).
  bool spin_long_ = false;
  // The last park was ended by kNotifiedSearchLocal.
  bool woken_for_local_ = false;
  std::int64_t help_deadline_ = 0;  // a turn ends at this timer deadline (0: none)
  bool help_watching_ = false;      // counted in rt_.num_helping

  io_uring ring_{};
  bool ring_ready_ = false;
  int ring_fd_ = -1;
  int event_fd_ = -1;
  std::uint64_t event_buf_ = 0;
  bool event_armed_ = false;
  const bool eager_file_submit_;    // RuntimeOptions::eager_file_submit
  bool submit_after_step_ = false;  // submit when the running step ends
  // Work for the end of the running step: submit_after_step_, or items in
  // the after_step list (one flag, so a step that left none pays one test).
  bool step_hooks_ = false;
  InboxItem* after_step_head_ = nullptr;
  InboxItem* after_step_tail_ = nullptr;
  bool reaping_ = false;            // in reap(): pushes notify once, after it
  bool notify_after_reap_ = false;  // a push during reap() wants notify_parked
  // File operations queued or submitted and not yet reaped, and how many of
  // them are still queued (op_started).
  std::uint32_t file_ops_out_ = 0;
  std::uint32_t file_sqes_queued_ = 0;

  alignas(64) Inbox inbox_;
  alignas(64) std::atomic<int> park_state_{kAwake};
  Counters m_;
  std::thread thread_;
};

/// A registry shard: the live tasks spawned on one worker (shard i is
/// worker i's), or from outside (the last shard, which no worker owns).
///
/// The owning worker enters its shard without a locked instruction: it
/// announces itself in `owner_in`, then checks `lock`. Any other thread
/// takes `lock`, then waits until `owner_in` is clear. The two store-load
/// pairs are ordered as a push and a park are (RuntimeImpl::
/// asymmetric_fences): a compiler barrier on the owner's side, and a
/// membarrier on the other's, which is rare (a batch of tasks the owner
/// spawned and another worker completed, all_tasks, live_tasks). Without
/// membarrier both sides use a full fence. See RuntimeImpl::shard_enter.
struct alignas(64) RegistryShard {
  std::atomic<bool> lock{false};
  std::atomic<bool> owner_in{false};  // the owner is inside without the lock
  TaskHeader* head = nullptr;
  std::uint64_t count = 0;
  void acquire() noexcept {
    while (lock.exchange(true, std::memory_order_acquire)) {
      while (lock.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  void release() noexcept { lock.store(false, std::memory_order_release); }
  /// Takes t out of the list (under the lock; count is the caller's).
  void unlink(TaskHeader* t) noexcept {
    if (t->reg_prev) {
      t->reg_prev->reg_next = t->reg_next;
    } else {
      head = t->reg_next;
    }
    if (t->reg_next) t->reg_next->reg_prev = t->reg_prev;
    t->reg_next = nullptr;
    t->reg_prev = t;  // TaskHeader::unlisted
  }
};

class RuntimeImpl {
 public:
  RuntimeImpl(Runtime& facade, RuntimeOptions opts);
  ~RuntimeImpl();

  // Shared ownership: the Runtime holds one reference; so does each pending
  // future done callback aimed at one of its loops.
  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  /// Waits until no thread is still inside schedule_remote for this runtime.
  void wait_remote_quiescent() const noexcept;

  void start();     // throws RuntimeError if a ring cannot be set up
  void shutdown();  // the §R end sequence
  void stop_workers();

  void schedule_remote(TaskHeader* t) noexcept;  // from a non-worker thread
  void push_inject_list(TaskHeader* first, TaskHeader* last) noexcept;
  /// After making work available: wakes a parked worker to search, unless
  /// one is searching already. `local`: `from` pushed the work to its own
  /// local queue.
  void notify_parked(Worker* from, bool local = false) noexcept;
  /// notify_parked without its fence, for a caller whose last step making
  /// the work visible was a seq_cst atomic operation (the injection queue's
  /// CAS): that operation takes the fence's place in the pairing with
  /// Worker::park.
  void notify_parked_after_seq_cst(Worker* from, bool local) noexcept;
  /// The heavy side of the asymmetric pairing (see asymmetric_fences):
  /// every other running thread of the process passes a full barrier
  /// before it returns. Worker::park() calls it after its own fence.
  void heavy_fence() const noexcept;

  /// Enters registry shard `i` for the calling thread, `w` (null off the
  /// workers). Returns true when it entered as the shard's owner, without
  /// the lock; pass that to shard_leave.
  bool shard_enter(unsigned i, const Worker* w) const noexcept;
  void shard_leave(unsigned i, bool owner) const noexcept;
  /// Links `t` into its shard; `w` is the calling worker (null off the
  /// workers).
  void registry_insert(TaskHeader* t, const Worker* w) noexcept;
  /// Unlinks `t` from its shard; `w` is the calling worker (null off the
  /// workers). Returns t's local_drops, zeroed: the caller folds them into
  /// t->refs (it holds a reference of its own, so they are never the last).
  std::uint32_t registry_remove(TaskHeader* t, const Worker* w) noexcept;
  /// On worker `w`, which owns t's shard: if t is still listed there,
  /// counts a reference the caller drops in t->local_drops and returns
  /// true; otherwise (or if the count is full) false, and the caller takes
  /// it off t->refs as usual.
  bool drop_listed_ref(TaskHeader* t, const Worker* w) noexcept;
  /// Unlinks `list` (linked through `next`, every task of shard `s`) inside
  /// one entry into the shard (shard_enter), and zeroes `*pending` there.
  /// Returns the list's last task. `w` is the calling worker. Each task's
  /// local_drops are left for the caller to fold into its refs (nobody else
  /// touches them once the task is unlisted).
  TaskHeader* registry_remove_list(unsigned s, TaskHeader* list,
                                   std::atomic<std::uint64_t>* pending, const Worker* w) noexcept;
  /// The calling thread's worker if it is one of this runtime's, else null.
  const Worker* current_worker() const noexcept;
  std::vector<TaskRef> all_tasks() const;
  std::uint64_t live_tasks() const noexcept;

  void report(const ExceptionContext& ctx) const noexcept;
  Metrics metrics() const;

  Runtime& facade;
  RuntimeOptions opts;
  std::vector<std::unique_ptr<Worker>> workers;
  InjectQueue inject;
  unsigned max_searching = 1;

  alignas(64) std::atomic<std::uint32_t> num_searching{0};
  alignas(64) std::atomic<std::uint32_t> num_parked{0};
  // Of those, the ones parked in kParkedLone (counted before num_parked is
  // decremented and after it is incremented, so never more than it).
  std::atomic<std::uint32_t> num_parked_lone{0};
  // Workers running CpuPool jobs whose jobs are short (Worker::help_pools):
  // while one is, producers wake no parked worker, as while one searches.
  alignas(64) std::atomic<std::uint32_t> num_helping{0};
  // Ids of spawns from outside, handed to each outside thread in blocks
  // (see spawn_on in task.cpp); `serial` tells a thread's block of this
  // runtime from one of an earlier runtime at the same address.
  alignas(64) std::atomic<std::uint32_t> foreign_ids{0};
  const std::uint64_t serial;
  // True when the kernel's membarrier(PRIVATE_EXPEDITED) is registered for
  // this process (runtime.cpp). Then notify_parked, which every push to a
  // local queue calls, orders its push before its look at the parked
  // workers with a compiler barrier only, and park() pays for both sides
  // with heavy_fence(): a push is far more frequent than a park, and the
  // fence was a locked instruction per spawn and per wake. Decided once
  // per runtime, before its workers start, so both sides always agree;
  // false (plain fences on both sides) where the system call is refused.
  const bool asymmetric_fences;
  std::atomic<bool> closed{false};    // no more spawns from outside
  std::atomic<bool> stopping{false};  // workers exit when idle
  std::atomic<bool> shut_down{false};
  // Threads outside the runtime inside schedule_remote: the task they just
  // queued may run, finish and let the runtime be destroyed while they still
  // look at the workers, so destruction waits for this to drop to zero.
  alignas(64) std::atomic<std::uint32_t> remote_users{0};
  std::atomic<std::uint32_t> refs_{1};
  std::unique_ptr<RegistryShard[]> shards;
  unsigned num_shards = 0;  // a power of two
  unsigned shard_mask = 0;  // num_shards - 1
  /// The registry shard of the task with this id (see spawn_on in task.cpp).
  unsigned shard_of(std::uint32_t id) const noexcept { return id & shard_mask; }
  ExecutorSlot executors;  // the default executor (executor.cpp), lazily
  // Registered on every worker's ring at start; null if none (one reference).
  FixedBufferSet* fixed_buffers = nullptr;

  // start-up handshake
  std::mutex start_mu;
  std::condition_variable start_cv;
  unsigned started = 0;
  std::string start_error;
};

}  // namespace weft::detail
