// weft/runtime.hpp - Runtime (asyncio.Runner / embedding) and run()
// (asyncio.run).
//
// A Runtime owns N worker threads, each running one Loop on its own io_uring
// ring, and moves ready tasks between them by work stealing. It is what a
// service embeds; run(main) is the one-call form that builds a Runtime, runs
// main to its end and tears everything down in asyncio.run's order.
//
// Threads: Runtime's constructor, block_on, shutdown and the destructor must
// be called from a thread that is not one of its workers (blocking a worker
// would stall its loop) and throw RuntimeError otherwise. spawn, metrics,
// all_tasks and options may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include <weft/clock.hpp>
#include <weft/errors.hpp>
#include <weft/join_handle.hpp>
#include <weft/loop.hpp>
#include <weft/task.hpp>

namespace weft {

/// What the exception handler receives (asyncio's context dict).
struct ExceptionContext {
  std::string message;           // "Task exception was never retrieved", ...
  std::exception_ptr exception;  // may be null
  TaskRef task;                  // the task concerned, if any
};

/// Reports `ctx` to the exception handler of the runtime the calling thread
/// works for (asyncio's loop.call_exception_handler); on a thread outside any
/// runtime, to the default report on stderr. Never throws. Any thread.
void call_exception_handler(const ExceptionContext& ctx) noexcept;

/// Every knob that changes how the runtime performs. Each is a flag of the
/// benchmark runner (bench/run --help), so tune by measuring.
struct RuntimeOptions {
  /// Worker threads. 0 = std::thread::hardware_concurrency().
  unsigned workers = 0;
  /// Submission queue entries per worker ring (completion queue: twice as
  /// many). Rounded up to a power of two by the kernel.
  unsigned ring_entries = 256;
  /// Run the task a worker just woke next (message-passing locality).
  bool lifo_slot = true;
  /// How many tasks in a row may run from the LIFO slot before the worker
  /// goes back to its queue, so two tasks pinging each other cannot starve
  /// it. 3, as Tokio uses.
  unsigned lifo_cap = 3;
  /// Every this many tasks a worker takes from the global injection queue
  /// first, so work from outside is not starved by a busy local queue. 31
  /// (a prime, as Tokio's default 31 for the same reason).
  unsigned global_queue_interval = 31;
  /// Tasks run per loop tick before the worker submits SQEs, reaps CQEs,
  /// fires timers and runs callbacks. 61, as Tokio's event_interval.
  unsigned event_interval = 61;
  /// A File operation (weft::io::File's reads, writes and syncs; not
  /// sockets, pipes' streams or NOPs) queued while earlier ones are out at
  /// the kernel (submitted, not yet reaped: a device is working on them)
  /// reaches the kernel when the step of the task that issued it ends, one
  /// io_uring_enter per such step, as fio submits each read at once. Other
  /// operations, and file operations while none is out (reads the page
  /// cache serves complete as they are submitted), wait for the end of the
  /// tick: one enter for all of them. A device works while the loop runs
  /// other tasks, so a read held in the SQ for the rest of the tick is time
  /// it sits idle; a socket operation's cost is the kernel's CPU time, which
  /// the batch amortises. file_read (2 workers x 32 O_DIRECT 4 KiB random
  /// reads in flight, 7 alternated 4 s runs): median 116,148 IOPS on
  /// against 108,286 off (1.07x), fio 114,822 in the same runs; CPU per
  /// read 2.50 us against 2.58 us. Submitting after every file operation,
  /// page-cache hits included, cost 15% of the buffered reads per second,
  /// hence "while earlier ones are out". Off: file operations are submitted
  /// with the tick.
  bool eager_file_submit = true;
  /// Upper bound of workers searching for work to steal at once. 0 = half of
  /// the workers, rounded up (Tokio's rule): enough to spread a burst, few
  /// enough that idle workers do not all hammer the same queues.
  unsigned max_searching = 0;
  /// Rounds of stealing/polling a worker spins through before it parks in
  /// the ring wait. Parking and waking cost 20-30 us on these machines
  /// (PLATFORM.md), so a short spin saves that on bursty message passing.
  unsigned spin_before_park = 32;
  /// After a park that a wake-up ended within 4x this time (so work tends to
  /// arrive from other threads soon after the worker runs dry: a blocking
  /// pool's results, a foreign producer), the worker keeps spinning for up
  /// to this long before it parks again, while it has no I/O in flight (a
  /// ring's completions are only seen by entering the kernel). A park and
  /// its wake-up cost 20-30 us here (PLATFORM.md). A long park turns the
  /// spin off until the next short one, so an idle runtime spins at most
  /// once per idle period. 0 (the default) = never: measured on 2 cores
  /// with 50 us (bench/run --sweep park_spin_us=0,50, 7 runs each), spinning
  /// workers take the CPU from the threads that feed them: spawn_remote
  /// 1.45x slower (the spawning thread), cpu_fanout 1.26x slower (the
  /// CpuPool's threads), while spawn_many ran 0.65x and blocking_seq 0.73x
  /// of the time (the blocking pool's own spin already makes that one 0.11x
  /// Tokio's). Worth trying where the runtime has cores to spare.
  Duration park_spin = Duration::zero();
  /// The same spin, but only after a park that a sibling worker ended
  /// because it pushed a task to its own queue: a task running on it spawned
  /// a task (a task spawning many, or a chain of them) or woke one (a Lock
  /// handed on, a message passed). Then the producer is one of this
  /// runtime's workers, already on a core, and the spinner takes no CPU from
  /// a thread outside the runtime. Other wake-ups (a spawn from a thread
  /// outside the runtime, a completion from the CpuPool's or the blocking
  /// pool's threads) do not start it, so spawn_remote and cpu_fanout keep
  /// the behaviour measured above. Counting wakes of tasks as well as spawns
  /// took the mutex workload from ~74,000 parks a run to ~15,000 and 0.85-0.90x
  /// the time (alternated runs), with ping_pong, chained_spawn and the
  /// tcp_echo, http_hello and resp servers unchanged within the noise. Used
  /// when longer than park_spin. 0 = never.
  Duration sibling_spin = std::chrono::microseconds(50);
  /// A worker about to park first runs queued CpuPool jobs itself, inside
  /// the pool's arena and within its concurrency (a TBB thread of the pool
  /// hands it its slot), going back to its loop between jobs when it has
  /// work (cpu_pool.cpp, "Idle workers help"). A task awaiting the pool then
  /// does its jobs instead of parking and being woken for each result.
  /// cpu_fanout (10,000 chunks, 2 workers, 2 cores): parks per run ~800 ->
  /// ~30, but the time did not improve: on a quiet machine, with it on,
  /// 1.17x and 1.03x the time with it off (bench/run --sweep
  /// help_cpu_pools=0,1, 9 and 11 alternated runs); an earlier 5-run sample
  /// gave 0.87x, and loaded runs 0.95-1.13x either way. So it is off by
  /// default: a knob to measure with, where the jobs are short and wake-ups
  /// dear. The jobs see Loop::current() == null, as on the pool's threads.
  /// Off: jobs run on the pool's threads only.
  bool help_cpu_pools = false;
  /// A worker with nothing to run mallocs batches of frames of the size a
  /// thread is spawning a burst of, faulting their pages in on its own core,
  /// and leaves them in the frame allocator's depot for that thread
  /// (detail/frame_alloc.hpp, "Refills by idle workers"). The spawning thread
  /// then pops ready frames instead of faulting a page every 4 KiB. The depot
  /// holds at most 128 KiB of refilled frames per size class, and trims empty
  /// it. Off: frames come from the spawning thread's own malloc calls.
  bool refill_frames = true;
  /// When at least this many bytes of task frames went back to malloc since
  /// the last trim, malloc_trim(0) gives them back to the OS (glibc keeps
  /// freed memory otherwise, so a burst of a million finished or cancelled
  /// tasks would stay resident): a thread outside the runtime when its frees
  /// cross the threshold; and once threshold/32 went back, an idle worker
  /// after no frame went back for 20 ms (the end of the burst; a burst freed
  /// outside the runtime wakes a worker for it). Process-wide: the
  /// latest Runtime's value applies (see detail/frame_alloc.hpp). 0 = never.
  /// Default 32 MiB.
  std::size_t trim_threshold = std::size_t{32} << 20;
  /// Registered ("fixed") buffers: `fixed_buffers` buffers of
  /// `fixed_buffer_size` bytes each, in one page-aligned block that every
  /// worker registers on its ring at start (io_uring_register_buffers), with
  /// the same indices everywhere, so a task may use one on whichever worker
  /// runs it. Tasks check them out with weft::io::FixedBuffer::try_acquire
  /// and read or write through File::read_fixed_at / write_fixed_at
  /// (IORING_OP_READ_FIXED / WRITE_FIXED: the kernel skips pinning and
  /// mapping the pages on every operation). Each buffer starts on a 4 KiB
  /// boundary (O_DIRECT). 0 (the default) = none. At most 16384 buffers
  /// (IORING_MAX_REG_BUFFERS) of at most 1 GiB each; ValueError otherwise.
  /// Measured on the file_read workload (bench/weft_file_read.cpp): no gain
  /// above the noise here (O_DIRECT 1.03x IOPS, device-bound; page cache
  /// 1.00x), so nothing turns them on by default.
  unsigned fixed_buffers = 0;
  std::size_t fixed_buffer_size = std::size_t{64} << 10;
  /// Wake parked workers with an eventfd write instead of IORING_OP_MSG_RING
  /// (foreign threads always use the eventfd). For measuring; see reactor.cpp.
  bool wake_with_eventfd = false;
  /// Called for unhandled errors: a task's exception nobody retrieved, an
  /// exception escaping a callback, errors of tasks cancelled at shutdown.
  /// Runs on the thread where the error was found; must not throw.
  /// Default: print to stderr.
  std::function<void(const ExceptionContext&)> exception_handler;
  /// Prefix of the worker threads' names ("weft-worker-0", ...).
  std::string thread_name = "weft-worker";
  /// Debug mode (asyncio's debug=True): every task step is timed, and one
  /// that runs longer than slow_step_threshold is reported to the exception
  /// handler with the task's name and duration. Off: one predictable branch
  /// per step.
  bool debug = false;
  /// 100 ms: asyncio's loop.slow_callback_duration.
  Duration slow_step_threshold = std::chrono::milliseconds(100);
  /// Most threads of the default executor (a BlockingPool). 0 = min(32,
  /// hardware threads + 4), Python's ThreadPoolExecutor default.
  unsigned blocking_threads = 0;
  /// Idle default-executor threads exit after this long; 10 s as Tokio's
  /// blocking pool (thread_keep_alive).
  Duration blocking_keep_alive = std::chrono::seconds(10);
  /// A default-executor thread out of work spins this long before it sleeps
  /// (BlockingPoolOptions::idle_spin).
  Duration blocking_idle_spin = std::chrono::microseconds(50);
};

/// Counters of one worker, read with relaxed loads (approximate while the
/// runtime runs, exact after it stops).
struct WorkerMetrics {
  std::uint64_t tasks_polled = 0;       // task steps run
  std::uint64_t tasks_spawned = 0;      // spawns made on this worker
  std::uint64_t tasks_stolen = 0;       // tasks this worker stole from others
  std::uint64_t steal_attempts = 0;     // attempts, successful or not
  std::uint64_t parks = 0;              // times the worker blocked in the ring wait
  std::uint64_t unparks = 0;            // wake-ups sent to this worker
  std::uint64_t lifo_polls = 0;         // steps taken from the LIFO slot
  std::uint64_t global_polls = 0;       // tasks taken from the injection queue
  std::uint64_t remote_wakes = 0;       // wakes of tasks last run on another worker
  std::uint64_t overflows = 0;          // local queue overflows to the injection queue
  std::uint64_t sqes_submitted = 0;     // SQEs handed to the kernel
  std::uint64_t enter_calls = 0;        // io_uring_enter system calls
  std::uint64_t cqes = 0;               // CQEs reaped
  std::uint64_t wake_syscalls = 0;      // wake-ups this worker sent to parked workers
  std::uint64_t fence_syscalls = 0;     // membarrier calls it made (parks, other shards)
  std::uint64_t cpu_jobs_helped = 0;    // CpuPool jobs it ran while idle (help_cpu_pools)
  std::uint64_t frames_refilled = 0;    // frames it faulted in for spawning threads (refill_frames)
  std::uint64_t local_queue_depth = 0;  // tasks in its local queue now
};

struct Metrics {
  std::vector<WorkerMetrics> workers;
  std::uint64_t global_queue_depth = 0;
  std::uint64_t live_tasks = 0;
  /// The per-worker counters summed.
  WorkerMetrics total() const;
};

/// Python's KeyboardInterrupt: run() raises it when Ctrl-C (SIGINT) cancelled
/// the main task and the main task ended cancelled (asyncio.Runner, §R 119).
/// Like CancelledError (and like Python's, a BaseException), it derives from
/// no std::exception, so `catch (const std::exception&)` does not swallow it.
class KeyboardInterrupt final {
 public:
  const char* what() const noexcept { return "KeyboardInterrupt"; }
};

namespace detail {
class RuntimeImpl;
struct RunSigintState;
RunSigintState* run_sigint_install();
bool run_sigint_wait(RunSigintState* s, TaskHeader* main);
void run_sigint_restore_handler(RunSigintState* s) noexcept;
void run_sigint_release(RunSigintState* s) noexcept;

/// run()'s Ctrl-C handling, the way asyncio.Runner does it (run_sigint.cpp):
/// installed only when SIGINT's disposition is the default one (and by one
/// run() at a time); SIGINT is blocked in the calling thread while the
/// workers start (so they inherit that) and unblocked again in wait(), so
/// Ctrl-C is taken by the thread inside run(), never by task code; the first
/// SIGINT cancels the main task; a second one,
/// while the main task has not finished, restores the default action and
/// re-raises, ending the process as an uncaught Ctrl-C does. The handler is
/// removed as soon as the main task is done; the destructor also restores the
/// calling thread's signal mask as it was on entry.
class RunSigint {
 public:
  RunSigint() : s_(run_sigint_install()) {}
  ~RunSigint() { run_sigint_release(s_); }
  RunSigint(const RunSigint&) = delete;
  RunSigint& operator=(const RunSigint&) = delete;
  /// Blocks until `main` is done; true if a SIGINT cancelled it meanwhile.
  bool wait(TaskHeader* main) { return run_sigint_wait(s_, main); }
  void restore_handler() noexcept { run_sigint_restore_handler(s_); }

