// blocking_pool.cpp - BlockingPool: asyncio's ThreadPoolExecutor.
//
// One mutex guards the FIFO of jobs and the thread bookkeeping; blocking
// calls take microseconds to seconds, so a lock per job is noise next to the
// thread wake-up it usually needs (20-30 us here, PLATFORM.md).
//
// # Idle threads and wake-ups
// `idle_` counts threads waiting for work that nobody has claimed yet. A
// submitter that finds idle_ > 0 claims one (idle_--, wakeups_++) and
// notifies; otherwise it starts a new thread if below max_threads, else the
// job waits in the queue for the next thread that finishes one. A waiting
// thread that wakes with wakeups_ > 0 takes one claim; a thread that times
// out unclaimed after keep_alive retires. So each job wakes at most one
// thread and no job is left queued while an unclaimed idle thread sleeps
// (Tokio's blocking pool counts `num_notify` the same way).
//
// # Spinning before sleeping
// A thread that runs out of work first spins for `idle_spin` (counted in
// `spinning`, so a submitter neither wakes nor starts a thread for a job a
// spinner will take) before it sleeps on the condition variable. Sleeping
// and waking cost 20-30 us here (PLATFORM.md), more than a short blocking
// call, so a task calling run_in_executor in a loop would otherwise pay a
// wake-up per call. The spinner polls `queued` (an atomic copy of the queue
// length) without the lock with a pause instruction (not sched_yield, whose
// spinner may not run again for milliseconds on a busy machine) and leaves
// the spin under the lock, re-checking the queue, so no job is stranded.
// Only one thread spins at a time: more spinners than cores would take the
// CPU from the workers that submit the jobs.
//
// # Thread ids and names
// A new thread takes the lowest id no live thread holds (a scan of
// `threads`, only when a thread starts, which costs far more), so ids stay
// below max_threads and a retired thread's id is reused rather than counting
// up for ever. (A retiring thread gives its id back when it leaves `threads`,
// just before it exits, so its successor may briefly share its name.) The
// name is "<prefix>-<id>"; Linux keeps 15 bytes, and when that does not fit,
// the prefix is cut, not the number: the digits after the last '-' are the
// id, so names within a pool stay distinct.
//
// # Retiring and joining
// A retiring thread moves its own std::thread into `zombies_` and leaves; the
// next thread start or shutdown joins zombies outside the lock. shutdown(wait)
// waits until `live_` is zero and joins everyone, so destroying the pool
// never leaves a thread running.
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>
#include <weft/executor.hpp>

namespace weft::detail {

// The pool whose thread this is (to refuse waiting for oneself).
thread_local const BlockingPoolImpl* tl_blocking_pool = nullptr;

struct BlockingPoolImpl : std::enable_shared_from_this<BlockingPoolImpl> {
  std::mutex mu;
  std::condition_variable work_cv;  // idle threads wait here
  std::condition_variable gone_cv;  // shutdown(wait) waits here for live_ == 0
  std::deque<Job> queue;
  std::atomic<std::size_t> queued{0};  // queue.size(), for spinners to poll
  unsigned spinning = 0;
  std::unordered_map<unsigned, std::thread> threads;
  std::vector<std::thread> zombies;
  unsigned max_threads = 1;
  unsigned live = 0;
  unsigned idle = 0;
  unsigned wakeups = 0;
  bool shut = false;
  Duration keep_alive{};
  Duration idle_spin{};
  std::string name;

