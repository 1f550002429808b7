// cpu_pool.cpp - CpuPool: CPU-bound jobs on a oneTBB task_arena.
//
// The arena bounds how many jobs run at once (its concurrency) and, because a
// job runs inside it, TBB parallel algorithms a job calls share that bound
// and TBB's work stealing instead of oversubscribing the machine.
//
// Jobs wait in a FIFO under a mutex; at most `concurrency` drain tasks are
// enqueued into the arena, each running jobs until the queue is empty. One
// task_arena::enqueue per job measured 1.37x the time of parallel_reduce on
// cpu_fanout (10,000 chunks); enqueue wakes TBB's market each time.
// shutdown(wait) waits until no drain task and no helper is left
// (task_arena has no "wait for enqueued work"); their last touch of the
// pool is under the lock the waiter needs, so the pool cannot be destroyed
// under them.
//
// # Idle workers help: the waiting thread works instead of sleeping
// A task that fans jobs out to the pool and awaits them in turn keeps
// catching up with the pool: its worker runs dry, parks, and the next
// completion wakes it, 20-30 us a wake-up here (PLATFORM.md). cpu_fanout
// (10,000 chunks, 2 workers, 2 cores) made ~770 park/wake pairs, with 3
// busy threads on 2 cores (the pool's 2 plus the waiting worker): 1.37x the
// time of tbb::parallel_reduce, whose calling thread works in the arena
// itself. Spinning instead of parking was slower still (park_spin, 1.26x
// worse): it takes a core from the threads doing the jobs. So a worker
// about to park runs queued jobs itself, as TBB lets an external thread
// work in an arena (help_cpu_pools, called from worker.cpp):
//   - Slots. drainers + helpers <= concurrency, under mu: a helper takes a
//     slot as a drain task does, so the bound holds and a helper replaces a
//     TBB thread rather than competing with it for the cores. With no slot
//     free it asks a drain task to hand its slot over (retire_wanted; the
//     drainer retires after its batch, never the last one, so the queue
//     always has a drainer) and parks as before; its next look finds the
//     slot free.
//   - Turns. A helper holds its slot for one turn only (the jobs between two
//     looks at its loop): a worker never holds pool capacity while it runs
//     tasks. A slot a helper left is kept for it for kHelperAwayNs: execute()
//     and the drainers start a drainer for it only after that (or at once
//     when no drainer is left), so a task alternating between awaiting and
//     helping costs no enqueue per turn.
//   - In the arena. A helper runs its jobs inside task_arena::execute,
//     isolated (this_task_arena::isolate): TBB algorithms a job calls run in
//     the pool's arena as on the pool's threads, and the helper's waits in
//     them run only that job's subtasks, never a drain task. The arena has
//     concurrency - 1 extra slots reserved for external threads, which
//     TBB's threads never take, and a helper needs a drainer beside it
//     (helpers <= concurrency - 1), so execute() always finds a slot and
//     never blocks the worker. (So this_task_arena::max_concurrency() in a
//     job says 2 * concurrency - 1; the jobs' bound is still concurrency. A
//     pool of concurrency 1 is never helped.)
//   - As a foreign thread. During a turn the worker's Loop::current() is
//     null, as on a TBB thread (a job may block in Future::get(), cannot
//     spawn without a runtime); only a task it wakes still goes to its own
//     LIFO slot, as a wake from that worker would (worker.cpp).
//   - Between jobs the helper asks its worker whether to stop (it has work,
//     a timer is due, the runtime stops), so a task waits at most one job
//     for its worker; and while the pool's jobs are shorter than a wake-up,
//     the helper stands in for a parked worker (worker.cpp, num_helping).
//   - Short jobs only. Drainers and helpers time the jobs (job_ns); a pool
//     whose recent jobs took a worker's limit or more (1 ms, worker.cpp) is
//     not helped: a job delays its helper's loop by up to its length, and a
//     wake-up (20-30 us) is nothing next to a long job anyway.
// RuntimeOptions::help_cpu_pools = false turns helping off.
//
// ThreadSanitizer cannot see the synchronisation inside Debian's libtbb
// (PLATFORM.md). Two hand-offs cross into the arena:
//   - the pool a drain task works for: __tsan_release on it before enqueue(),
//     __tsan_acquire first thing in the task (the jobs themselves pass
//     through the queue's std::mutex, which TSan sees);
//   - TBB's own task object, which TBB's header templates (compiled into our
//     code, so instrumented) construct in enqueue() and destroy after the
//     run, in memory TBB's small-object pool recycles between threads: the
//     hand-off of that memory is invisible to TSan. So the writes made
//     inside enqueue() (the task object and the functor's one pointer, no
//     data of ours) are excluded with AnnotateIgnoreWritesBegin/End.
// All of it compiles to nothing without TSan; no report is suppressed by
// pattern.
//
// # Threads
// TBB limits its workers to hardware threads - 1 by default, because a
// thread calling parallel_for is expected to work too. The arena's TBB
// threads fill its `concurrency` unreserved slots (helpers only ever take
// the reserved ones), so a pool of N would get N - 1 threads; a
// tbb::global_control raising max_allowed_parallelism to N + 1 while the pool
// lives gives it N. (TBB applies the smallest of several live
// global_controls, so the smallest pool above the default sets the limit.)
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>
#include <weft/executor.hpp>
#include <weft/sleep.hpp>  // to_ns