 private:
  RunSigintState* s_;
};
/// Blocks the calling (foreign) thread until `h` completes.
void block_until_done(TaskHeader* h);
void runtime_spawn(Runtime* rt, TaskHeader* h, std::coroutine_handle<> root, std::string_view name);
}  // namespace detail

class Runtime {
 public:
  /// Starts the workers. Throws RuntimeError if io_uring cannot be set up
  /// (with the reason), ValueError for a bad option, or if called on a worker.
  explicit Runtime(RuntimeOptions options = {});
  /// Calls shutdown().
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Spawns `task` (any thread). Throws RuntimeError after shutdown began,
  /// std::invalid_argument for an empty Task, std::bad_alloc if a name
  /// cannot be stored (the task is then destroyed unstarted).
  template <class T>
  JoinHandle<T> spawn(Task<T> task, SpawnOptions opts = {}) {
    if (!task.valid()) throw std::invalid_argument("weft::Runtime::spawn: empty Task");
    check_open();
    detail::TaskHeader* hdr = &task.handle().promise().header;
    // Two references: the task's own and ours (adopted). If this throws
    // (std::bad_alloc for the name), `task` still owns the coroutine.
    detail::runtime_spawn(this, hdr, task.handle(), opts.name);
    (void)task.release();
    return JoinHandle<T>(hdr, /*adopt=*/true);
  }

