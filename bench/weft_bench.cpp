// weft_bench: weft's side of the benchmark suite. Same command line and
// one-line JSON output as the peers (bench/peers/README.md), peer name "weft",
// plus every RuntimeOptions knob as a flag and the runtime's counters in a
// "metrics" object. Each workload is written with weft's public API the way a
// user would write it; bench/run alternates this binary with the peers.
//
//   weft_bench --workload NAME [--workers 2] [--n N] [--t T] [--y Y] [--p P]
//              [--r R] [--depth D] [--seed S] [--ops OPS]
//              [every RuntimeOptions knob flag: weft/runtime_flags.hpp]
//
// --workers 0 means all cores (std::thread::hardware_concurrency()), as
// RuntimeOptions::workers = 0 does; the peers need at least 1.
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <weft/detail/frame_alloc.hpp>
#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;

constexpr const char* kProg = "weft_bench";

// ------------------------------------------------------------------ arguments

struct Args {
  std::string workload;
  int workers = 2;
  int64_t n = -1;  // -1: the workload's default
  int64_t t = 1000;
  int64_t y = 1000;
  int64_t p = -1;  // -1: the workload's default
  int64_t r = 100;
  int64_t depth = 32;
  uint64_t seed = 42;
  int64_t ops = 1000000;
  weft::RuntimeOptions opts;
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", kProg, msg.c_str());
  std::fprintf(stderr,
               "usage: %s --workload NAME [--workers 2] [--n N] [--t T] [--y Y] [--p P] [--r R]\n"
               "       [--depth D] [--seed S] [--ops OPS]\n"
               "and every RuntimeOptions knob (weft/runtime_flags.hpp):\n%s",
               kProg, weft::runtime_flags_usage());
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  weft::RuntimeOptions& o = a.opts;
  for (int i = 1; i < argc; i += 2) {
    std::string key = argv[i];
    if (key == "-h" || key == "--help") usage("help");
    if (i + 1 >= argc) usage("missing value for " + key);
    const char* val = argv[i + 1];
    auto num = [&]() -> uint64_t {
      char* end = nullptr;
      errno = 0;
      unsigned long long v = std::strtoull(val, &end, 10);
      if (errno != 0 || end == val || *end != '\0' || val[0] == '-')
        usage("bad number for " + key + ": " + val);
      return v;
    };
    if (key == "--workload")
      a.workload = val;
    else if (key == "--workers")
      a.workers = static_cast<int>(num());
    else if (key == "--n")
      a.n = static_cast<int64_t>(num());
    else if (key == "--t")
      a.t = static_cast<int64_t>(num());
    else if (key == "--y")
      a.y = static_cast<int64_t>(num());
    else if (key == "--p")
      a.p = static_cast<int64_t>(num());
    else if (key == "--r")
      a.r = static_cast<int64_t>(num());
    else if (key == "--depth")
      a.depth = static_cast<int64_t>(num());
    else if (key == "--seed")
      a.seed = num();
    else if (key == "--ops")
      a.ops = static_cast<int64_t>(num());
    else {
      bool knob = false;
      try {
        knob = weft::set_runtime_flag(o, key, val);
      } catch (const std::invalid_argument& e) {
        usage(e.what());
      }
      if (!knob) usage("unknown option " + key);
    }
  }
  if (a.workload.empty()) usage("--workload is required");
  if (a.workers < 0) usage("--workers must be >= 0 (0 = all cores)");
  o.workers = static_cast<unsigned>(a.workers);
  return a;
}

// ------------------------------------------------------------------ output

std::string quote(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"')
      o += "\\\"";
    else if (c == '\\')
      o += "\\\\";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else
      o += static_cast<char>(c);
  }
  return o + "\"";
}