#include "cpu_help.hpp"

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
#define WEFT_TSAN_RELEASE(p) __tsan_release(p)
#define WEFT_TSAN_ACQUIRE(p) __tsan_acquire(p)
#define WEFT_TSAN_IGNORE_WRITES_BEGIN() AnnotateIgnoreWritesBegin(__FILE__, __LINE__)
#define WEFT_TSAN_IGNORE_WRITES_END() AnnotateIgnoreWritesEnd(__FILE__, __LINE__)
#else
#define WEFT_TSAN_RELEASE(p) ((void)(p))
#define WEFT_TSAN_ACQUIRE(p) ((void)(p))
#define WEFT_TSAN_IGNORE_WRITES_BEGIN() ((void)0)
#define WEFT_TSAN_IGNORE_WRITES_END() ((void)0)
#endif

namespace weft::detail {

namespace {

std::int64_t now_ns() noexcept { return to_ns(Clock::now()); }

// How long a slot a helper left (or a drainer handed over) is kept for it: a
// few wake-ups (20-30 us each, PLATFORM.md), so a helper whose task went on
// to await the pool's next result is back in time even if it parked
// meanwhile; a helper gone longer is busy elsewhere, and a drain task takes
// the slot back (one enqueue).
constexpr std::int64_t kHelperAwayNs = 100'000;
// helper_left_ns before any helper ever left: "long ago", without overflow.
constexpr std::int64_t kNever = INT64_MIN / 2;
// job_ns before any job was timed: longer than any limit.
constexpr std::int64_t kUnknownJobNs = INT64_MAX;

// The pools idle workers may help (the registry lock is taken only when
// some pool has queued jobs; lock order: registry, then a pool's mu).
struct HelpRegistry {
  std::mutex mu;
  std::vector<CpuPoolImpl*> pools;  // under mu: every live pool
  // Pools with queued jobs. relaxed: a stale value costs a worker one look
  // too many or one turn too few, never a job (drainers run every job;
  // helpers only take some of them sooner).
  std::atomic<unsigned> wanting{0};
};

HelpRegistry& registry() {
  // Never destroyed: a static CpuPool may outlive static destruction order.
  static HelpRegistry* r = new HelpRegistry;
  return *r;
}

}  // namespace

struct CpuPoolImpl {
  // `c` unreserved slots for TBB's threads, and c - 1 reserved for helpers
  // (a helper needs a drainer beside it, so at most c - 1 help at once),
  // which TBB's threads never take (see "Idle workers help").
  explicit CpuPoolImpl(unsigned c)
      : concurrency(c), arena(static_cast<int>(2 * c - 1), c - 1), reg(registry()) {
    if (static_cast<int>(c) >= tbb::info::default_concurrency())
      workers.emplace(tbb::global_control::max_allowed_parallelism, c + 1);
  }
  unsigned concurrency;
  std::optional<tbb::global_control> workers;  // see "Threads" above
  tbb::task_arena arena;
  HelpRegistry& reg;
  std::mutex mu;
  std::condition_variable idle_cv;
  std::deque<Job> queue;                 // under mu
  unsigned drainers = 0;                 // drain tasks in the arena, under mu
  unsigned helpers = 0;                  // workers helping, under mu
  bool retire_wanted = false;            // a helper asks for a drainer's slot, under mu
  bool wanting = false;                  // counted in reg.wanting, under mu
  bool shut = false;                     // under mu
  std::int64_t helper_left_ns = kNever;  // when a helper last ended a turn, under mu
  std::atomic<bool> drop{false};         // shutdown(cancel_pending): skip unstarted jobs
  // How long recent jobs took, timed by drainers (per batch) and helpers
  // (per job). relaxed: an estimate; two threads updating it at once may
  // lose a sample.
  std::atomic<std::int64_t> job_ns{kUnknownJobNs};

  void record_job_ns(std::int64_t took) noexcept {
    // A running average weighting the newest sample 1/8: one odd job does
    // not change the pool's character.
    const std::int64_t old = job_ns.load(std::memory_order_relaxed);
    job_ns.store(old == kUnknownJobNs ? took : old + (took - old) / 8, std::memory_order_relaxed);
  }

