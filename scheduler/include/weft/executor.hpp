// weft/executor.hpp - executors: where blocking and CPU-heavy functions run
// (asyncio's run_in_executor / to_thread, concurrent.futures' executors).
//
// An Executor runs Jobs on threads that are not the runtime's workers, so a
// task can wait for a blocking call without stalling its loop:
//
//   int n = co_await weft::run_in_executor(nullptr, read_config, path);
//   auto sum = co_await weft::run_in_executor(&cpu_pool, crunch, chunk);
//
// submit(fn, args...) returns a Future<R> that completes with fn's value or
// exception. The future may be awaited from any task, blocked on with get()
// from a foreign thread, or cancelled:
//   - cancelled before the job starts: fn never runs (as concurrent.futures'
//     set_running_or_notify_cancel);
//   - cancelled while fn runs: fn is NOT interrupted (a thread cannot be
//     safely stopped); its late value or exception is dropped (§S 120), also
//     when the runtime that awaited it has meanwhile shut down (the future's
//     shared state keeps what it needs alive);
//   - a job an executor drops unrun (shutdown(wait, cancel_pending=true), or
//     a user executor that destroys it) cancels its future, so nobody waits
//     for ever.
//
// Executors provided:
//   BlockingPool  asyncio's default ThreadPoolExecutor: threads started on
//                 demand up to max_threads (default min(32, cores + 4), as
//                 Python 3.8+), named "weft-blocking-N" (N from 0, the
//                 lowest free id; see thread_name), retiring after
//                 keep_alive idle (default 10 s, Tokio's thread_keep_alive).
//   CpuPool       a oneTBB task_arena of bounded concurrency, the role of a
//                 process pool in Python: code on it may itself use TBB's
//                 parallel algorithms, which then run in the same arena.
//   your own      derive from Executor and implement execute() (and
//                 shutdown() if it owns threads).
//
// Every Runtime has a default executor (run_in_executor(nullptr, ...),
// to_thread): a BlockingPool created lazily on first use, replaceable with
// set_default_executor, shut down by shutdown_default_executor (after which
// run_in_executor(nullptr, ...) throws RuntimeError("Executor shutdown has
// been called")) and, at the latest, by run()/Runtime::shutdown after the
// remaining tasks were cancelled and before the workers stop (§R 118).
//
// Threads: every function here may be called from any thread unless said
// otherwise; those taking no Runtime use the calling worker's runtime and
// throw RuntimeError("no running event loop") outside one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <weft/clock.hpp>
#include <weft/errors.hpp>
#include <weft/future.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

namespace weft {

/// A move-only unit of work: call it once. Destroying one that never ran
/// cancels the future it would have completed.
class Job {
 public:
  // From the frame recycler (detail::FrameAllocated), as future states are:
  // a job is made on one thread and destroyed on a pool's, and the recycler
  // hands such frames back to the making thread in batches, where malloc
  // would take its arena's lock on both sides.
  struct Body : detail::FrameAllocated {
    virtual ~Body() = default;
    virtual void run() noexcept = 0;
  };
  Job() noexcept = default;
  explicit Job(std::unique_ptr<Body> b) noexcept : b_(std::move(b)) {}
  /// Wraps any callable taking no arguments; an exception it throws is
  /// swallowed (submit's jobs never throw: they store it in their future).
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Job>>>
  explicit Job(F&& f) : b_(std::make_unique<Fn<std::decay_t<F>>>(std::forward<F>(f))) {}

  /// Runs the job (once; the job is empty afterwards).
  void operator()() noexcept {
    std::unique_ptr<Body> b = std::move(b_);
    if (b) b->run();
  }
  explicit operator bool() const noexcept { return b_ != nullptr; }