std::string real_str(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

class Json {
 public:
  Json() = default;
  Json(const std::string& peer, const std::string& workload) {
    str("peer", peer);
    str("workload", workload);
  }
  void str(const std::string& k, const std::string& v) { raw(k, quote(v)); }
  void integer(const std::string& k, int64_t v) { raw(k, std::to_string(v)); }
  void uinteger(const std::string& k, uint64_t v) { raw(k, std::to_string(v)); }
  void real(const std::string& k, double v) { raw(k, real_str(v)); }
  void null(const std::string& k) { raw(k, "null"); }
  void timing(int64_t ns_total, int64_t ops) {
    integer("ops", ops);
    integer("ns_total", ns_total);
    real("ns_per_op", static_cast<double>(ns_total) / static_cast<double>(ops > 0 ? ops : 1));
  }
  void raw(const std::string& k, const std::string& v) { parts_.push_back(quote(k) + ":" + v); }
  std::string text() const {
    std::string line = "{";
    for (size_t i = 0; i < parts_.size(); ++i) {
      if (i) line += ",";
      line += parts_[i];
    }
    return line + "}";
  }
  void print() const {
    std::fputs((text() + "\n").c_str(), stdout);
    std::fflush(stdout);
  }

 private:
  std::vector<std::string> parts_;
};

// ------------------------------------------------------------------ helpers

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// splitmix64, identical in every peer so the timer delays match.
struct SplitMix64 {
  uint64_t s;
  uint64_t next() {
    s += 0x9E3779B97F4A7C15ull;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

/// Nearest-rank percentile of a sorted vector.
int64_t percentile(const std::vector<int64_t>& sorted, double pct) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<size_t>(std::ceil(pct / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

/// Resident set size in bytes, from /proc/self/statm.
uint64_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  int got = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (got != 2) return 0;
  long page = sysconf(_SC_PAGESIZE);
  return resident * static_cast<uint64_t>(page > 0 ? page : 4096);
}

// The counters the JSON reports, in this order.
struct Counters {
  uint64_t tasks_polled, tasks_stolen, steal_attempts, parks, unparks, enter_calls, sqes_submitted,
      cqes, wake_syscalls, remote_wakes, lifo_polls, global_polls, overflows, cpu_jobs_helped,
      frames_refilled, fence_syscalls;
  // Not a runtime counter: the whole process's minor page faults
  // (getrusage), so a run shows how many fresh pages it touched (pages
  // populated ahead by madvise count as well).
  uint64_t minor_faults;
};

uint64_t minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_minflt);
}

Counters snapshot(const weft::Runtime& rt) {
  weft::WorkerMetrics m = rt.metrics().total();
  return {m.tasks_polled,  m.tasks_stolen,    m.steal_attempts,  m.parks,
          m.unparks,       m.enter_calls,     m.sqes_submitted,  m.cqes,
          m.wake_syscalls, m.remote_wakes,    m.lifo_polls,      m.global_polls,
          m.overflows,     m.cpu_jobs_helped, m.frames_refilled, m.fence_syscalls,
          minor_faults()};
}

Counters diff(const Counters& a, const Counters& b) {
  return {b.tasks_polled - a.tasks_polled,
          b.tasks_stolen - a.tasks_stolen,
          b.steal_attempts - a.steal_attempts,
          b.parks - a.parks,
          b.unparks - a.unparks,
          b.enter_calls - a.enter_calls,
          b.sqes_submitted - a.sqes_submitted,
          b.cqes - a.cqes,
          b.wake_syscalls - a.wake_syscalls,
          b.remote_wakes - a.remote_wakes,
          b.lifo_polls - a.lifo_polls,
          b.global_polls - a.global_polls,
          b.overflows - a.overflows,
          b.cpu_jobs_helped - a.cpu_jobs_helped,
          b.frames_refilled - a.frames_refilled,
          b.fence_syscalls - a.fence_syscalls,
          b.minor_faults - a.minor_faults};
}

std::string metrics_json(const Counters& c, int64_t ops) {
  Json j;
  j.uinteger("tasks_polled", c.tasks_polled);
  j.uinteger("tasks_stolen", c.tasks_stolen);
  j.uinteger("steal_attempts", c.steal_attempts);
  j.uinteger("parks", c.parks);
  j.uinteger("unparks", c.unparks);
  j.uinteger("enter_calls", c.enter_calls);
  j.uinteger("sqes_submitted", c.sqes_submitted);
  j.uinteger("cqes", c.cqes);
  j.uinteger("wake_syscalls", c.wake_syscalls);
  j.uinteger("remote_wakes", c.remote_wakes);
  j.uinteger("lifo_polls", c.lifo_polls);
  j.uinteger("global_polls", c.global_polls);
  j.uinteger("overflows", c.overflows);
  j.uinteger("cpu_jobs_helped", c.cpu_jobs_helped);
  j.uinteger("frames_refilled", c.frames_refilled);
  j.uinteger("fence_syscalls", c.fence_syscalls);
  j.uinteger("minor_faults", c.minor_faults);
  j.real("syscalls_per_op",
         static_cast<double>(c.enter_calls + c.wake_syscalls + c.fence_syscalls) /
             static_cast<double>(ops > 0 ? ops : 1));
  return j.text();
}

// ------------------------------------------------------------------ tasks

weft::Task<void> noop() { co_return; }

// Moves a handle out of its vector slot. Awaited as the temporary this
// returns, the handle is dropped as soon as its await is over, as the Tokio
// peer's `for h in hs { h.await }` drops each handle it moves out of the
// vector: a finished task's frame is freed then, on the worker awaiting it,
// instead of all of them together when the vector goes.
template <class T>
weft::JoinHandle<T> take(weft::JoinHandle<T>& h) noexcept {
  return std::move(h);
}

weft::Task<void> await_all(std::vector<weft::JoinHandle<void>> hs) {
  for (auto& h : hs) co_await take(h);
}

/// Spawns a short burst of tasks so the workers, their rings and the frame
/// caches exist before anything is timed (as the peers' warm-ups do).
weft::Task<void> warm_up() {
  std::vector<weft::JoinHandle<void>> hs;
  hs.reserve(1000);
  for (int i = 0; i < 1000; ++i) hs.push_back(weft::spawn(noop()));
  for (auto& h : hs) co_await take(h);
}

// ------------------------------------------------------------------ workloads

weft::Task<void> spawn_many_root(int64_t n) {
  std::vector<weft::JoinHandle<void>> hs;
  hs.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) hs.push_back(weft::spawn(noop()));
  for (auto& h : hs) co_await take(h);
}

int64_t spawn_many(weft::Runtime& rt, int64_t n) {
  int64_t t0 = now_ns();
  rt.block_on(spawn_many_root(n));
  return now_ns() - t0;
}

int64_t spawn_remote(weft::Runtime& rt, int64_t n) {
  int64_t t0 = now_ns();
  // Spawned from the main thread, which is not a runtime worker.
  std::vector<weft::JoinHandle<void>> hs;
  hs.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) hs.push_back(rt.spawn(noop()));
  rt.block_on(await_all(std::move(hs)));
  return now_ns() - t0;
}