  void thread_main(unsigned id);
  std::vector<std::thread> take_zombies() { return std::exchange(zombies, {}); }
  /// The lowest id no live thread holds. Caller holds mu.
  unsigned free_id() const {
    unsigned id = 0;
    while (threads.count(id) != 0) ++id;
    return id;
  }
};

namespace {

// The longest thread name Linux keeps (TASK_COMM_LEN 16 with the NUL);
// pthread_setname_np rejects a longer one with ERANGE.
constexpr std::size_t kThreadNameMax = 15;

/// "<prefix>-<id>", the prefix cut to fit kThreadNameMax (see the essay).
std::string thread_name_for(const std::string& prefix, unsigned id) {
  const std::string suffix = "-" + std::to_string(id);
  std::size_t keep = std::min(prefix.size(), kThreadNameMax - suffix.size());
  // Do not leave half of a UTF-8 sequence (continuation bytes are 10xxxxxx).
  while (keep > 0 && keep < prefix.size() &&
         (static_cast<unsigned char>(prefix[keep]) & 0xC0) == 0x80)
    --keep;
  return prefix.substr(0, keep) + suffix;
}

}  // namespace

void BlockingPoolImpl::thread_main(unsigned id) {
  tl_blocking_pool = this;
  pthread_setname_np(pthread_self(), thread_name_for(name, id).c_str());

  std::unique_lock<std::mutex> lk(mu);
  for (;;) {
    while (!queue.empty()) {
      Job j = std::move(queue.front());
      queue.pop_front();
      queued.store(queue.size(), std::memory_order_relaxed);
      lk.unlock();
      j();
      j = Job();  // destroy outside the lock
      lk.lock();
    }
    if (shut) break;
    if (idle_spin.count() > 0 && spinning == 0) {
      ++spinning;
      lk.unlock();
      const TimePoint until = Clock::now() + idle_spin;
      // A pause loop, not sched_yield (see the essay); the clock is read
      // every 64 rounds only.
      for (unsigned i = 0; queued.load(std::memory_order_relaxed) == 0; ++i) {
        __builtin_ia32_pause();
        if ((i & 63) == 63 && Clock::now() >= until) break;
      }
      lk.lock();
      --spinning;
      if (!queue.empty()) continue;
      if (shut) break;
    }
    ++idle;
    bool timed_out = false;
    const TimePoint deadline = Clock::now() + keep_alive;
    for (;;) {
      if (wakeups > 0) {  // claimed by a submitter (which took us off idle)
        --wakeups;
        break;
      }
      if (shut || timed_out) {
        --idle;
        break;
      }
      timed_out = work_cv.wait_until(lk, deadline) == std::cv_status::timeout;
    }
    if (queue.empty() && (shut || timed_out)) break;
  }
  // Retire: hand our std::thread to whoever joins next.
  auto it = threads.find(id);
  if (it != threads.end()) {
    zombies.push_back(std::move(it->second));
    threads.erase(it);
  }
  --live;
  if (live <= 1) gone_cv.notify_all();  // 1: a shutdown on our own thread waits for that
}

}  // namespace weft::detail

namespace weft {

using detail::BlockingPoolImpl;

BlockingPool::BlockingPool(BlockingPoolOptions o) : impl_(std::make_shared<BlockingPoolImpl>()) {
  unsigned m = o.max_threads;
  if (m == 0) m = std::min(32u, std::max(1u, std::thread::hardware_concurrency()) + 4);
  impl_->max_threads = m;
  impl_->keep_alive = o.keep_alive;
  impl_->idle_spin = o.idle_spin;
  impl_->name = std::move(o.thread_name);
}

BlockingPool::~BlockingPool() { shutdown(true, false); }

unsigned BlockingPool::max_threads() const noexcept { return impl_->max_threads; }

unsigned BlockingPool::threads() const noexcept {
  std::lock_guard<std::mutex> g(impl_->mu);
  return impl_->live;
}

void BlockingPool::execute(Job job) {
  BlockingPoolImpl& p = *impl_;
  std::vector<std::thread> zombies;
  {
    std::lock_guard<std::mutex> g(p.mu);
    if (p.shut) throw RuntimeError("weft::BlockingPool: cannot schedule new jobs after shutdown");
    p.queue.push_back(std::move(job));
    p.queued.store(p.queue.size(), std::memory_order_relaxed);
    if (p.spinning >= p.queue.size()) {
      // a spinning thread takes it
    } else if (p.idle > 0) {
      --p.idle;
      ++p.wakeups;
      p.work_cv.notify_one();
    } else if (p.live < p.max_threads) {
      const unsigned id = p.free_id();
      // Each thread co-owns the impl, so a pool destroyed on one of its own
      // threads (which cannot join itself) is freed when that thread ends.
      p.threads.emplace(id, std::thread([self = impl_, id] { self->thread_main(id); }));
      ++p.live;
      zombies = p.take_zombies();
    }
  }
  for (auto& z : zombies) z.join();
}

void BlockingPool::shutdown(bool wait, bool cancel_pending) {
  BlockingPoolImpl& p = *impl_;
  std::deque<Job> dropped;
  {
    std::lock_guard<std::mutex> g(p.mu);
    p.shut = true;
    if (cancel_pending) {
      dropped.swap(p.queue);
      p.queued.store(0, std::memory_order_relaxed);
    }
    p.work_cv.notify_all();
  }
  dropped.clear();  // cancels their futures, outside the lock
  if (!wait) return;
  const bool own_thread = detail::tl_blocking_pool == &p;
  std::unique_lock<std::mutex> lk(p.mu);
  if (own_thread) {
    // Called on one of our threads: it cannot join itself; detach it and
    // wait for the others.
    for (auto& [id, t] : p.threads) {
      if (t.joinable() && t.get_id() == std::this_thread::get_id()) t.detach();
    }
  }
  p.gone_cv.wait(lk, [&] { return p.live == (own_thread ? 1u : 0u); });
  std::vector<std::thread> all = p.take_zombies();
  lk.unlock();
  for (auto& t : all) {
    if (t.joinable()) t.join();
  }
}

}  // namespace weft
