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
// shutdown(wait) waits until no drain task is left (task_arena has no "wait
// for enqueued work"); a drainer's last touch of the pool is under the lock
// the waiter needs, so the pool cannot be destroyed under it.
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
// thread calling parallel_for is expected to work too. Nothing outside ever
// enters this arena (jobs are only enqueued), so a pool of N would get N - 1
// threads; a tbb::global_control raising max_allowed_parallelism to N + 1
// while the pool lives gives it N. (TBB applies the smallest of several live
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
#include <weft/executor.hpp>

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

struct CpuPoolImpl {
  // No slot reserved for external threads: jobs are only ever enqueued, so
  // every slot goes to a TBB worker.
  explicit CpuPoolImpl(unsigned c) : concurrency(c), arena(static_cast<int>(c), 0) {
    if (static_cast<int>(c) >= tbb::info::default_concurrency())
      workers.emplace(tbb::global_control::max_allowed_parallelism, c + 1);
  }
  unsigned concurrency;
  std::optional<tbb::global_control> workers;  // see "Threads" above
  tbb::task_arena arena;
  std::mutex mu;
  std::condition_variable idle_cv;
  std::deque<Job> queue;          // under mu
  unsigned drainers = 0;          // drain tasks in the arena, under mu
  bool shut = false;              // under mu
  std::atomic<bool> drop{false};  // shutdown(cancel_pending): skip unstarted jobs

  void drain() noexcept;
};

// One arena task: runs queued jobs until the queue is empty. Its last touch
// of the pool is the unlock after `drainers` drops, under the same lock the
// shutdown waiter needs, so the pool cannot die under it.
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
    for (std::size_t i = 0; i < n; ++i) {
      batch[i] = std::move(queue.front());
      queue.pop_front();
    }
    lk.unlock();
    for (std::size_t i = 0; i < n; ++i) {
      if (!drop.load(std::memory_order_relaxed)) batch[i]();
      batch[i] = Job();  // a dropped job cancels its future here
    }
    lk.lock();
  }
  if (--drainers == 0) idle_cv.notify_all();
}

}  // namespace weft::detail

namespace weft {

CpuPool::CpuPool(CpuPoolOptions o) {
  unsigned c = o.max_concurrency;
  if (c == 0) c = std::max(1u, std::thread::hardware_concurrency());
  impl_ = std::make_unique<detail::CpuPoolImpl>(c);
}

CpuPool::~CpuPool() { shutdown(true, false); }

unsigned CpuPool::max_concurrency() const noexcept { return impl_->concurrency; }

namespace {

// The functor handed to task_arena::enqueue (see the file comment). It only
// reads its own memory, never writes it, after enqueue(): TBB recycles that
// memory between threads without TSan seeing it.
struct ArenaTask {
  detail::CpuPoolImpl* pool;
  void operator()() const {
    WEFT_TSAN_ACQUIRE(pool);
    pool->drain();
  }
};

}  // namespace

void CpuPool::execute(Job job) {
  detail::CpuPoolImpl* p = impl_.get();
  {
    std::lock_guard<std::mutex> g(p->mu);
    if (p->shut) throw RuntimeError("weft::CpuPool: cannot schedule new jobs after shutdown");
    p->queue.push_back(std::move(job));
    // A drain task per slot at most: it keeps its TBB thread on the queue
    // until the queue is empty, so a burst of jobs costs one enqueue per
    // slot, not one per job.
    if (p->drainers >= p->concurrency) return;
    ++p->drainers;
  }
  WEFT_TSAN_RELEASE(p);
  WEFT_TSAN_IGNORE_WRITES_BEGIN();
  try {
    p->arena.enqueue(ArenaTask{p});
  } catch (...) {
    WEFT_TSAN_IGNORE_WRITES_END();
    std::lock_guard<std::mutex> g(p->mu);
    if (--p->drainers == 0) p->idle_cv.notify_all();
    throw;  // the job stays queued for another drainer or shutdown
  }
  WEFT_TSAN_IGNORE_WRITES_END();
}

void CpuPool::shutdown(bool wait, bool cancel_pending) {
  detail::CpuPoolImpl* p = impl_.get();
  std::deque<Job> dropped;
  std::unique_lock<std::mutex> lk(p->mu);
  p->shut = true;
  if (cancel_pending) {
    p->drop.store(true, std::memory_order_relaxed);
    dropped.swap(p->queue);
  }
  if (wait) p->idle_cv.wait(lk, [p] { return p->drainers == 0; });
  lk.unlock();
  dropped.clear();  // cancels their futures, outside the lock
}

}  // namespace weft