weft::Task<void> yielder(int64_t y) {
  for (int64_t i = 0; i < y; ++i) co_await weft::yield_now();
}

weft::Task<void> yield_many_root(int64_t t, int64_t y) {
  std::vector<weft::JoinHandle<void>> hs;
  hs.reserve(static_cast<size_t>(t));
  for (int64_t i = 0; i < t; ++i) hs.push_back(weft::spawn(yielder(y)));
  for (auto& h : hs) co_await take(h);
}

int64_t yield_many(weft::Runtime& rt, int64_t t, int64_t y) {
  int64_t t0 = now_ns();
  rt.block_on(yield_many_root(t, y));
  return now_ns() - t0;
}

// ping_pong: every hop goes through a fresh weft::oneshot, and the message
// carries the sender for the reply (as the Tokio peer's does).
struct Msg {
  int64_t v;
  weft::OneshotSender<Msg> reply;
};

weft::Task<void> pong(weft::OneshotReceiver<Msg> rx, int64_t r) {
  for (int64_t i = 0; i < r; ++i) {
    Msg m = co_await rx;
    auto [tx, next] = weft::oneshot<Msg>();
    std::move(m.reply).send(Msg{m.v + 1, std::move(tx)});
    rx = std::move(next);
  }
}

weft::Task<int64_t> ping(int64_t r) {
  auto [first_tx, first_rx] = weft::oneshot<Msg>();
  weft::JoinHandle<void> partner = weft::spawn(pong(std::move(first_rx), r));
  weft::OneshotSender<Msg> tx = std::move(first_tx);
  int64_t v = 0;
  for (int64_t i = 0; i < r; ++i) {
    auto [reply_tx, reply_rx] = weft::oneshot<Msg>();
    std::move(tx).send(Msg{v, std::move(reply_tx)});
    Msg m = co_await reply_rx;
    v = m.v + 1;
    tx = std::move(m.reply);
  }
  co_await partner;
  co_return v;
}

weft::Task<void> ping_pong_root(int64_t p, int64_t r) {
  std::vector<weft::JoinHandle<int64_t>> hs;
  hs.reserve(static_cast<size_t>(p));
  for (int64_t i = 0; i < p; ++i) hs.push_back(weft::spawn(ping(r)));
  for (auto& h : hs) {
    int64_t v = co_await take(h);
    if (v != 2 * r) {
      std::fprintf(stderr, "%s: ping_pong: got %" PRId64 ", expected %" PRId64 "\n", kProg, v,
                   2 * r);
      std::exit(1);
    }
  }
}

int64_t ping_pong(weft::Runtime& rt, int64_t p, int64_t r) {
  int64_t t0 = now_ns();
  rt.block_on(ping_pong_root(p, r));
  return now_ns() - t0;
}

// ------------------------------------------------------------------ sync
// Shapes shared with the Tokio peer (bench/peers/tokio/src/main.rs): each
// runs `n` rounds; one op is one message / one acquire / one wake-up.
constexpr int64_t kMpscProducers = 5;
constexpr int64_t kMpscMessages = 1000;  // per producer per round
constexpr std::size_t kMpscCapacity = 1024;
constexpr int64_t kContenders = 6;
constexpr int64_t kAcquiresPerTask = 1000;  // per task per round
constexpr int64_t kFanOut = 500;

weft::Task<void> mpsc_producer(weft::Channel<int64_t> ch) {
  for (int64_t i = 0; i < kMpscMessages; ++i) co_await ch.send(i);
}

