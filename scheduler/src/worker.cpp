// worker.cpp - a worker's tick, its queues, parking and the Loop methods.
// The design is described at the top of worker.hpp.
#include "worker.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <weft/sleep.hpp>  // to_ns

namespace weft::detail {

thread_local constinit Worker* tl_worker = nullptr;
thread_local constinit Worker* tl_helping = nullptr;

namespace {

std::uint64_t xorshift(std::uint64_t& s) noexcept {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

void callback_inbox_run(InboxItem* item) noexcept {
  tl_worker->post_soon_owner(static_cast<CallbackNode*>(item));
}

}  // namespace

void callback_timer_fire(TimerNode* t) noexcept {
  // Due timer callbacks join the ready list behind what is already there
  // (§A 5); the list's reference is the one the heap held.
  tl_worker->post_soon_owner(static_cast<CallbackNode*>(t));
}

Worker::Worker(RuntimeImpl& rt, unsigned index)
    : rt_(rt),
      index_(index),
      rng_(0x9e3779b97f4a7c15ull * (index + 1)),
      id_seq_(index),
      id_stride_(rt.num_shards),
      unreg_(std::make_unique<Unregister[]>(rt.num_shards)),
      eager_file_submit_(rt.opts.eager_file_submit) {}

Worker::~Worker() {
  teardown_ring();
  // Callbacks still queued when the runtime stops are dropped.
  while (ready_head_) {
    CallbackNode* n = ready_head_;
    ready_head_ = n->ready_next;
    n->release();
  }
  while (!timers_.empty()) {
    TimerNode* t = timers_.pop();
    if (t->fire == callback_timer_fire) static_cast<CallbackNode*>(t)->release();
  }
  for (InboxItem* i = inbox_.take_all(); i;) {
    InboxItem* next = i->next;
    if (i->run == callback_inbox_run) static_cast<CallbackNode*>(i)->release();
    i = next;
  }
}

void Worker::start() {
  thread_ = std::thread([this] { thread_main(); });
}

void Worker::join() {
  if (!thread_.joinable()) return;
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();  // a runtime torn down from its own worker (a misuse)
  } else {
    thread_.join();
  }
}

// ---------------------------------------------------------------------------
// Scheduling

void Worker::notify_local() noexcept {
  if (reaping_) {
    notify_after_reap_ = true;
  } else {
    rt_.notify_parked(this, /*local=*/true);
  }
}

void Worker::push_back(TaskHeader* t) noexcept {
  if (queue_.push(t)) {
    // Even a single queued task is offered to a parked worker: this worker
    // may be about to run a long step (or spin waiting for that very task),
    // and nothing else would ever wake the other one (bench/micro/
    // wake_latency does exactly that).
    notify_local();
    return;
  }
  {
    TaskHeader* last = nullptr;
    TaskHeader* first = queue_.take_half_for_overflow(&last);
    if (first != nullptr) {
      last->next = t;
      rt_.push_inject_list(first, t);
      bump(m_.overflows);
    } else if (!queue_.push(t)) {
      rt_.push_inject_list(t, t);
      bump(m_.overflows);
    }
  }
  notify_local();
}

void Worker::schedule_local(TaskHeader* t, bool lifo) noexcept {
  if (firing_timers_) {
    expedited_.push_back(t);
    return;
  }
  if (lifo && rt_.opts.lifo_slot) {
    TaskHeader* prev = lifo_;
    lifo_ = t;
    if (prev == nullptr) return;  // the woken task runs next on this worker
    t = prev;
  }
  push_back(t);
}

TaskHeader* Worker::pop_inject_batch() noexcept {
  // Take a fair share: enough to keep this worker busy, leaving the rest for
  // the others (at most half of the local queue's capacity).
  std::uint32_t n = 0;
  std::uint32_t room = LocalQueue::kCapacity - queue_.size();
  std::uint32_t max = LocalQueue::kCapacity / 2;
  if (max > room) max = room;
  if (max == 0) max = 1;
  TaskHeader* list = rt_.inject.pop_batch(max, static_cast<std::uint32_t>(rt_.workers.size()), &n);
  if (list == nullptr) return nullptr;
  bump(m_.global_polls, n);
  TaskHeader* first = list;
  list = list->next;
  while (list) {
    TaskHeader* next = list->next;
    if (!queue_.push(list)) rt_.push_inject_list(list, list);
    list = next;
  }
  first->next = nullptr;
  return first;
}

TaskHeader* Worker::next_task() noexcept {
  if (!expedited_.empty()) {
    // A task whose timer expired is late already: it runs before the backlog
    // of ready tasks (as Go runs a timer's goroutine next), in deadline order.
    // The list holds only what expired since the last pass, so it cannot
    // starve the queue.
    return expedited_.pop_front();
  }
  // Every global_queue_interval-th pick looks at the inject queue first
  // (a countdown: no division per pick).
  if (--inject_countdown_ == 0) {
    inject_countdown_ = rt_.opts.global_queue_interval;
    if (TaskHeader* t = pop_inject_batch()) return t;
  }
  if (lifo_ != nullptr) {
    TaskHeader* t = lifo_;
    lifo_ = nullptr;
    if (lifo_run_ < rt_.opts.lifo_cap) {
      ++lifo_run_;
      bump(m_.lifo_polls);
      return t;
    }
    // The cap is reached: the LIFO task waits its turn in the queue.
    push_back(t);
  }
  lifo_run_ = 0;
  if (!owned_ready_.empty() && (queue_.empty() || (owned_turn_ = !owned_turn_)))
    return take_owned();
  if (TaskHeader* t = queue_.pop()) return t;
  return pop_inject_batch();
}

void Worker::complete_wait_owned(TaskHeader* t) noexcept {
  std::uint32_t s = t->state.load(std::memory_order_acquire);
  std::uint32_t ns;
  do {
    if (s & (TaskHeader::kRunning | TaskHeader::kScheduled | TaskHeader::kComplete)) {
      complete_wait(t);
      return;
    }
    ns = ((s | TaskHeader::kRunning | TaskHeader::kStarted) &
          ((1u << TaskHeader::kLastWorkerShift) - 1)) |
         ((index_ + 1) << TaskHeader::kLastWorkerShift);
  } while (
      !t->state.compare_exchange_weak(s, ns, std::memory_order_acq_rel, std::memory_order_acquire));
  if ((s >> TaskHeader::kLastWorkerShift) != index_ + 1) bump(m_.remote_wakes);
  owned_ready_.push_back(t);
}

TaskHeader* Worker::take_owned() noexcept {
  TaskHeader* t = owned_ready_.pop_front();
  if (!owned_ready_.empty() && rt_.workers.size() > 1 &&
      (rt_.num_parked.load(std::memory_order_relaxed) != 0 ||
       rt_.num_searching.load(std::memory_order_relaxed) > (searching_ ? 1u : 0u)))
    spill_owned();
  return t;
}

void Worker::spill_owned() noexcept {
  while (!owned_ready_.empty()) {
    TaskHeader* t = owned_ready_.pop_front();
    std::uint32_t s = t->state.load(std::memory_order_acquire);
    std::uint32_t ns;
    do {
      // A wake that came meanwhile only set kNotified: being queued covers it.
      ns = (s & ~(TaskHeader::kRunning | TaskHeader::kNotified | TaskHeader::kYielded)) |
           TaskHeader::kScheduled | TaskHeader::kWaitDone;
    } while (!t->state.compare_exchange_weak(s, ns, std::memory_order_acq_rel,
                                             std::memory_order_acquire));
    push_back(t);
  }
}

namespace {
std::int64_t now_ns() noexcept { return to_ns(Clock::now()); }

// Stands in for a hook that has taken responsibility for its wait (see
// run_task); never called.
bool absorb_cancel(Suspension*) noexcept { return true; }
}  // namespace

void Worker::run_task(TaskHeader* t) noexcept {
  // Popping the task from a queue made it ours: waiting_on is safe to read.
  Suspension* w = t->waiting_on;
  std::uint32_t s = t->state.load(std::memory_order_acquire);
  std::uint32_t ns;
  bool resume = true;
  if (!(s & (TaskHeader::kStarted | TaskHeader::kRunning))) {
    // A first step runs with the task left in kScheduled (task_header.hpp):
    // nobody else may queue or run it, and a wake meanwhile sets kNotified
    // as for a running task. A task that ends in its first step (most
    // spawned tasks) so pays no CAS here; end_step's CAS, if it suspends,
    // marks it started.
    bump(m_.tasks_polled);
    if (s & TaskHeader::kCancelPending) {
      // Cancelled before its first step: none of the body runs (§C 26).
      // As in end_step, the task's own reference is dropped here if
      // complete_task unlinked the task itself, else by the unregister batch.
      tl_current_task = t;
      complete_task(t, false, false);
      tl_current_task = nullptr;
      if (t->state.load(std::memory_order_relaxed) & TaskHeader::kUnlinked) release_refs(t, 1);
      return;
    }
  } else if (s & TaskHeader::kRunning) {
    // From owned_ready_: complete_wait_owned took it to kRunning, its wait
    // is over. A cancel that came since is raised at the next suspension
    // point, as for any task whose wait completed.
    bump(m_.tasks_polled);
  } else {
    do {
      // Resumable if it waits on nothing (a yield) or its wait was
      // completed (complete_wait); otherwise only a cancel woke it.
      resume = w == nullptr || (s & TaskHeader::kWaitDone) != 0;
      ns = (s & ~(TaskHeader::kScheduled | TaskHeader::kWaitDone)) | TaskHeader::kRunning;
      ns = (ns & ((1u << TaskHeader::kLastWorkerShift) - 1)) |
           ((index_ + 1) << TaskHeader::kLastWorkerShift);
      if (!resume) ns |= s & TaskHeader::kWaitDone;
    } while (!t->state.compare_exchange_weak(s, ns, std::memory_order_acq_rel,
                                             std::memory_order_acquire));
    bump(m_.tasks_polled);

    if (!resume && (s & TaskHeader::kCancelPending)) {
      t->state.fetch_and(~TaskHeader::kCancelPending, std::memory_order_acq_rel);
      if (w->cancel == absorb_cancel) {
        // The hook already took responsibility for this wait; its completion
        // is in flight. A second request before the task runs adds nothing
        // (asyncio raises CancelledError once, §C): calling the hook again
        // would make a hand-on primitive pass its grant on twice (a Lock
        // with two holders, a Semaphore with one permit too many).
      } else if (w->cancel == nullptr) {
        rearm_cancel(t);
      } else {
        // At most one hook call per wait. Set before the call: a hook that
        // hands the task over to another thread (handed_over_) leaves it
        // to that thread at once.
        bool (*hook)(Suspension*) noexcept = w->cancel;
        w->cancel = absorb_cancel;
        if (!hook(w)) {
          w->cancel = hook;
          rearm_cancel(t);
        } else if (handed_over_) {
          handed_over_ = false;
          return;
        }
      }
    }
  }
  if (resume) {
    t->waiting_on = nullptr;
    tl_current_task = t;
    if (!rt_.opts.debug) [[likely]] {
      resume_chain(t->resume_point);
    } else {
      run_step_timed(t);  // debug mode: slow-step report (slow_step.cpp)
    }
    tl_current_task = nullptr;
  }
  end_step(t);
}

void Worker::end_step(TaskHeader* t) noexcept {
  std::uint32_t s = t->state.load(std::memory_order_acquire);
  std::uint32_t ns;
  if (s & TaskHeader::kComplete) {
    // Completed in this step. complete_task either unlinked the task itself
    // (kUnlinked: its own reference is still ours, dropped now that the
    // coroutine is suspended for good) or handed that reference to this
    // worker's unregister batch, which drops it at the next flush.
    if (s & TaskHeader::kUnlinked) release_refs(t, 1);
    return;
  }
  // The bit that held the task during the step: kScheduled for a first
  // step (run_task), kRunning otherwise. A first step also records the
  // worker (kLastWorkerShift) and kStarted here.
  std::uint32_t held = TaskHeader::kRunning, mark = 0, keep = ~0u;
  if (s & TaskHeader::kScheduled) {
    held = TaskHeader::kScheduled;
    mark = TaskHeader::kStarted | ((index_ + 1) << TaskHeader::kLastWorkerShift);
    keep = (1u << TaskHeader::kLastWorkerShift) - 1;
  }
  for (;;) {
    if (s & TaskHeader::kNotified) {
      ns = ((s & ~(held | TaskHeader::kNotified | TaskHeader::kYielded)) & keep) | mark |
           TaskHeader::kScheduled;
      if (t->state.compare_exchange_weak(s, ns, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
        if (s & TaskHeader::kYielded) {
          // Behind everything ready, after the next I/O poll (yield_now).
          deferred_.push_back(t);
        } else {
          push_back(t);
        }
        return;
      }
    } else {
      ns = ((s & ~held) & keep) | mark;
      if (t->state.compare_exchange_weak(s, ns, std::memory_order_acq_rel,
                                         std::memory_order_acquire))
        return;
    }
  }
}

void Worker::requeue_deferred() noexcept {
  TaskHeader* t = deferred_.take_all();
  bool pushed = false;
  while (t) {
    TaskHeader* next = t->next;
    if (!queue_.push(t)) {
      // The rest goes to the injection queue in one batch.
      TaskHeader* last = t;
      while (last->next) last = last->next;
      rt_.push_inject_list(t, last);
      bump(m_.overflows);
      break;
    }
    pushed = true;
    t = next;
  }
  if (pushed) rt_.notify_parked(this);
}

// ---------------------------------------------------------------------------
// Callbacks, timers, inbox

void Worker::post_soon_owner(CallbackNode* n) noexcept {
  n->ready_next = nullptr;
  if (ready_tail_) {
    ready_tail_->ready_next = n;
  } else {
    ready_head_ = n;
  }
  ready_tail_ = n;
}

void Worker::post_foreign(CallbackNode* n) noexcept {
  if (tl_worker == this) {
    post_soon_owner(n);
    return;
  }
  if (rt_.shut_down.load(std::memory_order_acquire)) {
    n->release();
    return;
  }
  n->run = callback_inbox_run;
  post_inbox(n);
}

void Worker::end_step_hooks() noexcept {
  step_hooks_ = false;
  // An item may queue another (a write from its run): it runs in this loop.
  while (after_step_head_ != nullptr) {
    InboxItem* item = after_step_head_;
    after_step_head_ = item->next;
    if (after_step_head_ == nullptr) after_step_tail_ = nullptr;
    item->run(item);
  }
  if (submit_after_step_) {
    submit_after_step_ = false;
    submit_now();
  }
}

void Worker::run_ready_callbacks() noexcept {
  // Only what was ready when this step began (§A 2).
  CallbackNode* n = ready_head_;
  CallbackNode* const last = ready_tail_;
  if (n == nullptr) return;
  ready_head_ = last->ready_next;
  if (ready_head_ == nullptr) ready_tail_ = nullptr;
  last->ready_next = nullptr;
  while (n) {
    CallbackNode* next = n->ready_next;
    if (!n->cancelled.load(std::memory_order_acquire)) {
      try {
        n->invoke();
      } catch (...) {
        rt_.report({"Exception in callback", std::current_exception(), TaskRef()});
      }
    }
    n->release();
    n = next;
  }
}

void Worker::fire_timers() noexcept {
  if (timers_.empty()) return;
  const std::int64_t now = now_ns();
  firing_timers_ = true;
  while (!timers_.empty() && timers_.top_deadline() <= now) {
    TimerNode* t = timers_.pop();
    t->fire(t);
  }
  firing_timers_ = false;
}

void Worker::drain_inbox() noexcept {
  for (InboxItem* i = inbox_.take_all(); i;) {
    InboxItem* next = i->next;
    i->run(i);
    i = next;
  }
}

void Worker::post_inbox(InboxItem* item) noexcept {
  inbox_.push(item);
  // Pairs with the fence in park(): either the parker sees the item, or we
  // see it parked.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (is_parked(park_state_.load(std::memory_order_relaxed))) try_unpark(kNotifiedDirect);
}

void Worker::unpark_direct() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (is_parked(park_state_.load(std::memory_order_relaxed))) try_unpark(kNotifiedDirect);
}

void Worker::defer_unregister(TaskHeader* t) noexcept {
  Unregister& u = unreg_[rt_.shard_of(t->id)];
  // Only this thread writes `pending` (registry_remove_list zeroes it from
  // flush_unregister, on this thread too); others only read it. A load and a
  // store, not a locked add: this runs once per completed task.
  u.pending.store(u.pending.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  t->next = u.head;
  u.head = t;
  unreg_any_ = true;
}

bool Worker::flush_unregister(bool all) noexcept {
  if (!unreg_any_) return false;
  unreg_any_ = false;
  TaskHeader* done = nullptr;  // every unlinked task, to release after the shard
  for (unsigned s = 0; s < rt_.num_shards; ++s) {
    Unregister& u = unreg_[s];
    TaskHeader* list = u.head;
    if (list == nullptr) continue;
    // Every list here is another shard's (defer_unregister).
    if (!all && s < rt_.workers.size() &&
        u.pending.load(std::memory_order_relaxed) < kForeignUnregisterBatch) {
      unreg_any_ = true;  // another worker's shard: later, in a bigger batch
      continue;
    }
    u.head = nullptr;
    TaskHeader* last = rt_.registry_remove_list(s, list, &u.pending, this);
    last->next = done;
    done = list;
  }
  // Dropping the last reference destroys the frame, whose destructors may
  // run user code: the shard was left first, and the lists were emptied.
  const bool any = done != nullptr;
  while (done != nullptr) {
    TaskHeader* next = done->next;
    // Its own reference, and those dropped while it was listed.
    release_refs(done, 1u + done->local_drops);
    done = next;
  }
  return any;
}

void Worker::maintenance() noexcept {
  flush_unregister(/*all=*/false);
  drain_inbox();
  requeue_deferred();
  fire_timers();
  run_ready_callbacks();
  reactor_poll(false, 0);
}

// ---------------------------------------------------------------------------
// Searching and parking

bool Worker::become_searching() noexcept {
  if (searching_) return true;
  std::uint32_t n = rt_.num_searching.load(std::memory_order_relaxed);
  if (n >= rt_.max_searching) return false;
  rt_.num_searching.fetch_add(1, std::memory_order_acq_rel);
  searching_ = true;
  return true;
}

void Worker::leave_searching() noexcept {
  if (!searching_) return;
  searching_ = false;
  // The last searcher to find work wakes another, which will search in turn:
  // a burst spreads over the workers one wake-up at a time. Only if some
  // work is left for it, though: a worker woken for one task (a future
  // completed by a thread outside the runtime) used to wake a sibling
  // that found nothing and parked again, a second wake-up per event.
  // (cpu_fanout: 667 such pairs a run, the sibling's 2 ms and the waker's
  // syscalls taken from the 2 cores the pool's jobs run on.) No wake-up is
  // lost: a producer that saw this worker searching skipped its own, and
  // the fence pairs with the one in notify_parked, so the look below sees
  // what that producer queued; a producer that comes later sees no
  // searcher and wakes a worker itself. (With asymmetric_fences the
  // producer has only a compiler barrier: a push made a few nanoseconds
  // ago may be missed here. It is not lost: it sits in the awake
  // producer's own queue, and a worker that parks sees it, park()'s
  // heavy_fence (or its first, bounded sleep) making it visible. Only that
  // one task may miss a helper, for kUnfencedParkNs at most.)
  if (rt_.num_searching.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (work_for_another()) rt_.notify_parked(this);
}

bool Worker::work_for_another() const noexcept {
  if (!queue_.empty() || !rt_.inject.empty()) return true;
  for (const auto& w : rt_.workers)
    if (w.get() != this && !w->queue_.empty()) return true;
  return false;
}

// How long a lone task seen in a sibling's queue is left to its owner (see
// search): a few times the end of a task after its last spawn, far below a
// wake-up (20-30 us, PLATFORM.md).
constexpr std::int64_t kLoneGraceNs = 10'000;
// How often a spinning worker looks at a lone task it leaves (see the spin
// in thread_main).
constexpr std::int64_t kLoneLookNs = 1'000;
// The longest sleep of a worker parked in kParkedLone (park): a lone task
// stuck behind its owner's long step waits this much more than kLoneGraceNs.
constexpr std::int64_t kLoneParkNs = 50'000;
// New lone tasks seen in a row, each soon after the last, before a worker
// parks as kParkedLone: a chain of spawns shows dozens in one spin, the
// odd lone task between batches of outside spawns one or two.
constexpr unsigned kLoneStreak = 8;
// Batches of frames (32 each) a worker refills in one spin before it parks
// (see the spin in thread_main): about 100-200 us of page faults.
constexpr unsigned kMaxRefillsPerSpin = 64;

TaskHeader* Worker::search() noexcept {
  left_lone_ = false;
  if (TaskHeader* t = pop_inject_batch()) return t;
  const std::size_t n = rt_.workers.size();
  if (n < 2 || !become_searching()) return nullptr;
  std::size_t start = xorshift(rng_) % n;
  for (std::size_t i = 0; i < n; ++i) {
    Worker& victim = *rt_.workers[(start + i) % n];
    if (&victim == this) continue;
    // A lone task is left to its owner for kLoneGraceNs: the owner is
    // usually about to pop it (a task that spawned it is finishing), and
    // taking it would move a chain of spawns to this worker and back, cold
    // caches each time. Still at the same place after that, it is taken: a
    // long step on the owner delays it by the grace only. (One more look
    // instead of a time was too short: a search pass is quicker than the
    // end of a spawning task, and chained_spawn's chain still moved
    // thousands of times a run.) steal_into makes the lone check on its own
    // reads of the queue.
    std::uint32_t count = 0;
    bool left_lone = false;
    std::uint32_t lone_at = 0;
    TaskHeader* t =
        victim.queue_.steal_into(queue_, LocalQueue::kCapacity / 2, &count, &left_lone, &lone_at);
    if (left_lone && lone_victim_ == &victim && lone_head_ == lone_at &&
        now_ns() - lone_since_ns_ >= kLoneGraceNs) {
      // Its grace is over: take it if it is still there, still alone.
      left_lone = false;
      t = victim.queue_.steal_into(queue_, LocalQueue::kCapacity / 2, &count, &left_lone, &lone_at,
                                   &lone_head_);
    }
    if (t != nullptr) {
      bump(m_.steal_attempts);
      bump(m_.tasks_stolen, count);
      lone_streak_ = 0;
      return t;
    }
    if (!left_lone) {
      bump(m_.steal_attempts);
      continue;
    }
    left_lone_ = true;
    if (lone_victim_ != &victim || lone_head_ != lone_at) {
      const std::int64_t now = now_ns();
      // A new lone task where another was seen a moment ago: its owner ran
      // the last one itself, as a chain of spawns does, so this worker may
      // park without waiting for them (park, kParkedLone). A lone task seen
      // again is still in its grace: the worker stays up to take it then.
      if (lone_victim_ == &victim && now - lone_since_ns_ < kLoneParkNs) {
        if (++lone_streak_ >= kLoneStreak) lone_credit_ = 2;
      } else {
        lone_streak_ = 0;
      }
      lone_victim_ = &victim;
      lone_head_ = lone_at;
      lone_since_ns_ = now;
    }
  }
  return pop_inject_batch();
}

bool Worker::has_work(std::uint32_t sibling_tasks) const noexcept {
  if (lifo_ || !expedited_.empty() || !owned_ready_.empty() || !queue_.empty() ||
      !deferred_.empty() || ready_head_ || !inbox_.empty() || !rt_.inject.empty())
    return true;
  for (const auto& w : rt_.workers)
    if (w.get() != this && w->queue_.size() >= sibling_tasks) return true;
  return false;
}

// How long a worker with a trim due must stay idle before it trims: long
// enough that a worker parking between the bursts of a busy period (spawn
// bursts park and wake it thousands of times a second) never trims, short
// enough that memory goes back soon after the work is over.
constexpr std::int64_t kTrimAfterIdleNs = 20'000'000;

// The first sleep of a worker that parks while a sibling is awake, which it
// takes without the heavy fence (park): a membarrier then interrupts the
// sibling's core, which costs the parker 15-16 us here (a spinning sibling,
// measured) where it costs 0.1 us with every sibling asleep; the example
// servers park thousands of times a second, each time for well under this.
// A task a sibling pushed to its own queue as this worker parked, without a
// wake-up because the sibling's load of num_parked came first, is still
// run: its owner is awake and runs it after the step under way, and this
// worker sees it after this long at most if that step takes longer.
constexpr std::int64_t kUnfencedParkNs = 1'000'000;

bool Worker::sibling_awake() const noexcept {
  // Only a choice of cost, not of safety: either way park() takes the heavy
  // fence before a sleep longer than kUnfencedParkNs. With every sibling
  // parked, none is on a core to be interrupted, so it takes it at once.
  for (const auto& w : rt_.workers)
    if (w.get() != this && !is_parked(w->park_state_.load(std::memory_order_seq_cst))) return true;
  return false;
}

bool Worker::park(bool lone) noexcept {
  if (searching_) {
    searching_ = false;
    rt_.num_searching.fetch_sub(1, std::memory_order_acq_rel);
  }
  rt_.num_parked.fetch_add(1, std::memory_order_seq_cst);
  if (lone) rt_.num_parked_lone.fetch_add(1, std::memory_order_seq_cst);
  park_state_.store(lone ? kParkedLone : kParked, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // For producers that use a compiler barrier only (see worker.hpp): the
  // heavy fence now, or, while a sibling is awake, a first sleep of
  // kUnfencedParkNs at most and the fence only if it ends with nothing to do.
  const bool unfenced = rt_.asymmetric_fences && sibling_awake();
  if (!unfenced) rt_.heavy_fence();
  // Lone: a sibling's single queued task is no reason to stay up (its owner
  // is about to run it, and producers do not wake us for one: see
  // notify_parked_after_seq_cst), and the sleep is kLoneParkNs at most, so
  // a lone task behind a long step is still taken, that much later.
  // (chained_spawn: the sibling was woken for every few tasks of the chain
  // and spun reading the owner's queue; 2 workers took 75-95 ns a task
  // against 52 with 1.)
  const std::uint32_t sibling_tasks = lone ? 2 : 1;
  // Nothing to run and no stop: what every look before a sleep asks.
  const auto idle = [&] {
    return !has_work(sibling_tasks) && !rt_.stopping.load(std::memory_order_acquire);
  };
  if (idle()) {
    std::int64_t timeout = lone ? kLoneParkNs : -1;
    if (!timers_.empty()) {
      std::int64_t now = now_ns();
      std::int64_t due = timers_.top_deadline();
      std::int64_t left = due > now ? due - now : 0;
      if (timeout < 0 || left < timeout) timeout = left;
    }
    // A burst of frees is under way or just ended (frame_alloc.hpp): park
    // for the idle period at most, then trim if nothing was freed since.
    const std::uint64_t trim_mark = idle_trim_mark();
    if (trim_mark != 0 && (timeout < 0 || timeout > kTrimAfterIdleNs)) timeout = kTrimAfterIdleNs;
    if (timeout != 0) {
      bump(m_.parks);
      if (unfenced && (timeout < 0 || timeout > kUnfencedParkNs)) {
        const std::int64_t start = timeout < 0 ? 0 : now_ns();
        reactor_poll(true, kUnfencedParkNs);
        if (is_parked(park_state_.load(std::memory_order_acquire)) && idle()) {
          // Still idle: now the fence, after which the look below sees any
          // push made so far, and producers see this worker parked, as in
          // a park that took it at once.
          rt_.heavy_fence();
          if (idle()) {
            const std::int64_t left =
                timeout < 0 ? -1 : std::max<std::int64_t>(0, timeout - (now_ns() - start));
            if (left != 0) reactor_poll(true, left);
          }
        }
      } else {
        reactor_poll(true, timeout);
      }
    }
    // Still nothing to do after the idle period: give freed task memory back.
    if (trim_mark != 0 && !lone && !has_work()) idle_trim(trim_mark);
  }
  int prev = park_state_.exchange(kAwake, std::memory_order_acq_rel);
  if (lone) rt_.num_parked_lone.fetch_sub(1, std::memory_order_acq_rel);
  rt_.num_parked.fetch_sub(1, std::memory_order_acq_rel);
  if (prev == kNotifiedSearch || prev == kNotifiedSearchLocal) {
    // The waker counted us as searching.
    searching_ = true;
  }
  woken_for_local_ = prev == kNotifiedSearchLocal;
  lone_timed_out_ = lone && is_parked(prev);
  if (!is_parked(prev)) {
    bump(m_.unparks);
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Helping CpuPools (cpu_pool.cpp, "Idle workers help")

// A job shorter than this ends before a parked worker woken for new work
// would be running (a wake-up costs 20-30 us here, PLATFORM.md): while the
// pool's jobs are, the helper stands in for a parked worker (num_helping),
// so a CpuPool result for a task of this runtime does not wake one up.
constexpr std::int64_t kWatchfulJobNs = 30'000;
// Pools whose jobs take this long or longer are not helped: a helper's loop
// sees its timers and tasks again only between jobs, and 1 ms is about the
// longest step a loop tolerates without notice (a slow step is 100 ms,
// asyncio's slow_callback_duration). Against a job that long, a wake-up
// (20-30 us) costs the task awaiting it under 3% anyway.
constexpr std::int64_t kLongestHelpedJobNs = 1'000'000;

class Worker::PoolHelper final : public CpuHelper {
 public:
  explicit PoolHelper(Worker& w) : w_(w) {}
  bool stop_before_job(std::int64_t expected_ns) noexcept override {
    return w_.help_stop_before_job(expected_ns);
  }

 private:
  Worker& w_;
};

bool Worker::help_stop_before_job(std::int64_t expected_ns) noexcept {
  if (has_work() || rt_.stopping.load(std::memory_order_acquire)) return true;
  if (help_deadline_ != 0 && now_ns() >= help_deadline_) return true;
  const bool watch = expected_ns < kWatchfulJobNs;
  if (watch != help_watching_) {
    help_watching_ = watch;
    if (watch) {
      rt_.num_helping.fetch_add(1, std::memory_order_seq_cst);
      // Pairs with the fence in notify_parked: a producer that saw no
      // helper wakes a worker; otherwise has_work() before the next job
      // sees what it queued.
      std::atomic_thread_fence(std::memory_order_seq_cst);
    } else {
      rt_.num_helping.fetch_sub(1, std::memory_order_seq_cst);
    }
  }
  return false;
}

bool Worker::help_pools() noexcept {
  if (!cpu_pools_want_help()) return false;  // the common case: one relaxed load
  help_deadline_ = 0;
  if (!timers_.empty()) {
    help_deadline_ = std::max<std::int64_t>(1, timers_.top_deadline());
    if (now_ns() >= help_deadline_) return false;
  }
  // A helper is not searching; it drops the token as park() does, without
  // the wake-up leave_searching sends.
  if (searching_) {
    searching_ = false;
    rt_.num_searching.fetch_sub(1, std::memory_order_acq_rel);
  }
  PoolHelper helper(*this);
  tl_worker = nullptr;  // the jobs run as on a thread outside the runtime
  tl_helping = this;
  const std::size_t ran = help_cpu_pools(helper, kLongestHelpedJobNs);
  tl_helping = nullptr;
  tl_worker = this;
  if (help_watching_) {
    help_watching_ = false;
    rt_.num_helping.fetch_sub(1, std::memory_order_seq_cst);
    // Work queued while we stood in for a parked worker is seen by the
    // loop's next look (and by park()'s, after its own fence).
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  if (ran == 0) return false;
  bump(m_.cpu_jobs_helped, ran);
  return true;
}

bool Worker::try_unpark(ParkState as) noexcept {
  int expected = park_state_.load(std::memory_order_acquire);
  if (!is_parked(expected) ||
      !park_state_.compare_exchange_strong(expected, as, std::memory_order_acq_rel))
    return false;
  Worker* from = tl_worker;
  if (from != nullptr && &from->rt_ == &rt_ && !rt_.opts.wake_with_eventfd) {
    from->send_wake_to(*this);
  } else {
    std::uint64_t one = 1;
    ssize_t r = ::write(event_fd_, &one, sizeof one);
    (void)r;
  }
  return true;
}

void Worker::thread_main() {
  tl_worker = this;
  mark_worker_thread();
  {
    std::string name = rt_.opts.thread_name + "-" + std::to_string(index_);
    if (name.size() > 15) name.resize(15);
    pthread_setname_np(pthread_self(), name.c_str());
  }
  std::string error;
  bool ok = setup_ring(&error);
  {
    std::lock_guard<std::mutex> g(rt_.start_mu);
    if (!ok && rt_.start_error.empty()) rt_.start_error = error;
    ++rt_.started;
  }
  rt_.start_cv.notify_all();
  if (!ok) {
    tl_worker = nullptr;
    return;
  }

  const unsigned budget = rt_.opts.event_interval;
  // RuntimeOptions::park_spin and sibling_spin in ns; 0: never spin past
  // spin_before_park.
  const std::int64_t park_spin_ns =
      std::max<std::int64_t>(0, std::chrono::nanoseconds(rt_.opts.park_spin).count());
  const std::int64_t sibling_spin_ns =
      std::max<std::int64_t>(0, std::chrono::nanoseconds(rt_.opts.sibling_spin).count());
  const std::int64_t max_spin_ns = std::max(park_spin_ns, sibling_spin_ns);
  std::int64_t spin_ns = 0;  // the spin after the last park (0: none)
  for (;;) {
    for (unsigned i = 0; i < budget; ++i) {
      TaskHeader* t = next_task();
      if (t == nullptr) break;
      // A worker woken to search that finds work here stops searching, so
      // the next parked worker can be woken (see leave_searching).
      if (searching_) leave_searching();
      lone_timed_out_ = false;
      lone_credit_ = 0;
      run_task_and_submit(t);
    }
    maintenance();
    if (lifo_ || !expedited_.empty() || !owned_ready_.empty() || !queue_.empty() || ready_head_ ||
        !deferred_.empty())
      continue;

    // Out of local work: search, spin a little, then park. After a short
    // park, and with no I/O in flight, spin for up to park_spin (or
    // sibling_spin) instead.
    TaskHeader* found = nullptr;
    std::int64_t spin_until = spin_long_ && inflight_ == 0 ? now_ns() + spin_ns : 0;
    // A timer due sooner ends the spin (the loop below does not fire timers).
    if (spin_until != 0 && !timers_.empty())
      spin_until = std::max<std::int64_t>(1, std::min(spin_until, timers_.top_deadline()));
    unsigned refills = 0;
    for (unsigned spin = 0;; ++spin) {
      found = search();
      if (found || !inbox_.empty() || ready_head_ || !deferred_.empty()) break;
      if (rt_.stopping.load(std::memory_order_acquire)) break;
      // Nothing to run: fault in frames for a thread spawning a burst
      // (frame_alloc.cpp, "Refills by idle workers"), a batch a round, so
      // the next search comes within a few microseconds. Not counted as a
      // spin round (the worker is busy, not waiting), but at most
      // kMaxRefillsPerSpin batches before it goes on to park, which is
      // where it fires timers and reaps I/O: a thread spawning without end
      // does not keep it from its own loop.
      if (refills < kMaxRefillsPerSpin && rt_.opts.refill_frames) {
        if (const std::size_t n = frame_refill_step(); n != 0) {
          bump(m_.frames_refilled, n);
          ++refills;
          --spin;
          continue;
        }
      }
      // The clock is read every 16 rounds only (a vDSO call each).
      // Back from a lone park that timed out: one look, then park again.
      if (spin >= (lone_timed_out_ ? 1u : rt_.opts.spin_before_park) &&
          (spin_until == 0 || ((spin & 15) == 0 && now_ns() >= spin_until)))
        break;
      if (left_lone_) {
        // A sibling's lone task is being left to it (search): look again
        // in kLoneLookNs, not at once. Each look reads the lines the owner
        // writes on every push and pop; looked at back to back, they bounced
        // between the cores on every task of chained_spawn's chain, and the
        // chain ran 2.5-7x slower with 2 workers than with 1.
        const std::int64_t until = now_ns() + kLoneLookNs;
        while (now_ns() < until) __builtin_ia32_pause();
      }
      __builtin_ia32_pause();
    }
    if (found != nullptr) {
      leave_searching();
      lone_timed_out_ = false;
      lone_credit_ = 0;
      run_task_and_submit(found);
      continue;
    }
    if (!inbox_.empty() || ready_head_ || !deferred_.empty()) {
      leave_searching();
      continue;
    }
    if (rt_.stopping.load(std::memory_order_acquire) && !has_work() && inflight_ == 0) break;
    // Queued CpuPool jobs before sleeping; with I/O in flight the worker
    // could not tell its completions came (they surface only in the ring
    // wait), so it does not help then.
    if (rt_.opts.help_cpu_pools && inflight_ == 0 && help_pools()) continue;
    // Before sleeping, the tasks of other workers' shards held back for a
    // bigger batch: their frames are freed now, not at the next wake-up.
    // Their destructors may have made work, so look again.
    if (flush_unregister(/*all=*/true)) continue;
    // Lone for two parks after a streak of new lone tasks (search), not
    // only after a search that saw one: a chain of spawns leaves the
    // owner's queue empty between a pop and the next push, so a single
    // look often misses the lone task, and a normal park then had the next
    // spawn wake this worker again (~60 wake-ups in a 100,000-task chain).
    const bool lone = lone_credit_ != 0;
    if (lone) --lone_credit_;
    if (max_spin_ns == 0) {
      park(lone);
      continue;
    }
    const std::int64_t parked_at = now_ns();
    const bool woken = park(lone);
    spin_ns = std::max(park_spin_ns, woken_for_local_ ? sibling_spin_ns : 0);
    spin_long_ = woken && spin_ns != 0 && now_ns() - parked_at < 4 * spin_ns;
  }
  if (searching_) leave_searching();
  // Multishot requests still armed (a listener that outlives the runtime's
  // tasks): end them while this thread can still reap their CQEs.
  drain_detached();
  flush_unregister(/*all=*/true);
  // The ring and the eventfd stay open until every worker has stopped
  // (RuntimeImpl::stop_workers): another thread may still be sending this
  // worker a wake-up.
  tl_worker = nullptr;
}

}  // namespace weft::detail

// ---------------------------------------------------------------------------
// Loop (the public face of a Worker)

namespace weft {

using detail::Worker;

Loop* Loop::current() noexcept { return Worker::current(); }

Loop& running_loop() {
  Loop* l = Loop::current();
  if (l == nullptr) throw RuntimeError("no running event loop");
  return *l;
}

Runtime& Loop::runtime() const noexcept { return static_cast<const Worker*>(this)->rt().facade; }
unsigned Loop::index() const noexcept { return static_cast<const Worker*>(this)->index_value(); }

void Loop::check_owner(const char* what) const {
  if (Worker::current() != static_cast<const Worker*>(this))
    throw RuntimeError(std::string("Non-thread-safe operation weft::Loop::") + what +
                       " invoked from a thread other than the loop's; use call_soon_threadsafe");
}

void Loop::post_soon(detail::CallbackNode* n) { static_cast<Worker*>(this)->post_soon_owner(n); }

void Loop::post_timer(detail::CallbackNode* n) {
  n->fire = detail::callback_timer_fire;
  static_cast<Worker*>(this)->arm_timer(n);
}

void Loop::post_threadsafe(detail::CallbackNode* n) {
  Worker* w = static_cast<Worker*>(this);
  if (w->rt().shut_down.load(std::memory_order_acquire)) {
    n->release();
    throw RuntimeError("weft::Loop::call_soon_threadsafe: the runtime has shut down");
  }
  w->post_foreign(n);
}

}  // namespace weft