  /// Runs `task` to completion from a thread outside the runtime and returns
  /// its value or rethrows its exception. Throws RuntimeError on a worker
  /// ("cannot be called from a running event loop") or after shutdown.
  template <class T>
  T block_on(Task<T> task) {
    check_not_worker("block_on");
    JoinHandle<T> h = spawn(std::move(task));
    detail::block_until_done(h.header());
    return std::move(h).result();
  }

  /// Cancels every task still alive, waits for them, reports their
  /// non-cancel errors to the exception handler, stops the workers and
  /// closes the rings. Idempotent. Throws RuntimeError on a worker.
  void shutdown();

  /// Per-worker counters (any thread). Throws std::bad_alloc. Counting the live
  /// tasks costs a membarrier(2) per worker, except for that worker's own
  /// share when called on it (see RegistryShard in src/worker.hpp): a
  /// monitoring call, not one for every request.
  Metrics metrics() const;
  /// Every task not yet finished (any thread). Throws std::bad_alloc. Costs
  /// what metrics() does (twice): the registry is built for spawns, which
  /// are frequent, not for listing it.
  std::vector<TaskRef> all_tasks() const;
  const RuntimeOptions& options() const noexcept;
  unsigned workers() const noexcept;
  /// Worker i's loop, for call_soon_threadsafe from outside. Throws
  /// std::out_of_range for a bad index.
  Loop& loop(unsigned i);