  void push_locked(Job job);
  Job pop_locked() noexcept;
  void unwant_locked() noexcept;
  bool slot_kept_for_helper(std::int64_t now) const noexcept {
    return now - helper_left_ns < kHelperAwayNs;
  }
  /// Enqueues a drain task for a slot already counted in `drainers`; on
  /// failure gives the slot back and rethrows.
  void enqueue_drainer();
  void drain() noexcept;
  std::size_t help(CpuHelper& h, std::int64_t longest_job_ns) noexcept;
};

void CpuPoolImpl::push_locked(Job job) {
  queue.push_back(std::move(job));
  if (!wanting) {
    wanting = true;
    reg.wanting.fetch_add(1, std::memory_order_relaxed);
  }
}

void CpuPoolImpl::unwant_locked() noexcept {
  if (wanting) {
    wanting = false;
    reg.wanting.fetch_sub(1, std::memory_order_relaxed);
  }
}

Job CpuPoolImpl::pop_locked() noexcept {
  Job j = std::move(queue.front());
  queue.pop_front();
  if (queue.empty()) unwant_locked();
  return j;
}

namespace {

// The functor handed to task_arena::enqueue (see the file comment). It only
// reads its own memory, never writes it, after enqueue(): TBB recycles that
// memory between threads without TSan seeing it.
struct ArenaTask {
  CpuPoolImpl* pool;
  void operator()() const {
    WEFT_TSAN_ACQUIRE(pool);
    pool->drain();
  }
};

}  // namespace

void CpuPoolImpl::enqueue_drainer() {
  WEFT_TSAN_RELEASE(this);
  WEFT_TSAN_IGNORE_WRITES_BEGIN();
  try {
    arena.enqueue(ArenaTask{this});
  } catch (...) {
    WEFT_TSAN_IGNORE_WRITES_END();
    std::lock_guard<std::mutex> g(mu);
    if (--drainers == 0 && helpers == 0) idle_cv.notify_all();
    throw;  // the job stays queued for another drainer, a helper or shutdown
  }
  WEFT_TSAN_IGNORE_WRITES_END();
}

// One arena task: runs queued jobs until the queue is empty, or hands its
// slot to a helper that asked for one. Its last touch of the pool is the
// unlock after `drainers` drops, under the same lock the shutdown waiter
// needs, so the pool cannot die under it.
void CpuPoolImpl::drain() noexcept {
  // Jobs are taken a few at a time so the submitter and the drainers do not
  // contend for the lock once per job (futex sleeps under contention cost
  // microseconds here); 8 keeps a burst spread over every drainer.
  constexpr std::size_t kBatch = 8;
  std::array<Job, kBatch> batch;
  std::unique_lock<std::mutex> lk(mu);
  while (!queue.empty()) {
    const std::size_t n =
        std::min<std::size_t>({kBatch, queue.size(), queue.size() / concurrency + 1});
    for (std::size_t i = 0; i < n; ++i) batch[i] = pop_locked();
    lk.unlock();
    const std::int64_t t0 = now_ns();
    for (std::size_t i = 0; i < n; ++i) {
      if (!drop.load(std::memory_order_relaxed)) batch[i]();
      batch[i] = Job();  // a dropped job cancels its future here
    }
    record_job_ns((now_ns() - t0) / static_cast<std::int64_t>(n));
    lk.lock();
    if (queue.empty() || (!retire_wanted && drainers + helpers >= concurrency)) continue;
    const std::int64_t now = now_ns();
    if (retire_wanted) {
      retire_wanted = false;
      if (drainers >= 2) {
        // Hand this slot to the helper, kept for it as if it had just left
        // it: if it does not come back, a drainer takes the slot back.
        helper_left_ns = now;
        break;
      }
    } else if (!slot_kept_for_helper(now)) {
      // A slot a helper left long ago (or enqueue() failed): run it again.
      ++drainers;
      lk.unlock();
      try {
        enqueue_drainer();
      } catch (...) {
      }
      lk.lock();
    }
  }
  if (--drainers == 0 && helpers == 0) idle_cv.notify_all();
}

// A helper's turn, inside the arena: one job at a time (a batch would make
// the helper's task wait for all of it), asking before each.
std::size_t CpuPoolImpl::help(CpuHelper& h, std::int64_t longest_job_ns) noexcept {
  std::size_t ran = 0;
  for (;;) {
    const std::int64_t expected = job_ns.load(std::memory_order_relaxed);
    if (expected >= longest_job_ns || h.stop_before_job(expected)) break;
    Job job;
    {
      std::lock_guard<std::mutex> g(mu);
      if (queue.empty()) break;
      job = pop_locked();
    }
    const std::int64_t t0 = now_ns();
    if (!drop.load(std::memory_order_relaxed)) job();
    job = Job();  // a dropped job cancels its future here
    record_job_ns(now_ns() - t0);
    ++ran;
  }
  return ran;
}

bool cpu_pools_want_help() noexcept {
  return registry().wanting.load(std::memory_order_relaxed) != 0;
}

std::size_t help_cpu_pools(CpuHelper& h, std::int64_t longest_job_ns) noexcept {
  HelpRegistry& reg = registry();
  if (reg.wanting.load(std::memory_order_relaxed) == 0) return 0;
  CpuPoolImpl* p = nullptr;
  {
    std::lock_guard<std::mutex> g(reg.mu);
    for (CpuPoolImpl* q : reg.pools) {
      std::lock_guard<std::mutex> pg(q->mu);
      if (q->queue.empty() || q->job_ns.load(std::memory_order_relaxed) >= longest_job_ns) continue;
      // A helper works beside a drainer (so at most concurrency - 1 help,
      // one per reserved slot), never instead of the last one.
      if (q->drainers >= 1 && q->drainers + q->helpers < q->concurrency) {
        ++q->helpers;  // the pool cannot finish shutting down until we leave
        p = q;
        break;
      }
      if (q->drainers >= 2) q->retire_wanted = true;
    }
  }
  if (p == nullptr) return 0;
  std::size_t ran = 0;
  try {
    p->arena.execute(
        [&] { tbb::this_task_arena::isolate([&] { ran = p->help(h, longest_job_ns); }); });
  } catch (...) {
    // TBB could not take the thread in (out of memory): the jobs stay queued.
  }
  bool need_drainer = false;
  {
    std::lock_guard<std::mutex> g(p->mu);
    --p->helpers;
    p->helper_left_ns = now_ns();
    if (!p->queue.empty() && p->drainers == 0) {
      ++p->drainers;  // every queue has a drainer
      need_drainer = true;
    } else if (p->drainers == 0 && p->helpers == 0) {
      p->idle_cv.notify_all();
    }
  }
  if (need_drainer) {
    try {
      p->enqueue_drainer();
    } catch (...) {
    }
  }
  return ran;
}

}  // namespace weft::detail