 private:
  template <class F>
  struct Fn final : Body {
    template <class G>
    explicit Fn(G&& g) : f(std::forward<G>(g)) {}
    void run() noexcept override {
      try {
        f();
      } catch (...) {
      }
    }
    F f;
  };
  std::unique_ptr<Body> b_;
};

namespace detail {

/// A job that completes a promise: destroyed without having run, it
/// cancels the promise's future, so nobody waits for ever.
template <class R>
struct PromiseJob : Job::Body {
  Promise<R> p;
  bool ran = false;
  explicit PromiseJob(Promise<R> pr) : p(std::move(pr)) {}
  ~PromiseJob() override {
    if (!ran) {
      try {
        p.get_future().cancel("weft: the executor dropped the job before it ran");
      } catch (...) {
      }
    }
  }
  /// Stores the exception being handled, unless the future is already done
  /// (cancelled meanwhile: set_result threw InvalidStateError), in which
  /// case the late outcome is dropped (§S 120).
  void fail() noexcept {
    try {
      if (!p.done()) p.set_exception(std::current_exception());
    } catch (...) {
    }
  }
};

/// The job submit() builds: runs fn(args...) into a promise. fn and the
/// arguments are destroyed before the outcome is published, so whoever sees
/// the future done also sees them gone (as a std::packaged_task would not).
template <class R, class F, class Args>
struct SubmitJob final : PromiseJob<R> {
  std::optional<F> fn;
  std::optional<Args> args;
  SubmitJob(Promise<R> pr, F f, Args a) : PromiseJob<R>(std::move(pr)) {
    fn.emplace(std::move(f));
    args.emplace(std::move(a));
  }
  void drop_callable() noexcept {
    args.reset();
    fn.reset();
  }
  void run() noexcept override {
    this->ran = true;
    if (this->p.done()) {  // cancelled before it started: fn does not run
      drop_callable();
      return;
    }
    try {
      if constexpr (std::is_void_v<R>) {
        std::apply(*fn, std::move(*args));
        drop_callable();
        this->p.set_result();
      } else {
        R r = std::apply(*fn, std::move(*args));
        drop_callable();
        this->p.set_result(std::move(r));
      }
    } catch (...) {
      drop_callable();
      this->fail();  // fn threw, or the future was cancelled meanwhile
    }
  }
};

}  // namespace detail

/// The executor interface (asyncio's concurrent.futures.Executor).
/// Threads: execute/submit/shutdown may be called from any thread.
class Executor {
 public:
  virtual ~Executor() = default;

  /// Runs `job` exactly once on some thread, or destroys it unrun (which
  /// cancels its future). Throws RuntimeError after shutdown.
  virtual void execute(Job job) = 0;
  /// Stops accepting jobs. wait: block until every accepted job has
  /// finished (or been dropped) and the threads are gone. cancel_pending:
  /// drop jobs not yet started (their futures are cancelled).
  virtual void shutdown(bool wait = true, bool cancel_pending = false) {
    (void)wait;
    (void)cancel_pending;
  }