weft::Task<void> mpsc_root(int64_t rounds, bool bounded) {
  for (int64_t r = 0; r < rounds; ++r) {
    auto ch = bounded ? weft::Channel<int64_t>(kMpscCapacity) : weft::Channel<int64_t>::unbounded();
    std::vector<weft::JoinHandle<void>> hs;
    for (int64_t p = 0; p < kMpscProducers; ++p) hs.push_back(weft::spawn(mpsc_producer(ch)));
    int64_t got = 0;
    for (int64_t i = 0; i < kMpscProducers * kMpscMessages; ++i) {
      std::optional<int64_t> v = co_await ch.recv();
      got += v.has_value();
    }
    if (got != kMpscProducers * kMpscMessages) {
      std::fprintf(stderr, "%s: mpsc: lost messages\n", kProg);
      std::exit(1);
    }
    for (auto& h : hs) co_await take(h);
  }
}

weft::Task<void> sem_contender(weft::Semaphore* s, std::atomic<int64_t>* n) {
  for (int64_t i = 0; i < kAcquiresPerTask; ++i) {
    co_await s->acquire();
    n->fetch_add(1, std::memory_order_relaxed);
    s->release();
  }
}

weft::Task<void> semaphore_root(int64_t rounds) {
  for (int64_t r = 0; r < rounds; ++r) {
    weft::Semaphore s(2);
    std::atomic<int64_t> n{0};
    std::vector<weft::JoinHandle<void>> hs;
    for (int64_t t = 0; t < kContenders; ++t) hs.push_back(weft::spawn(sem_contender(&s, &n)));
    for (auto& h : hs) co_await take(h);
  }
}

weft::Task<void> mutex_contender(weft::Lock* l, int64_t* counter) {
  for (int64_t i = 0; i < kAcquiresPerTask; ++i) {
    auto g = co_await l->lock();
    ++*counter;
  }
}

weft::Task<void> mutex_root(int64_t rounds) {
  for (int64_t r = 0; r < rounds; ++r) {
    weft::Lock l;
    int64_t counter = 0;
    std::vector<weft::JoinHandle<void>> hs;
    for (int64_t t = 0; t < kContenders; ++t)
      hs.push_back(weft::spawn(mutex_contender(&l, &counter)));
    for (auto& h : hs) co_await take(h);
    if (counter != kContenders * kAcquiresPerTask) {
      std::fprintf(stderr, "%s: mutex: lost updates\n", kProg);
      std::exit(1);
    }
  }
}

weft::Task<void> notify_waiter(weft::Event* e, std::atomic<int64_t>* ready) {
  ready->fetch_add(1, std::memory_order_relaxed);
  co_await e->wait();
}

weft::Task<void> notify_root(int64_t rounds) {
  for (int64_t r = 0; r < rounds; ++r) {
    weft::Event e;
    std::atomic<int64_t> ready{0};
    std::vector<weft::JoinHandle<void>> hs;
    hs.reserve(kFanOut);
    for (int64_t t = 0; t < kFanOut; ++t) hs.push_back(weft::spawn(notify_waiter(&e, &ready)));
    while (ready.load(std::memory_order_relaxed) < kFanOut) co_await weft::yield_now();
    e.set();
    for (auto& h : hs) co_await take(h);
  }
}

template <class Root>
int64_t timed(weft::Runtime& rt, Root root) {
  int64_t t0 = now_ns();
  rt.block_on(std::move(root));
  return now_ns() - t0;
}

// chained_spawn: each task spawns the next one and ends (detached: dropping
// a JoinHandle does not cancel); the last completes the promise.
weft::Task<void> chain(int64_t left, std::shared_ptr<weft::Promise<void>> done) {
  if (left <= 1) {
    done->set_result();
  } else {
    weft::spawn(chain(left - 1, std::move(done)));
  }
  co_return;
}

weft::Task<void> chained_root(int64_t n) {
  if (n == 0) co_return;
  auto done = std::make_shared<weft::Promise<void>>();
  weft::Future<void> f = done->get_future();
  weft::spawn(chain(n, std::move(done)));
  co_await f;
}

int64_t chained_spawn(weft::Runtime& rt, int64_t n) {
  int64_t t0 = now_ns();
  rt.block_on(chained_root(n));
  return now_ns() - t0;
}

weft::Task<int64_t> sleeper(uint64_t delay_us) {
  weft::TimePoint deadline = weft::Clock::now() + std::chrono::microseconds(delay_us);
  co_await weft::sleep_until(deadline);
  weft::TimePoint woke = weft::Clock::now();
  co_return std::chrono::duration_cast<std::chrono::nanoseconds>(woke - deadline).count();
}

