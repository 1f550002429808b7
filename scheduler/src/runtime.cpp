// runtime.cpp - Runtime: start-up, the shared scheduling paths (remote
// spawns, waking parked workers), the task registry, metrics and the
// asyncio.run end sequence.
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <thread>
#include <weft/runtime.hpp>

#include "asyncgen_hooks.hpp"
#include "worker.hpp"

namespace weft::detail {

namespace {
std::atomic<std::uint64_t> g_runtime_serials{0};

// Registers the process for membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
// (once; the registration lasts as long as the process). False if the
// kernel lacks it or a seccomp filter refuses the system call.
bool register_membarrier() noexcept {
  static const bool ok = [] {
    const long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    return syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  }();
  return ok;
}
}  // namespace

RuntimeImpl::RuntimeImpl(Runtime& f, RuntimeOptions o)
    : facade(f),
      opts(std::move(o)),
      serial(g_runtime_serials.fetch_add(1, std::memory_order_relaxed) + 1),
      asymmetric_fences(register_membarrier()) {
  if (opts.workers == 0) opts.workers = std::max(1u, std::thread::hardware_concurrency());
  if (opts.workers > 1024) throw ValueError("weft::RuntimeOptions::workers must be at most 1024");
  if (opts.ring_entries == 0 || opts.ring_entries > 32768)
    throw ValueError("weft::RuntimeOptions::ring_entries must be in 1..32768");
  if (opts.global_queue_interval == 0)
    throw ValueError("weft::RuntimeOptions::global_queue_interval must be at least 1");
  if (opts.event_interval == 0)
    throw ValueError("weft::RuntimeOptions::event_interval must be at least 1");
  max_searching = opts.max_searching ? opts.max_searching : (opts.workers + 1) / 2;
  // One per worker and one for spawns from outside (the last), rounded up to
  // a power of two so that a task's shard is a mask of its id, not a
  // division on every spawn and completion.
  num_shards = std::bit_ceil(opts.workers + 1);
  shard_mask = num_shards - 1;
  shards = std::make_unique<RegistryShard[]>(num_shards);
  workers.reserve(opts.workers);
  for (unsigned i = 0; i < opts.workers; ++i) workers.push_back(std::make_unique<Worker>(*this, i));
  // Last: nothing after it may throw, or the set would leak.
  if (opts.fixed_buffers > 0)
    fixed_buffers = FixedBufferSet::create(opts.fixed_buffers, opts.fixed_buffer_size);
}

RuntimeImpl::~RuntimeImpl() {
  if (fixed_buffers != nullptr) fixed_buffers->release_ref();
}

void RuntimeImpl::start() {
  for (auto& w : workers) w->start();
  std::unique_lock<std::mutex> lk(start_mu);
  start_cv.wait(lk, [&] { return started == workers.size(); });
  if (!start_error.empty()) {
    std::string err = start_error;
    lk.unlock();
    stop_workers();
    throw RuntimeError(err);
  }
}

void RuntimeImpl::stop_workers() {
  // No burst of frees may wake a worker of ours any more (frame_alloc.hpp);
  // waits for a wake under way.
  clear_trim_wake_hook(this);
  stopping.store(true, std::memory_order_seq_cst);
  for (auto& w : workers) w->unpark_direct();
  for (auto& w : workers) w->join();
  shut_down.store(true, std::memory_order_release);
  // Every task has finished, so no new remote wake-up can start; wait for
  // those still under way (they may write to a worker's eventfd), then close
  // the rings.
  wait_remote_quiescent();
  for (auto& w : workers) w->close_ring();
}

void RuntimeImpl::schedule_remote(TaskHeader* t) noexcept {
  remote_users.fetch_add(1, std::memory_order_acq_rel);
  inject.push(t);  // a seq_cst CAS (InjectQueue::link)
  notify_parked_after_seq_cst(nullptr, false);
  remote_users.fetch_sub(1, std::memory_order_acq_rel);
}

void RuntimeImpl::wait_remote_quiescent() const noexcept {
  while (remote_users.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

void RuntimeImpl::push_inject_list(TaskHeader* first, TaskHeader* last) noexcept {
  inject.push_list(first, last);
}

void RuntimeImpl::notify_parked(Worker* from, bool local) noexcept {
  // Pairs with the fence in Worker::park(): either that worker sees our work,
  // or we see it parked (see worker.hpp). With asymmetric_fences the
  // parker's heavy_fence() stands in for ours: it makes this thread's
  // earlier stores visible before the parker looks at the queues, wherever
  // this thread is between its push and its load below.
  if (asymmetric_fences) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  notify_parked_after_seq_cst(from, local);
}

void RuntimeImpl::heavy_fence() const noexcept {
  if (!asymmetric_fences) return;
  // Cannot fail once registered (the registration was checked).
  syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  // Counted for the worker that made it (WorkerMetrics::fence_syscalls):
  // the calling thread, the only one that writes that worker's counters.
  if (const Worker* w = current_worker()) bump(const_cast<Worker*>(w)->m_.fence_syscalls);
}

void RuntimeImpl::notify_parked_after_seq_cst(Worker* from, bool local) noexcept {
  // Either the caller's fence or its seq_cst publishing operation orders
  // this seq_cst load after the work was made visible: with the parker's
  // seq_cst increment and fence, one of the two sides sees the other (in the
  // single total order of seq_cst operations and fences). On x86 the load is
  // a plain one; only the separate fence would cost a locked instruction.
  const std::uint32_t parked = num_parked.load(std::memory_order_seq_cst);
  if (parked == 0) return;
  // The task just pushed is alone in `from`'s queue. Workers parked for
  // lone tasks (kParkedLone) do not take one before kLoneGraceNs and look
  // again within kLoneParkNs anyway, so they are not woken for it; if all
  // parked workers are such, no wake-up and no search token (a CAS and its
  // undoing per spawn).
  const bool lone_push = local && from != nullptr && from->queue_size() <= 1;
  if (lone_push && num_parked_lone.load(std::memory_order_seq_cst) == parked) return;
  if (num_searching.load(std::memory_order_relaxed) != 0) return;
  // A worker helping a CpuPool with short jobs looks for work again within
  // a wake-up's time (worker.cpp, Worker::help_pools).
  if (num_helping.load(std::memory_order_relaxed) != 0) return;
  // Claim the search token so that concurrent producers do not all wake one.
  std::uint32_t expected = 0;
  if (!num_searching.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return;
  const std::size_t n = workers.size();
  std::size_t start = from ? from->index_value() + 1 : 0;
  for (std::size_t i = 0; i < n; ++i) {
    Worker& w = *workers[(start + i) % n];
    if (&w == from) continue;
    const int ps = w.park_state();
    if (ps == Worker::kParkedLone && lone_push) continue;
    if (Worker::is_parked(ps) &&
        w.try_unpark(local ? Worker::kNotifiedSearchLocal : Worker::kNotifiedSearch))
      return;
  }
  num_searching.fetch_sub(1, std::memory_order_acq_rel);  // nobody to wake
}

bool RuntimeImpl::shard_enter(unsigned i, const Worker* w) const noexcept {
  RegistryShard& s = shards[i];
  if (w != nullptr && w->index_value() == i) {
    // The owner: announce, then look for another thread in or coming in.
    // Either that thread's heavy fence makes our store visible before it
    // reads owner_in (it waits for us to leave), or our load sees its lock.
    s.owner_in.store(true, std::memory_order_relaxed);
    if (asymmetric_fences) {
      std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    if (!s.lock.load(std::memory_order_acquire)) return true;
    // Someone holds the lock or waits for us: step back and queue for the
    // lock like them.
    s.owner_in.store(false, std::memory_order_release);
    s.acquire();
    return false;
  }
  s.acquire();
  if (i < workers.size()) {
    // A shard with an owner: wait for it to leave (see RegistryShard).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    heavy_fence();
    while (s.owner_in.load(std::memory_order_acquire)) __builtin_ia32_pause();
  }
  return false;
}

void RuntimeImpl::shard_leave(unsigned i, bool owner) const noexcept {
  if (owner) {
    shards[i].owner_in.store(false, std::memory_order_release);
  } else {
    shards[i].release();
  }
}

void RuntimeImpl::registry_insert(TaskHeader* t, const Worker* w) noexcept {
  // The shard is shard_of(id), at insertion and removal alike: ids are
  // handed out so that this is the spawning worker's shard (spawn_on),
  // and if a 32-bit id sequence wraps the two still agree.
  const unsigned i = shard_of(t->id);
  RegistryShard& s = shards[i];
  const bool owner = shard_enter(i, w);
  t->reg_prev = nullptr;
  t->reg_next = s.head;
  if (s.head) s.head->reg_prev = t;
  s.head = t;
  ++s.count;
  shard_leave(i, owner);
}

std::uint32_t RuntimeImpl::registry_remove(TaskHeader* t, const Worker* w) noexcept {
  const unsigned i = shard_of(t->id);
  RegistryShard& s = shards[i];
  const bool owner = shard_enter(i, w);
  s.unlink(t);
  --s.count;
  const std::uint32_t drops = std::exchange(t->local_drops, std::uint16_t{0});
  shard_leave(i, owner);
  return drops;
}

bool RuntimeImpl::drop_listed_ref(TaskHeader* t, const Worker* w) noexcept {
  const unsigned i = shard_of(t->id);
  const bool owner = shard_enter(i, w);
  // Listed, the task holds its own reference besides the caller's: this
  // one cannot be the last, and whoever unlinks it will see the count.
  const bool counted = !t->unlisted() && t->local_drops != UINT16_MAX;
  if (counted) ++t->local_drops;
  shard_leave(i, owner);
  return counted;
}

TaskHeader* RuntimeImpl::registry_remove_list(unsigned shard, TaskHeader* list,
                                              std::atomic<std::uint64_t>* pending,
                                              const Worker* w) noexcept {
  RegistryShard& s = shards[shard];
  TaskHeader* last = list;
  std::uint64_t n = 0;
  const bool owner = shard_enter(shard, w);
  for (TaskHeader* t = list; t; t = t->next) {
    s.unlink(t);  // its local_drops are the caller's to fold from now on
    last = t;
    ++n;
  }
  s.count -= n;
  pending->store(0, std::memory_order_relaxed);
  shard_leave(shard, owner);
  return last;
}

const Worker* RuntimeImpl::current_worker() const noexcept {
  const Worker* w = Worker::current();
  return w != nullptr && &w->rt() == this ? w : nullptr;
}

std::vector<TaskRef> RuntimeImpl::all_tasks() const {
  std::vector<TaskRef> out;
  out.reserve(live_tasks());
  const Worker* me = current_worker();
  for (unsigned i = 0; i < num_shards; ++i) {
    RegistryShard& s = shards[i];
    const bool owner = shard_enter(i, me);
    try {
      // A task in the registry holds its own reference, or the one its
      // worker took to unlink it later: taking another one here is safe.
      // A completed task may still be listed until the worker that ran it
      // unlinks it (Worker::defer_unregister); asyncio lists only tasks
      // not done.
      for (TaskHeader* t = s.head; t; t = t->reg_next)
        if (!(t->state.load(std::memory_order_acquire) & TaskHeader::kComplete))
          out.emplace_back(t);
    } catch (...) {
      shard_leave(i, owner);
      throw;
    }
    shard_leave(i, owner);
  }
  return out;
}

std::uint64_t RuntimeImpl::live_tasks() const noexcept {
  std::uint64_t n = 0;
  const Worker* me = current_worker();
  for (unsigned i = 0; i < num_shards; ++i) {
    const bool owner = shard_enter(i, me);
    n += shards[i].count;
    // Completed, but not unlinked yet (see Worker::defer_unregister).
    for (const auto& w : workers) n -= w->unregister_pending(i);
    shard_leave(i, owner);
  }
  return n;
}

Metrics RuntimeImpl::metrics() const {
  Metrics m;
  for (const auto& w : workers) {
    const Counters& c = w->counters();
    WorkerMetrics x;
    auto r = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    x.tasks_polled = r(c.tasks_polled);
    x.tasks_spawned = r(c.tasks_spawned);
    x.tasks_stolen = r(c.tasks_stolen);
    x.steal_attempts = r(c.steal_attempts);
    x.parks = r(c.parks);
    x.unparks = r(c.unparks);
    x.lifo_polls = r(c.lifo_polls);
    x.global_polls = r(c.global_polls);
    x.remote_wakes = r(c.remote_wakes);
    x.overflows = r(c.overflows);
    x.sqes_submitted = r(c.sqes_submitted);
    x.enter_calls = r(c.enter_calls);
    x.cqes = r(c.cqes);
    x.wake_syscalls = r(c.wake_syscalls);
    x.cpu_jobs_helped = r(c.cpu_jobs_helped);
    x.frames_refilled = r(c.frames_refilled);
    x.fence_syscalls = r(c.fence_syscalls);
    x.local_queue_depth = w->queue_size();
    m.workers.push_back(x);
  }
  m.global_queue_depth = inject.size();
  m.live_tasks = live_tasks();
  return m;
}

void RuntimeImpl::shutdown() {
  if (shut_down.load(std::memory_order_acquire)) return;
  // asyncio.run's order (§R 118): cancel what is left and wait for it, report
  // the errors those tasks ended with, finalise the async generators still
  // suspended (shutdown_asyncgens), shut down the default executor, then stop
  // the workers and close the rings. Tasks may spawn more tasks while they
  // unwind, so each round repeats until none is left.
  auto cancel_all = [this] {
    for (int round = 0; round < 1000; ++round) {
      std::vector<TaskRef> tasks = all_tasks();
      if (tasks.empty()) break;
      for (auto& t : tasks) t.cancel();
      for (auto& t : tasks) block_until_done(t.header());
      for (auto& t : tasks) {
        std::uint32_t s =
            t.header()->state.fetch_or(TaskHeader::kRetrieved, std::memory_order_acq_rel);
        if ((s & TaskHeader::kOutcomeError) && !(s & TaskHeader::kRetrieved)) {
          report({"unhandled exception during weft::run() shutdown (task " + t.name() + ")",
                  task_error(t.header()), t});
        }
      }
    }
  };
  cancel_all();
  // shutdown_asyncgens: after the tasks, before the executors; a generator's
  // cleanup may spawn, so cancel once more afterwards.
  finalize_async_generators(facade);
  cancel_all();
  // Waits for the default executor's threads; a job still running may spawn
  // (run_coroutine_threadsafe), so cancel once more afterwards.
  shutdown_executors(*this);
  cancel_all();
  closed.store(true, std::memory_order_release);
  stop_workers();
}

// ---- blocking a foreign thread on a task ----

namespace {
struct BlockingWaiter : WaitNode {
  std::atomic<std::uint32_t> flag{0};
};
void blocking_fire(WaitNode* n, TaskHeader*) noexcept {
  auto* b = static_cast<BlockingWaiter*>(n);
  b->flag.store(1, std::memory_order_release);
  // The waiter may return (and its stack frame vanish) as soon as it sees the
  // flag; a futex wake on a dead address is harmless.
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&b->flag), FUTEX_WAKE_PRIVATE, INT_MAX,
          nullptr, nullptr, 0);
}
}  // namespace

void block_until_done(TaskHeader* h) {
  if (Worker::current() != nullptr)
    throw RuntimeError("weft: blocking on a task from a worker thread would stall its loop");
  BlockingWaiter b;
  b.fire = blocking_fire;
  if (!add_waiter(h, &b)) return;
  while (b.flag.load(std::memory_order_acquire) == 0) {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&b.flag), FUTEX_WAIT_PRIVATE, 0, nullptr,
            nullptr, 0);
  }
}

}  // namespace weft::detail