  /// Runs fn(args...) on this executor; the future carries its value or
  /// exception. Arguments are copied/moved into the job (bind references
  /// with std::ref). The future is bound to the calling thread's runtime.
  template <class F, class... A>
  auto submit(F&& fn, A&&... args)
      -> Future<std::invoke_result_t<std::decay_t<F>, std::decay_t<A>...>> {
    using R = std::invoke_result_t<std::decay_t<F>, std::decay_t<A>...>;
    Promise<R> p;
    Future<R> f = p.get_future();
    using JobT = detail::SubmitJob<R, std::decay_t<F>, std::tuple<std::decay_t<A>...>>;
    execute(Job(std::unique_ptr<Job::Body>(
        new JobT(std::move(p), std::forward<F>(fn),
                 std::tuple<std::decay_t<A>...>(std::forward<A>(args)...)))));
    return f;
  }
};

struct BlockingPoolOptions {
  /// Most threads at once. 0 = min(32, hardware threads + 4), the default of
  /// Python's ThreadPoolExecutor since 3.8 (I/O-bound work, bounded).
  unsigned max_threads = 0;
  /// An idle thread exits after this long. 10 s: Tokio's thread_keep_alive.
  Duration keep_alive = std::chrono::seconds(10);
  /// A thread out of work polls for the next job for this long (a pause
  /// loop) before it sleeps, so a task calling run_in_executor in a loop
  /// skips a thread wake-up (20-30 us here, PLATFORM.md) per call. One
  /// thread of the pool spins at a time; the others sleep at once, so idle
  /// threads cannot crowd a 2-core machine. An earlier version yielded the
  /// CPU while spinning and measured anywhere from 2x faster to 30x slower (a
  /// yielded spinner may not run again for milliseconds); the pause loop
  /// with one spinner took blocking_seq from 1.33x Tokio's spawn_blocking to
  /// 0.11x (2.8 us vs 25.7 us a round trip, medians of one bench/run). 0 =
  /// sleep at once.
  Duration idle_spin = std::chrono::microseconds(50);
  /// Threads are named "<prefix>-<N>", N the lowest id no live thread of the
  /// pool holds (0 <= N < max_threads; a retired thread's id is reused).
  /// Linux keeps 15 bytes of a thread name: when "<prefix>-<N>" is longer,
  /// the prefix is cut (never N, and never inside a UTF-8 sequence), so the
  /// names of a pool's live threads stay distinct: "weft-blocking-9",
  /// "weft-blockin-10".
  std::string thread_name = "weft-blocking";
};

namespace detail {
struct BlockingPoolImpl;
struct CpuPoolImpl;
}  // namespace detail

/// A thread pool for blocking calls (asyncio's ThreadPoolExecutor).
/// Threads start on demand when no idle one is free. Destroying the pool
/// calls shutdown(true).
class BlockingPool final : public Executor {
 public:
  explicit BlockingPool(BlockingPoolOptions options = {});
  ~BlockingPool() override;
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  void execute(Job job) override;
  /// See Executor::shutdown. Called from one of the pool's own threads, it
  /// does not wait for that thread.
  void shutdown(bool wait = true, bool cancel_pending = false) override;

  unsigned max_threads() const noexcept;
  /// Threads alive now (idle or busy).
  unsigned threads() const noexcept;

 private:
  std::shared_ptr<detail::BlockingPoolImpl> impl_;
};

struct CpuPoolOptions {
  /// Most jobs running at once (the arena's concurrency). 0 = hardware threads.
  unsigned max_concurrency = 0;
};

/// A oneTBB task_arena for CPU-bound jobs. Jobs may call tbb::parallel_for,
/// parallel_reduce etc.; those run inside the same arena (same bound).
/// A job runs on one of the arena's threads or, where a runtime turned
/// RuntimeOptions::help_cpu_pools on (off by default) and while its jobs
/// are short (under 1 ms), on an idle worker of that runtime, which takes
/// an arena thread's place within the bound: inside the arena, with
/// Loop::current() null, as on the arena's threads. The arena keeps
/// concurrency - 1 slots for such workers, so inside a job
/// tbb::this_task_arena::max_concurrency() is 2 * concurrency - 1; jobs
/// running at once never exceed concurrency.
/// Destroying the pool calls shutdown(true).
class CpuPool final : public Executor {
 public:
  explicit CpuPool(CpuPoolOptions options = {});
  ~CpuPool() override;
  CpuPool(const CpuPool&) = delete;
  CpuPool& operator=(const CpuPool&) = delete;

  void execute(Job job) override;
  void shutdown(bool wait = true, bool cancel_pending = false) override;
  unsigned max_concurrency() const noexcept;