weft::Task<std::vector<int64_t>> timers_root(std::vector<uint64_t> delays) {
  std::vector<weft::JoinHandle<int64_t>> hs;
  hs.reserve(delays.size());
  for (uint64_t d : delays) hs.push_back(weft::spawn(sleeper(d)));
  std::vector<int64_t> late;
  late.reserve(hs.size());
  for (auto& h : hs) late.push_back(co_await take(h));
  co_return late;
}

// io_nop: each worker gets `depth` tasks, each looping over weft::io::nop(),
// so every worker keeps about `depth` NOPs in flight on its own ring. The
// tasks are spawned from a callback on each worker's loop (spawn queues on
// the calling worker); the per-worker SQE counts are reported to show where
// they actually ran (a task may still be stolen).
weft::Task<void> nop_loop(int64_t count) {
  for (int64_t i = 0; i < count; ++i) co_await weft::io::nop();
}

weft::Task<void> io_nop_worker(int64_t depth, int64_t ops,
                               std::shared_ptr<weft::Promise<void>> done) {
  std::vector<weft::JoinHandle<void>> hs;
  hs.reserve(static_cast<size_t>(depth));
  for (int64_t i = 0; i < depth; ++i)
    hs.push_back(weft::spawn(nop_loop(ops / depth + (i < ops % depth))));
  for (auto& h : hs) co_await take(h);
  done->set_result();
}

void io_nop_run(weft::Runtime& rt, int64_t depth, int64_t ops) {
  std::vector<weft::Future<void>> fs;
  for (unsigned i = 0; i < rt.workers(); ++i) {
    auto done = std::make_shared<weft::Promise<void>>(&rt);
    fs.push_back(done->get_future());
    rt.loop(i).call_soon_threadsafe(
        [depth, ops, done] { weft::spawn(io_nop_worker(depth, ops, done)); });
  }
  for (auto& f : fs) f.get();
}

// spawn_idle: each task awaits its own future, whose promise main keeps alive
// (the Tokio peer keeps its oneshot senders the same way).
weft::Task<void> idle_task(std::atomic<int64_t>* started, weft::Future<void> f) {
  started->fetch_add(1, std::memory_order_relaxed);
  co_await f;
}

struct IdleSet {
  std::vector<weft::Promise<void>> promises;
  std::vector<weft::JoinHandle<void>> handles;
};

weft::Task<void> idle_root(IdleSet* set, std::atomic<int64_t>* started, int64_t n) {
  set->promises.reserve(static_cast<size_t>(n));
  set->handles.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    weft::Promise<void> p;
    set->handles.push_back(weft::spawn(idle_task(started, p.get_future())));
    set->promises.push_back(std::move(p));
  }
  co_return;
}

weft::Task<int64_t> await_cancelled(std::vector<weft::JoinHandle<void>>* hs) {
  int64_t cancelled = 0;
  for (auto& h : *hs) {
    try {
      co_await h;
    } catch (const weft::CancelledError&) {
      ++cancelled;
    }
  }
  co_return cancelled;
}

// blocking_seq / blocking_conc: run_in_executor(nullptr, noop) round trips
// on the default executor (a BlockingPool created on first use, as Tokio's
// blocking pool), n in a row from one task, or p tasks each with one in
// flight (Tokio's spawn_blocking peer).
weft::Task<void> blocking_loop(int64_t n) {
  for (int64_t i = 0; i < n; ++i) co_await weft::run_in_executor(nullptr, [] {});
}

weft::Task<void> blocking_conc_root(int64_t n, int64_t p) {
  std::vector<weft::JoinHandle<void>> hs;
  hs.reserve(static_cast<size_t>(p));
  for (int64_t i = 0; i < p; ++i) hs.push_back(weft::spawn(blocking_loop(n / p + (i < n % p))));
  for (auto& h : hs) co_await take(h);
}

// cpu_fanout: the sum of n uint32 values (value i & 1023), split into
// `chunks` equal ranges, each summed by one CpuPool job submitted from a
// task, which then gathers the futures (asyncio's
// `await gather(*(run_in_executor(pool, ...) ...))`; the TBB peer calls
// tbb::parallel_reduce with the same chunks directly, the Tokio peer uses
// spawn_blocking per chunk).
weft::Task<uint64_t> cpu_fanout_root(weft::CpuPool* pool, const uint32_t* data, int64_t n,
                                     int64_t chunks) {
  std::vector<weft::Future<uint64_t>> fs;
  fs.reserve(static_cast<size_t>(chunks));
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    fs.push_back(pool->submit([data, b, e] {
      uint64_t sum = 0;
      for (int64_t i = b; i < e; ++i) sum += data[i];
      return sum;
    }));
  }
  uint64_t total = 0;
  for (uint64_t v : co_await weft::gather(fs)) total += v;
  co_return total;
}

// ------------------------------------------------------------------ main