namespace weft {

WorkerMetrics Metrics::total() const {
  WorkerMetrics t;
  for (const auto& w : workers) {
    t.tasks_polled += w.tasks_polled;
    t.tasks_spawned += w.tasks_spawned;
    t.tasks_stolen += w.tasks_stolen;
    t.steal_attempts += w.steal_attempts;
    t.parks += w.parks;
    t.unparks += w.unparks;
    t.lifo_polls += w.lifo_polls;
    t.global_polls += w.global_polls;
    t.remote_wakes += w.remote_wakes;
    t.overflows += w.overflows;
    t.sqes_submitted += w.sqes_submitted;
    t.enter_calls += w.enter_calls;
    t.cqes += w.cqes;
    t.wake_syscalls += w.wake_syscalls;
    t.cpu_jobs_helped += w.cpu_jobs_helped;
    t.frames_refilled += w.frames_refilled;
    t.fence_syscalls += w.fence_syscalls;
    t.local_queue_depth += w.local_queue_depth;
  }
  return t;
}

Runtime::Runtime(RuntimeOptions options) {
  check_not_worker("Runtime");
  detail::set_trim_threshold(options.trim_threshold);
  impl_ = new detail::RuntimeImpl(*this, std::move(options));
  try {
    impl_->start();
    // A burst of frees on a thread outside the runtime wakes worker 0 to trim
    // once the burst is over (frame_alloc.hpp).
    detail::set_trim_wake_hook(
        [](void* rt) { static_cast<detail::RuntimeImpl*>(rt)->workers[0]->unpark_direct(); },
        impl_);
  } catch (...) {
    impl_->release();
    impl_ = nullptr;
    throw;
  }
}

Runtime::~Runtime() {
  if (impl_ == nullptr) return;
  try {
    shutdown();
  } catch (...) {
    // Destroyed on a worker thread: nothing sane to do but stop the workers.
    impl_->stop_workers();
  }
  impl_->wait_remote_quiescent();
  impl_->release();
}

void Runtime::check_not_worker(const char* what) const {
  if (detail::Worker::current() != nullptr)
    throw RuntimeError(std::string("weft::Runtime::") + what +
                       " cannot be called from a running event loop");
}

void Runtime::check_open() const {
  if (impl_->closed.load(std::memory_order_acquire))
    throw RuntimeError("weft::Runtime::spawn: the runtime has shut down");
}

void Runtime::shutdown() {
  check_not_worker("shutdown");
  impl_->shutdown();
}

Metrics Runtime::metrics() const { return impl_->metrics(); }
std::vector<TaskRef> Runtime::all_tasks() const { return impl_->all_tasks(); }
const RuntimeOptions& Runtime::options() const noexcept { return impl_->opts; }
unsigned Runtime::workers() const noexcept { return static_cast<unsigned>(impl_->workers.size()); }
Loop& Runtime::loop(unsigned i) {
  if (i >= impl_->workers.size()) throw std::out_of_range("weft::Runtime::loop: no such worker");
  return *impl_->workers[i];
}

}  // namespace weft