 private:
  std::unique_ptr<detail::CpuPoolImpl> impl_;
};

// ---- the default executor of a runtime ----

namespace detail {
/// The default executor of the calling worker's runtime (created lazily).
std::shared_ptr<Executor> current_default_executor();
}  // namespace detail

/// `rt`'s default executor, created on first use. Throws RuntimeError after
/// shutdown_default_executor ("Executor shutdown has been called").
std::shared_ptr<Executor> default_executor(Runtime& rt);
/// Replaces `rt`'s default executor (asyncio accepts only a
/// ThreadPoolExecutor; weft's interface is typed, so any Executor will do).
/// The previous one is shut down without waiting and kept until the runtime
/// shuts down. Throws std::invalid_argument for null.
void set_default_executor(Runtime& rt, std::shared_ptr<Executor> ex);
void set_default_executor(std::shared_ptr<Executor> ex);
/// Shuts the default executor down (asyncio's
/// loop.shutdown_default_executor): later run_in_executor(nullptr, ...)
/// throws RuntimeError("Executor shutdown has been called"). The returned
/// future completes once its threads have finished (the wait happens on a
/// helper thread, so awaiting it does not block the loop).
Future<void> shutdown_default_executor(Runtime& rt);
Future<void> shutdown_default_executor();

/// asyncio's loop.run_in_executor: runs fn(args...) on `ex`, or on the
/// calling worker's default executor when ex is null.
template <class F, class... A>
auto run_in_executor(Executor* ex, F&& fn, A&&... args) {
  if (ex == nullptr) {
    std::shared_ptr<Executor> d = detail::current_default_executor();
    return d->submit(std::forward<F>(fn), std::forward<A>(args)...);
  }
  return ex->submit(std::forward<F>(fn), std::forward<A>(args)...);
}
template <class F, class... A>
auto run_in_executor(Executor& ex, F&& fn, A&&... args) {
  return ex.submit(std::forward<F>(fn), std::forward<A>(args)...);
}

/// asyncio.to_thread: fn(args...) on the default executor. (asyncio also
/// copies the caller's contextvars; weft has none yet.)
template <class F, class... A>
auto to_thread(F&& fn, A&&... args) {
  return run_in_executor(nullptr, std::forward<F>(fn), std::forward<A>(args)...);
}

namespace detail {

/// The calling worker's runtime's "default executor shutting down" flag: set
/// (once, for good) by shutdown_default_executor and by the runtime's end
/// sequence before they wait for the executor's threads. Jobs that would
/// otherwise wait for ever (wrap_future's) poll it. Throws as
/// current_default_executor.
std::shared_ptr<const std::atomic<bool>> current_default_executor_stopping();

/// How long a wrap_future job waits on its std::future before it looks
/// again at whether to give up: the longest a cancel or a shutdown waits for
/// it. Each slice costs one timed futex wake-up (a few us here), so a
/// pending wrapper takes well under 0.1% of a core.
inline constexpr std::chrono::milliseconds kStdFutureSlice{10};

/// wrap_future(std::future)'s job: waits on `src` in slices and completes
/// `p` with its outcome, or gives up (see wrap_future).
template <class T>
struct WaitStdFuture final : PromiseJob<T> {
  std::future<T> src;
  std::shared_ptr<const std::atomic<bool>> stopping;
  WaitStdFuture(Promise<T> pr, std::future<T> f, std::shared_ptr<const std::atomic<bool>> stop)
      : PromiseJob<T>(std::move(pr)), src(std::move(f)), stopping(std::move(stop)) {}
  void run() noexcept override {
    this->ran = true;
    try {
      if (!src.valid()) throw std::future_error(std::future_errc::no_state);
      for (;;) {
        if (this->p.done()) return;  // the wrapper was cancelled: nobody wants the outcome
        // relaxed: the flag publishes no data; seeing it a slice late is fine.
        const bool stop = stopping->load(std::memory_order_relaxed);
        // A ready outcome is delivered even when stopping.
        const std::future_status st =
            src.wait_for(stop ? std::chrono::milliseconds(0) : kStdFutureSlice);
        if (st != std::future_status::timeout) break;  // ready, or deferred: get() runs it
        if (stop) {
          this->p.get_future().cancel(
              "weft::wrap_future: the default executor shut down before the std::future "
              "completed");
          return;
        }
      }
      if constexpr (std::is_void_v<T>) {
        src.get();
        this->p.set_result();
      } else {
        this->p.set_result(src.get());
      }
    } catch (...) {
      this->fail();  // src's exception, or the wrapper was cancelled meanwhile
    }
  }
};

}  // namespace detail

/// asyncio.wrap_future(concurrent_future) for a std::future: a weft future
/// with `f`'s value or exception, bound to the calling worker's runtime.
///
/// A std::future has no completion callback, so a thread of the runtime's
/// default executor waits on it, in slices of kStdFutureSlice (10 ms).
/// Between slices the wait stops
///   - when the wrapper is done: cancelled, directly or because the task
///     awaiting it was cancelled (§C 25). `f` cannot be cancelled; it is
///     dropped, and its outcome goes nowhere;
///   - when the default executor shuts down (shutdown_default_executor,
///     run() or Runtime::shutdown): the wrapper is cancelled, unless `f` is
///     ready by then.
/// So a std::future that never completes holds a pool thread only until
/// one of those, and never makes a shutdown hang; the price is one timed
/// wake-up per slice while it is pending. Rejected: a detached thread per
/// wrapper (it would outlive the runtime, with nobody to join it), and
/// waiting on the std::future and a condition variable at once (there is no
/// such wait). Not interruptible: a deferred `f` (std::launch::deferred)
/// runs its function on the pool thread, as get() does; and destroying a
/// std::future from std::async blocks until its function returns.
///
/// Throws RuntimeError("no running event loop") off a worker, and
/// RuntimeError after shutdown_default_executor. Threads: a runtime's
/// workers (tasks).
template <class T>
Future<T> wrap_future(std::future<T> f) {
  std::shared_ptr<Executor> ex = detail::current_default_executor();
  std::shared_ptr<const std::atomic<bool>> stopping = detail::current_default_executor_stopping();
  Promise<T> p;
  Future<T> out = p.get_future();
  ex->execute(Job(std::unique_ptr<Job::Body>(
      new detail::WaitStdFuture<T>(std::move(p), std::move(f), std::move(stopping)))));
  return out;
}

namespace detail {
template <class T>
Task<void> run_threadsafe_body(Task<T> task, Promise<T> p) {
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
      if (!p.done()) p.set_result();
    } else {
      T v = co_await std::move(task);
      if (!p.done()) p.set_result(std::move(v));
    }
  } catch (const CancelledError& e) {
    FutureAccess::state(p)->cancel(e.what());
  } catch (...) {
    if (!p.done()) p.set_exception(std::current_exception());
  }
}
}  // namespace detail

