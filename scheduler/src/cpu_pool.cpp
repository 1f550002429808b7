// cpu_pool.cpp - CpuPool: CPU-bound jobs on a oneTBB task_arena.
//
// The arena bounds how many jobs run at once (its concurrency) and, because a
// job runs inside it, TBB parallel algorithms a job calls share that bound
// and TBB's work stealing instead of oversubscribing the machine.
//
// `outstanding` counts jobs handed to the arena and not yet finished;
// shutdown(wait) blocks until it is zero (task_arena has no "wait for
// enqueued work"). It lives under a mutex, taken once when a job is accepted
// and once when it ends, rather than in an atomic: the last job's finisher
// must be done with the pool before the waiter may destroy it, and holding
// the lock across "count hits zero, notify" is what guarantees that (an
// atomic decrement followed by a notify would touch a freed pool). A
// blocking-call-sized job does not notice an uncontended lock.
//
// ThreadSanitizer cannot see the synchronisation inside Debian's libtbb
// (PLATFORM.md). Two hand-offs cross into the arena:
//   - the job: __tsan_release on its Payload before enqueue(), __tsan_acquire
//     first thing in the task;
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

#include <atomic>
#include <condition_variable>
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
  std::uint64_t outstanding = 0;  // under mu
  bool shut = false;              // under mu
  std::atomic<bool> drop{false};  // shutdown(cancel_pending): skip unstarted jobs

  void finished() noexcept {
    std::lock_guard<std::mutex> g(mu);
    if (--outstanding == 0) idle_cv.notify_all();
  }
};

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

struct Payload {
  detail::CpuPoolImpl* pool;
  Job job;
};

// The functor handed to task_arena::enqueue (see the file comment). It only
// reads its own memory, never writes it, after enqueue(): TBB recycles that
// memory between threads without TSan seeing it.
struct ArenaTask {
  Payload* payload;
  void operator()() const {
    Payload* p = payload;
    WEFT_TSAN_ACQUIRE(p);
    detail::CpuPoolImpl* pool = p->pool;
    if (!pool->drop.load(std::memory_order_relaxed)) p->job();
    delete p;  // a dropped job cancels its future here
    pool->finished();
  }
};

}  // namespace

void CpuPool::execute(Job job) {
  detail::CpuPoolImpl* p = impl_.get();
  {
    std::lock_guard<std::mutex> g(p->mu);
    if (p->shut) throw RuntimeError("weft::CpuPool: cannot schedule new jobs after shutdown");
    ++p->outstanding;
  }
  auto* payload = new Payload{p, std::move(job)};
  WEFT_TSAN_RELEASE(payload);
  try {
    WEFT_TSAN_IGNORE_WRITES_BEGIN();
    p->arena.enqueue(ArenaTask{payload});
    WEFT_TSAN_IGNORE_WRITES_END();
  } catch (...) {
    WEFT_TSAN_IGNORE_WRITES_END();
    delete payload;  // cancels the job's future
    p->finished();
    throw;
  }
}

void CpuPool::shutdown(bool wait, bool cancel_pending) {
  detail::CpuPoolImpl* p = impl_.get();
  if (cancel_pending) p->drop.store(true, std::memory_order_relaxed);
  std::unique_lock<std::mutex> lk(p->mu);
  p->shut = true;
  if (!wait) return;
  p->idle_cv.wait(lk, [p] { return p->outstanding == 0; });
}

}  // namespace weft