int run(const Args& a) {
  const std::string& w = a.workload;
  Json out("weft", w);
  static const char* const known[] = {
      "spawn_many",     "spawn_remote",  "yield_many", "ping_pong",
      "chained_spawn",  "timers",        "io_nop",     "spawn_idle",
      "blocking_seq",   "blocking_conc", "cpu_fanout", "mpsc_bounded",
      "mpsc_unbounded", "semaphore",     "notify",     "mutex"};
  if (std::none_of(std::begin(known), std::end(known), [&](const char* k) { return w == k; })) {
    out.str("skipped", "unknown workload");
    out.print();
    return 0;
  }

  weft::Runtime rt(a.opts);
  // --workers 0 means all cores, as RuntimeOptions::workers does: the
  // workloads and the JSON use the count the runtime chose.
  const int workers = static_cast<int>(rt.workers());
  rt.block_on(warm_up());
  out.integer("workers", workers);

  int64_t ops = 1;
  std::vector<uint64_t> polled_before;
  for (const auto& wm : rt.metrics().workers) polled_before.push_back(wm.tasks_polled);
  Counters before = snapshot(rt);
  Counters after{};
  bool have_after = false;
  std::string polled_per_worker;
  auto stop_counters = [&] {
    after = snapshot(rt);
    weft::Metrics m = rt.metrics();
    polled_per_worker = "[";
    for (size_t i = 0; i < m.workers.size(); ++i)
      polled_per_worker +=
          (i ? "," : "") + std::to_string(m.workers[i].tasks_polled -
                                          (i < polled_before.size() ? polled_before[i] : 0));
    polled_per_worker += "]";
    have_after = true;
  };

  if (w == "spawn_many") {
    int64_t n = a.n < 0 ? 1000000 : a.n;
    out.integer("n", n);
    int64_t ns = spawn_many(rt, n);
    stop_counters();
    ops = n;
    out.timing(ns, ops);
  } else if (w == "spawn_remote") {
    int64_t n = a.n < 0 ? 100000 : a.n;
    out.integer("n", n);
    int64_t ns = spawn_remote(rt, n);
    stop_counters();
    ops = n;
    out.timing(ns, ops);
    out.str("note",
            "Runtime::spawn from the main thread (outside the runtime), then block_on awaiting the "
            "JoinHandles");
  } else if (w == "yield_many") {
    out.integer("t", a.t);
    out.integer("y", a.y);
    int64_t ns = yield_many(rt, a.t, a.y);
    stop_counters();
    ops = a.t * a.y;
    out.timing(ns, ops);
  } else if (w == "ping_pong") {
    int64_t p = a.p < 0 ? 1000 : a.p;
    out.integer("p", p);
    out.integer("r", a.r);
    int64_t ns = ping_pong(rt, p, a.r);
    stop_counters();
    ops = 2 * p * a.r;
    out.timing(ns, ops);
    Counters d = diff(before, after);
    out.uinteger("cross_worker_wakes", d.remote_wakes);
    out.str("note", "a fresh weft::oneshot per hop; cross_worker_wakes = metrics remote_wakes");
  } else if (w == "mpsc_bounded" || w == "mpsc_unbounded") {
    int64_t n = a.n < 0 ? (w == "mpsc_bounded" ? 300 : 500) : a.n;
    out.integer("n", n);
    int64_t ns = timed(rt, mpsc_root(n, w == "mpsc_bounded"));
    stop_counters();
    ops = n * kMpscProducers * kMpscMessages;
    out.timing(ns, ops);
    out.str("note", w == "mpsc_bounded"
                        ? "weft::Channel(1024), 5 producers x 1000, one consumer"
                        : "weft::Channel::unbounded(), 5 producers x 1000, one consumer");
  } else if (w == "semaphore") {
    int64_t n = a.n < 0 ? 500 : a.n;
    out.integer("n", n);
    int64_t ns = timed(rt, semaphore_root(n));
    stop_counters();
    ops = n * kContenders * kAcquiresPerTask;
    out.timing(ns, ops);
    out.str("note", "Semaphore(2), 6 tasks x 1000 acquire/release per round");
  } else if (w == "mutex") {
    int64_t n = a.n < 0 ? 2000 : a.n;
    out.integer("n", n);
    int64_t ns = timed(rt, mutex_root(n));
    stop_counters();
    ops = n * kContenders * kAcquiresPerTask;
    out.timing(ns, ops);
    out.str("note", "Lock, 6 tasks x 1000 lock/unlock per round");
  } else if (w == "notify") {
    int64_t n = a.n < 0 ? 1000 : a.n;
    out.integer("n", n);
    int64_t ns = timed(rt, notify_root(n));
    stop_counters();
    ops = n * kFanOut;
    out.timing(ns, ops);
    out.str("note", "per round: spawn 500 waiters on an Event, set() once they wait, join all");
  } else if (w == "chained_spawn") {
    int64_t n = a.n < 0 ? 100000 : a.n;
    out.integer("n", n);
    int64_t ns = chained_spawn(rt, n);
    stop_counters();
    ops = n;
    out.timing(ns, ops);
  } else if (w == "timers") {
    int64_t n = a.n < 0 ? 100000 : a.n;
    out.integer("n", n);
    out.uinteger("seed", a.seed);
    SplitMix64 rng{a.seed};
    std::vector<uint64_t> delays(static_cast<size_t>(n));
    for (auto& d : delays) d = rng.next() % 50001;
    int64_t t0 = now_ns();
    std::vector<int64_t> late = rt.block_on(timers_root(std::move(delays)));
    int64_t ns = now_ns() - t0;
    stop_counters();
    std::sort(late.begin(), late.end());
    ops = n;
    out.timing(ns, ops);
    out.integer("p50_late_ns", percentile(late, 50.0));
    out.integer("p99_late_ns", percentile(late, 99.0));
  } else if (w == "io_nop") {
    int64_t depth = a.depth < 1 ? 1 : a.depth;
    int64_t total = a.ops * workers;
    int64_t t0 = now_ns();
    io_nop_run(rt, depth, a.ops);
    int64_t ns = now_ns() - t0;
    stop_counters();
    out.integer("depth", depth);
    out.integer("ops_per_worker", a.ops);
    // As the raw liburing peer: per-worker cost, the workers run in parallel.
    out.timing(ns, a.ops);
    ops = total;  // syscalls_per_op: per NOP completed
    out.real("ops_per_sec",
             ns > 0 ? static_cast<double>(total) * 1e9 / static_cast<double>(ns) : NAN);
    std::string per = "[";
    weft::Metrics m = rt.metrics();
    for (size_t i = 0; i < m.workers.size(); ++i)
      per += (i ? "," : "") + std::to_string(m.workers[i].sqes_submitted);
    out.raw("sqes_per_worker", per + "]");
    out.str("note",
            "depth tasks per worker (spawned from a callback on its loop) each awaiting "
            "weft::io::nop() in a loop; ops/ns_per_op per worker as the uring peer");
  } else if (w == "blocking_seq") {
    int64_t n = a.n < 0 ? 100000 : a.n;
    out.integer("n", n);
    int64_t t0 = now_ns();
    rt.block_on(blocking_loop(n));
    int64_t ns = now_ns() - t0;
    stop_counters();
    ops = n;
    out.timing(ns, ops);
    out.str("note",
            "co_await run_in_executor(nullptr, noop) n times from one task (default "
            "BlockingPool, created lazily like Tokio's)");
  } else if (w == "blocking_conc") {
    int64_t n = a.n < 0 ? 100000 : a.n;
    int64_t p = a.p < 0 ? 64 : std::max<int64_t>(1, a.p);
    out.integer("n", n);
    out.integer("p", p);
    int64_t t0 = now_ns();
    rt.block_on(blocking_conc_root(n, p));
    int64_t ns = now_ns() - t0;
    stop_counters();
    ops = n;
    out.timing(ns, ops);
  } else if (w == "cpu_fanout") {
    int64_t n = a.n < 0 ? 100000000 : a.n;
    int64_t chunks = a.p < 0 ? 10000 : std::max<int64_t>(1, a.p);
    out.integer("n", n);
    out.integer("p", chunks);
    std::vector<uint32_t> data(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) data[static_cast<size_t>(i)] = static_cast<uint32_t>(i & 1023);
    weft::CpuPool pool(weft::CpuPoolOptions{static_cast<unsigned>(workers)});
    // Warm the arena's threads, as the TBB peer warms its arena.
    rt.block_on(cpu_fanout_root(&pool, data.data(), std::min<int64_t>(n, 1024), 16));
    int64_t t0 = now_ns();
    uint64_t sum = rt.block_on(cpu_fanout_root(&pool, data.data(), n, chunks));
    int64_t ns = now_ns() - t0;
    stop_counters();
    ops = chunks;
    out.timing(ns, ops);
    out.uinteger("sum", sum);
    out.str("note",
            "p CpuPool jobs (a oneTBB arena of --workers) submitted from a task, each "
            "summing n/p values, their futures gathered (weft::gather); ns_per_op per chunk");
  } else if (w == "spawn_idle") {
    int64_t n = a.n < 0 ? 1000000 : a.n;
    out.integer("n", n);
    uint64_t baseline = rss_bytes();
    std::atomic<int64_t> started{0};
    auto set = std::make_unique<IdleSet>();
    int64_t t0 = now_ns();
    rt.block_on(idle_root(set.get(), &started, n));
    while (started.load(std::memory_order_relaxed) < n) std::this_thread::sleep_for(200us);
    int64_t ns = now_ns() - t0;
    // Let the workers finish parking before reading RSS.
    std::this_thread::sleep_for(20ms);
    uint64_t peak = rss_bytes();

    int64_t t1 = now_ns();
    for (auto& h : set->handles) h.cancel();
    int64_t cancelled = rt.block_on(await_cancelled(&set->handles));
    int64_t ns_cancel = now_ns() - t1;
    stop_counters();
    set.reset();
    // Let the allocator settle (no malloc_trim, as the Tokio peer).
    std::this_thread::sleep_for(200ms);
    uint64_t after_rss = rss_bytes();
    // Diagnostic only (not what the targets use): what glibc could give back.
    // If this is near the baseline, the after-cancel RSS is allocator
    // retention, not memory weft still holds.
    malloc_trim(0);
    uint64_t after_trim = rss_bytes();

    ops = n;
    out.timing(ns, ops);
    out.integer("ns_cancel", ns_cancel);
    uint64_t grown = peak > baseline ? peak - baseline : 0;
    out.real("bytes_per_task", static_cast<double>(grown) / static_cast<double>(n > 0 ? n : 1));
    out.uinteger("baseline_rss", baseline);
    out.uinteger("peak_rss", peak);
    out.uinteger("after_cancel_rss", after_rss);
    out.uinteger("after_trim_rss", after_trim);
    out.real("returned_pct", grown > 0
                                 ? (static_cast<double>(peak) - static_cast<double>(after_rss)) /
                                       static_cast<double>(grown) * 100.0
                                 : NAN);
    out.integer("cancelled", cancelled);
    // The frame caches may keep up to this much per size class and thread
    // (workers + the main thread, which drops the last handles).
    const uint64_t cap_per_class = weft::detail::kFrameCacheBytesPerClass;
    out.uinteger("frame_cache_cap_per_class", cap_per_class);
    // The most all caches together may hold: every size class full on every
    // thread that frees frames (the workers and this main thread).
    const uint64_t classes = weft::detail::kMaxCachedFrame / weft::detail::kFrameClassBytes;
    out.uinteger("frame_cache_cap_bytes",
                 cap_per_class * classes * static_cast<uint64_t>(workers + 1));
    out.str("note",
            "each task awaits its own never-completed Future<void> (promises kept alive by main); "
            "counts "
            "the frame, its JoinHandle, the Promise and the future state; cancel = "
            "JoinHandle::cancel() "
            "then await each handle catching CancelledError. weft's frame caches keep at most "
            "kFrameCacheBytesPerClass = " +
                std::to_string(cap_per_class / 1024) +
                " KiB per size class per thread (frame_alloc.hpp), i.e. " +
                std::to_string(cap_per_class / 1024) +
                " KiB x size classes used x (workers + 1) after cancelling");
    if (cancelled != n) {
      std::fprintf(stderr, "%s: spawn_idle: %" PRId64 " of %" PRId64 " tasks ended cancelled\n",
                   kProg, cancelled, n);
      out.print();
      return 1;
    }
  }
  if (!have_after) stop_counters();
  out.raw("metrics", metrics_json(diff(before, after), ops));
  out.raw("tasks_polled_per_worker", polled_per_worker);
  // Knobs as run, so a result file says what it measured.
  const weft::RuntimeOptions& o = rt.options();
  Json k;
  k.uinteger("ring_entries", o.ring_entries);
  k.uinteger("lifo_slot", o.lifo_slot);
  k.uinteger("lifo_cap", o.lifo_cap);
  k.uinteger("global_queue_interval", o.global_queue_interval);
  k.uinteger("event_interval", o.event_interval);
  k.uinteger("max_searching", o.max_searching);
  k.uinteger("spin_before_park", o.spin_before_park);
  k.uinteger("wake_with_eventfd", o.wake_with_eventfd);
  k.uinteger("trim_threshold", o.trim_threshold);
  k.uinteger("park_spin_us",
             static_cast<uint64_t>(
                 std::chrono::duration_cast<std::chrono::microseconds>(o.park_spin).count()));
  k.uinteger("sibling_spin_us",
             static_cast<uint64_t>(
                 std::chrono::duration_cast<std::chrono::microseconds>(o.sibling_spin).count()));
  k.uinteger("help_cpu_pools", o.help_cpu_pools);
  k.uinteger("refill_frames", o.refill_frames);
  k.uinteger("eager_file_submit", o.eager_file_submit);
  out.raw("options", k.text());
  out.print();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse_args(argc, argv);
  try {
    return run(a);
  } catch (const weft::CancelledError& e) {
    std::fprintf(stderr, "%s: %s: CancelledError: %s\n", kProg, a.workload.c_str(), e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s: %s\n", kProg, a.workload.c_str(), e.what());
  }
  return 1;
}
