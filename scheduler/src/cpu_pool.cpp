// cpu_pool.cpp - CpuPool: CPU-bound jobs on a oneTBB task_arena.
//
// The arena bounds how many jobs run at once (its concurrency) and, because a
// job runs inside it, TBB parallel algorithms a job calls share that bound
// and TBB's work stealing instead of oversubscribing the machine.
//
// `outstanding` counts jobs handed to the arena and not yet finished;
// shutdown(wait) blocks until it is zero (task_arena has no "wait for
// enqueued work", and a task_group would make every job pay for its
// reference counting twice). execute() increments before it checks `shut`,
// shutdown sets `shut` before it waits, both seq_cst, so a job is either
// refused or waited for, never lost.
//
// ThreadSanitizer cannot see the synchronisation inside Debian's libtbb
// (PLATFORM.md), so the hand-off of each job into the arena is announced with
// __tsan_release/__tsan_acquire on the job's address, under TSan only.
#include <tbb/task_arena.h>

#include <atomic>
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
#define WEFT_TSAN_RELEASE(p) __tsan_release(p)
#define WEFT_TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define WEFT_TSAN_RELEASE(p) ((void)(p))
#define WEFT_TSAN_ACQUIRE(p) ((void)(p))
#endif

namespace weft::detail {

struct CpuPoolImpl {
  // No slot reserved for external threads: jobs are only ever enqueued, so
  // every slot goes to a TBB worker.
  explicit CpuPoolImpl(unsigned c) : concurrency(c), arena(static_cast<int>(c), 0) {}
  unsigned concurrency;
  tbb::task_arena arena;
  std::atomic<std::uint64_t> outstanding{0};
  std::atomic<bool> shut{false};
  std::atomic<bool> drop{false};  // shutdown(cancel_pending): skip unstarted jobs

  void finished() noexcept {
    if (outstanding.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        shut.load(std::memory_order_seq_cst))
      outstanding.notify_all();
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

void CpuPool::execute(Job job) {
  detail::CpuPoolImpl* p = impl_.get();
  p->outstanding.fetch_add(1, std::memory_order_seq_cst);
  if (p->shut.load(std::memory_order_seq_cst)) {
    p->finished();
    throw RuntimeError("weft::CpuPool: cannot schedule new jobs after shutdown");
  }
  auto* raw = new Job(std::move(job));
  WEFT_TSAN_RELEASE(raw);
  try {
    p->arena.enqueue([p, raw] {
      WEFT_TSAN_ACQUIRE(raw);
      std::unique_ptr<Job> j(raw);
      if (!p->drop.load(std::memory_order_relaxed)) (*j)();
      j.reset();  // a dropped job cancels its future here
      p->finished();
    });
  } catch (...) {
    delete raw;
    p->finished();
    throw;
  }
}

void CpuPool::shutdown(bool wait, bool cancel_pending) {
  detail::CpuPoolImpl* p = impl_.get();
  if (cancel_pending) p->drop.store(true, std::memory_order_relaxed);
  p->shut.store(true, std::memory_order_seq_cst);
  if (!wait) return;
  for (std::uint64_t n = p->outstanding.load(std::memory_order_seq_cst); n != 0;
       n = p->outstanding.load(std::memory_order_seq_cst)) {
    p->outstanding.wait(n, std::memory_order_seq_cst);
  }
}

}  // namespace weft