/// asyncio.run_coroutine_threadsafe: spawns `task` on `rt` (from any
/// thread, typically a foreign one) and returns a future carrying its
/// outcome. Cancelling the future cancels the task (§S 122).
/// Throws std::invalid_argument for an empty Task (asyncio: TypeError for a
/// non-coroutine) and RuntimeError if `rt` has shut down.
template <class T>
Future<T> run_coroutine_threadsafe(Task<T> task, Runtime& rt) {
  if (!task.valid()) throw std::invalid_argument("weft::run_coroutine_threadsafe: empty Task");
  Promise<T> p(&rt);
  Future<T> f = p.get_future();
  JoinHandle<void> h = rt.spawn(detail::run_threadsafe_body<T>(std::move(task), std::move(p)));
  // Cancel propagation without a loop hop: a node on the future's own
  // completion, fired by whoever completes it.
  struct CancelTask final : detail::WaitNode {
    detail::FutureCore* core;
    TaskRef task;
    CancelTask(detail::FutureCore* fc, TaskRef t) : core(fc), task(std::move(t)) {
      fire = [](detail::WaitNode* n, detail::TaskHeader*) noexcept {
        auto* c = static_cast<CancelTask*>(n);
        if (c->core->status() == detail::FutureCore::kCancelled) {
          try {
            c->task.cancel(c->core->cancel_message());
          } catch (...) {
          }
        }
        delete c;
      };
    }
  };
  // A task cancelled before its first step runs none of its body, so the
  // body cannot complete the future: the task's own completion does.
  struct EndsWithTask final : detail::WaitNode {
    Future<T> fut;
    explicit EndsWithTask(Future<T> x) : fut(std::move(x)) {
      fire = [](detail::WaitNode* n, detail::TaskHeader* t) noexcept {
        auto* e = static_cast<EndsWithTask*>(n);
        try {
          e->fut.cancel(t ? detail::cancel_message(t) : std::string());
        } catch (...) {
        }
        delete e;
      };
    }
  };
  auto* end = new EndsWithTask(f);
  if (!detail::add_waiter(h.header(), end)) end->fire(end, nullptr);
  detail::FutureCore* core = detail::FutureAccess::state(f);
  auto* node = new CancelTask(core, h);
  if (!core->add_waiter(node)) node->fire(node, nullptr);
  return f;
}

}  // namespace weft