  detail::RuntimeImpl& impl() noexcept { return *impl_; }

 private:
  void check_not_worker(const char* what) const;
  void check_open() const;
  // Reference counted: futures with done callbacks on this runtime's loops
  // keep the (stopped) internals alive past the Runtime object.
  detail::RuntimeImpl* impl_ = nullptr;
};

/// asyncio.run: starts a Runtime with `options`, runs `main` to its end, then
/// (asyncio.run's order, ASYNCIO_SEMANTICS §R 118) cancels every task still
/// alive and waits for it, reports their non-cancel errors, stops the pools
/// and closes the rings; returns main's value or rethrows its exception.
/// Throws RuntimeError when called from a worker thread ("weft::run() cannot
/// be called from a running event loop").
///
/// Ctrl-C (asyncio.Runner, §R 119): if SIGINT has its default disposition,
/// run() handles it while the main task runs: the first SIGINT cancels the
/// main task, and if the main task then ends cancelled run() throws
/// KeyboardInterrupt (after the usual shutdown); if main catches the
/// CancelledError and returns, run() returns its value. A second SIGINT
/// before main has finished ends the process with SIGINT's default action.
/// io::add_signal_handler(SIGINT, ...) takes SIGINT over while registered.
/// The handler is removed when main is done, and the calling thread's signal
/// mask is restored when run() returns.
template <class T>
T run(Task<T> main, RuntimeOptions options = {}) {
  if (Loop::current() != nullptr)
    throw RuntimeError("weft::run() cannot be called from a running event loop");
  if (!main.valid()) throw ValueError("weft::run: empty Task");
  detail::RunSigint sigint;  // first: the workers start with SIGINT blocked
  Runtime rt(std::move(options));
  JoinHandle<T> h = rt.spawn(std::move(main), SpawnOptions{"main"});
  const bool interrupted = sigint.wait(h.header());
  sigint.restore_handler();
  rt.shutdown();
  if (interrupted && h.cancelled()) throw KeyboardInterrupt();
  return std::move(h).result();
}

}  // namespace weft