namespace weft {

CpuPool::CpuPool(CpuPoolOptions o) {
  unsigned c = o.max_concurrency;
  if (c == 0) c = std::max(1u, std::thread::hardware_concurrency());
  impl_ = std::make_unique<detail::CpuPoolImpl>(c);
  detail::HelpRegistry& reg = impl_->reg;
  std::lock_guard<std::mutex> g(reg.mu);
  reg.pools.push_back(impl_.get());
}

CpuPool::~CpuPool() {
  {
    // No helper starts a turn here from now on; those in one are waited for.
    detail::HelpRegistry& reg = impl_->reg;
    std::lock_guard<std::mutex> g(reg.mu);
    reg.pools.erase(std::find(reg.pools.begin(), reg.pools.end(), impl_.get()));
  }
  shutdown(true, false);
  std::lock_guard<std::mutex> g(impl_->mu);
  impl_->unwant_locked();  // jobs left unrun (enqueue failed) are cancelled with the queue
}

unsigned CpuPool::max_concurrency() const noexcept { return impl_->concurrency; }

void CpuPool::execute(Job job) {
  detail::CpuPoolImpl* p = impl_.get();
  {
    std::lock_guard<std::mutex> g(p->mu);
    if (p->shut) throw RuntimeError("weft::CpuPool: cannot schedule new jobs after shutdown");
    p->push_locked(std::move(job));
    // A drain task per slot at most: it keeps its TBB thread on the queue
    // until the queue is empty, so a burst of jobs costs one enqueue per
    // slot, not one per job. A slot a helper left moments ago is kept for
    // it while some drainer runs.
    if (p->drainers + p->helpers >= p->concurrency) return;
    if (p->drainers > 0 && p->helper_left_ns != detail::kNever &&
        p->slot_kept_for_helper(detail::now_ns()))
      return;
    ++p->drainers;
  }
  p->enqueue_drainer();
}

void CpuPool::shutdown(bool wait, bool cancel_pending) {
  detail::CpuPoolImpl* p = impl_.get();
  std::deque<Job> dropped;
  std::unique_lock<std::mutex> lk(p->mu);
  p->shut = true;
  if (cancel_pending) {
    p->drop.store(true, std::memory_order_relaxed);
    dropped.swap(p->queue);
    p->unwant_locked();
  }
  if (wait) p->idle_cv.wait(lk, [p] { return p->drainers == 0 && p->helpers == 0; });
  lk.unlock();
  dropped.clear();  // cancels their futures, outside the lock
}

}  // namespace weft
