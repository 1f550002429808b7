// Randomised stress of the scheduler on 2 workers: spawned tasks doing random
// yields, sleeps, cross-worker and cross-thread wake-ups through Futures,
// errors, and cancels from other tasks, over many seeds.
//
// Checked per seed: every task's body starts at most once; every task ends in
// exactly one outcome (its value, CancelledError, or its own error) and that
// outcome matches what the body did; all_tasks() is empty at the end and the
// runtime counts no live task.
//
// Release builds run 1,000,000 tasks per seed, 6 seeds (about 4 s a seed
// here); sanitizer builds run fewer (they are 5-20x slower) but the same
// code paths.
// Replay one seed with WEFT_STRESS_SEED=<seed> (and WEFT_STRESS_TASKS=<n>).
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>
#include <utility>
#include <vector>
#include <weft/weft.hpp>

#include "../support/stress_seeds.hpp"
#include "../support/test_helpers.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int kSeeds = weft_test::build_size(6, 4);
constexpr int kTasksPerSeed = weft_test::build_size(1'000'000, 20'000);

struct Shared {
  explicit Shared(int n) : started(n), kinds(n) {
    promises.reserve(n);
    for (int i = 0; i < n; ++i) promises.emplace_back();
  }
  std::vector<std::atomic<int>> started;     // body entries per task
  std::vector<std::atomic<int>> kinds;       // 1 returned, 2 threw its own error
  std::vector<weft::Promise<int>> promises;  // one per task
};

struct TaskError : std::runtime_error {
  TaskError() : std::runtime_error("planned failure") {}
};

void try_complete(weft::Promise<int>& p, int v) {
  try {
    p.set_result(v);
  } catch (const weft::InvalidStateError&) {
    // Already completed by someone else, or cancelled by its waiter.
  }
}

weft::Task<int> body(Shared& s, int i, std::uint64_t seed) {
  s.started[i].fetch_add(1, std::memory_order_relaxed);
  std::mt19937_64 rng(seed ^ (0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(i + 1)));
  const int n = static_cast<int>(s.promises.size());
  int steps = static_cast<int>(rng() % 5);
  for (int k = 0; k < steps; ++k) {
    switch (rng() % 6) {
      case 0:
      case 1:
        co_await weft::yield_now();
        break;
      case 2:
        co_await weft::sleep(std::chrono::microseconds(rng() % 500));
        break;
      case 3: {
        // Wait for our own future: another task or the foreign thread
        // completes it, usually from the other worker or another thread.
        int v = co_await s.promises[i].get_future();
        if (v != i) throw std::logic_error("future delivered the wrong value");
        break;
      }
      case 4: {
        // Complete a neighbour's future (it may be waiting on either worker).
        int j = (i + 1 + static_cast<int>(rng() % 64)) % n;
        try_complete(s.promises[j], j);
        break;
      }
      case 5:
        if (rng() % 16 == 0) {
          s.kinds[i].store(2, std::memory_order_relaxed);
          throw TaskError();
        }
        break;
    }
  }
  s.kinds[i].store(1, std::memory_order_relaxed);
  co_return i;
}

struct Counts {
  long values = 0, cancelled = 0, errors = 0, wrong = 0;
};

weft::Task<Counts> driver(int n, std::uint64_t seed) {
  auto s = std::make_shared<Shared>(n);
  std::mt19937_64 rng(seed);
  std::vector<weft::JoinHandle<int>> hs;
  hs.reserve(n);
  for (int i = 0; i < n; ++i) {
    hs.push_back(weft::spawn(body(*s, i, seed)));
    if (rng() % 10 == 0) hs[rng() % hs.size()].cancel("stress");
    if (i % 1000 == 999) co_await weft::yield_now();
  }
  // A foreign thread completes every future with its owner's index, in a
  // shuffled order, while the tasks run.
  weft::Promise<void> finished;
  weft::Future<void> finished_f = finished.get_future();
  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::thread completer([s, order = std::move(order), p = std::move(finished)]() mutable {
    for (int i : order) try_complete(s->promises[i], i);
    p.set_result();
  });
  co_await finished_f;
  completer.join();

  Counts c;
  for (int i = 0; i < n; ++i) {
    try {
      int v = co_await hs[i];
      if (v == i && s->kinds[i].load() == 1) {
        ++c.values;
      } else {
        ++c.wrong;
      }
    } catch (const weft::CancelledError&) {
      ++c.cancelled;
    } catch (const TaskError&) {
      if (s->kinds[i].load() == 2) {
        ++c.errors;
      } else {
        ++c.wrong;
      }
    } catch (...) {
      ++c.wrong;
    }
    if (s->started[i].load() > 1) ++c.wrong;
  }
  co_return c;
}

}  // namespace

TEST_CASE("stress: random yields, sleeps, cross-worker wakes, errors and cancels, many seeds",
          "[stress]") {
  const int tasks = weft_test::env_int("WEFT_STRESS_TASKS", kTasksPerSeed);
  for (std::uint64_t seed : weft_test::stress_seeds(kSeeds)) {
    INFO(weft_test::replay(seed, tasks));
    weft::RuntimeOptions o;
    o.workers = 2;
    weft::Runtime rt(o);
    Counts c = rt.block_on(driver(tasks, seed));
    CHECK(c.wrong == 0);
    CHECK(c.values + c.cancelled + c.errors == tasks);
    CHECK(c.cancelled > 0);
    CHECK(rt.all_tasks().empty());
    CHECK(rt.metrics().live_tasks == 0);
    rt.shutdown();
  }
}

// ---------------------------------------------------------------------------
// Registrations racing a task's completion (add_waiter / complete_task in
// task.cpp: a lock-free push against the completer's closing exchange). Each
// round, a task on a worker announces that it is about to return, waits a
// random few pauses and returns; the main thread, on seeing the
// announcement, waits its own random few pauses and registers a done
// callback (a thread outside the runtime), so the two meet within
// nanoseconds of each other in a share of the rounds. Checked per seed:
// every callback ran exactly once. A registration lost in the list of a
// finished task would never run: the seed then fails after 60 s rather than
// hang. (Checked against a completer that left an empty list open without
// the registrar taking its node back: 534 of 100,000 callbacks never ran.)

namespace {

constexpr int kRaceRounds = weft_test::build_size(100'000, 5'000);

void spin_for(unsigned n) {
  for (unsigned i = 0; i < n; ++i) __builtin_ia32_pause();
}

weft::Task<void> race_finisher(std::atomic<bool>* ending, unsigned spins) {
  ending->store(true, std::memory_order_release);
  spin_for(spins);
  co_return;
}

struct RaceState {
  explicit RaceState(int n) : fired(n) {}
  std::vector<std::atomic<int>> fired;  // callbacks run, per round
  std::atomic<int> callbacks{0};
  weft::Promise<void> all_fired;
};

// True if `done` completes within 60 s (a stress test that lost a wake-up
// fails instead of hanging).
template <class Awaitable>
weft::Task<bool> within_60s(Awaitable done) {
  try {
    co_await weft::wait_for(std::move(done), 60s);
  } catch (const weft::TimeoutError&) {
    co_return false;
  }
  co_return true;
}

}  // namespace

TEST_CASE("stress: a done callback registered as its task completes runs exactly once",
          "[stress]") {
  const int rounds = weft_test::env_int("WEFT_STRESS_TASKS", kRaceRounds);
  for (std::uint64_t seed : weft_test::stress_seeds(2)) {
    INFO(weft_test::replay(seed, rounds));
    std::mt19937_64 rng(seed);
    weft::RuntimeOptions o;
    o.workers = 2;
    weft::Runtime rt(o);
    RaceState s(rounds);
    for (int i = 0; i < rounds; ++i) {
      std::atomic<bool> ending{false};
      auto h = rt.spawn(race_finisher(&ending, static_cast<unsigned>(rng() % 32)));
      const auto wait = static_cast<unsigned>(rng() % 32);
      while (!ending.load(std::memory_order_acquire)) __builtin_ia32_pause();
      spin_for(wait);
      h.add_done_callback([&s, i, rounds](const weft::TaskRef&) {
        s.fired[static_cast<std::size_t>(i)].fetch_add(1, std::memory_order_relaxed);
        if (s.callbacks.fetch_add(1, std::memory_order_acq_rel) + 1 == rounds)
          s.all_fired.set_result();
      });
    }
    const bool all_fired = rt.block_on(within_60s(s.all_fired.get_future()));
    CHECK(all_fired);
    CHECK(s.callbacks.load() == rounds);
    int wrong = 0;
    for (auto& f : s.fired) wrong += f.load() != 1;
    CHECK(wrong == 0);
    rt.shutdown();
  }
}

// ---------------------------------------------------------------------------
// A wait completed during the task's first step (run_task leaves a task in
// kScheduled for its first step; wake_with must then mark it notified, or
// end_step would leave it idle with its wait done and nobody to run it).
// Each round, a task's first step announces that it is about to await a
// future, and awaits it; the main thread, on seeing the announcement, waits
// a random few pauses and completes the future, so in a share of the rounds
// the completion lands between the task's registration and the end of its
// step. Checked per seed: every task finishes (a lost wake leaves one
// waiting forever: the seed then fails after 60 s rather than hang).
// (Checked against a wake_with that does not mark a first step notified:
// the seed fails.)

namespace {

weft::Task<void> first_step_waiter(std::atomic<bool>* waiting, weft::Future<void> f) {
  waiting->store(true, std::memory_order_release);
  co_await f;
}

}  // namespace

TEST_CASE("stress: a wait completed during the task's first step still resumes the task",
          "[stress]") {
  const int rounds = weft_test::env_int("WEFT_STRESS_TASKS", kRaceRounds);
  for (std::uint64_t seed : weft_test::stress_seeds(2)) {
    INFO(weft_test::replay(seed, rounds));
    std::mt19937_64 rng(seed);
    weft::Runtime rt(weft_test::workers(2));
    std::vector<weft::JoinHandle<void>> hs;
    hs.reserve(static_cast<std::size_t>(rounds));
    for (int i = 0; i < rounds; ++i) {
      std::atomic<bool> waiting{false};
      weft::Promise<void> p(&rt);
      hs.push_back(rt.spawn(first_step_waiter(&waiting, p.get_future())));
      const auto wait = static_cast<unsigned>(rng() % 64);
      while (!waiting.load(std::memory_order_acquire)) __builtin_ia32_pause();
      spin_for(wait);
      p.set_result();
    }
    CHECK(rt.block_on(within_60s(weft::gather(hs))));
    rt.shutdown();
  }
}

// ---------------------------------------------------------------------------
// The task registry (RegistryShard in worker.hpp): each worker enters its own
// shard without the lock, every other thread takes the lock and waits for the
// owner to leave. Here both workers spawn into their shards while tasks move
// between the workers (yields, stolen spawns) and end on either one, some
// with errors (unlinked at once, from whichever worker ran them), and three
// other threads of control list the registry all the while: a thread outside
// the runtime (Runtime::all_tasks, metrics), and tasks on both workers
// (weft::all_tasks). Checked per seed: no listing holds more tasks than were
// spawned, and at the end the registry is empty and counts no live task.
// ASan and TSan see a list corrupted or raced.

namespace {

constexpr int kRegistryTasks = weft_test::build_size(300'000, 20'000);

struct RegistryRun {
  std::atomic<long> spawned{0};
  std::atomic<long> bad_listings{0};
  std::atomic<long> listings{0};
};

struct RegistryError : std::runtime_error {
  RegistryError() : std::runtime_error("planned registry failure") {}
};

weft::Task<void> registry_child(RegistryRun* r, std::uint64_t seed, int depth) {
  std::mt19937_64 rng(seed);
  const unsigned action = static_cast<unsigned>(rng() % 16);
  if (action < 4) co_await weft::yield_now();  // may resume on the other worker
  if (action == 4 && depth < 3) {
    // A spawn from wherever this task now runs, awaited: ends on either worker.
    r->spawned.fetch_add(1, std::memory_order_relaxed);
    co_await weft::spawn(registry_child(r, rng(), depth + 1));
  }
  if (action == 5) {
    const std::vector<weft::TaskRef> all = weft::all_tasks();
    r->listings.fetch_add(1, std::memory_order_relaxed);
    if (static_cast<long>(all.size()) > r->spawned.load(std::memory_order_relaxed) + 2)
      r->bad_listings.fetch_add(1, std::memory_order_relaxed);
  }
  if (action == 6) throw RegistryError();
}

weft::Task<long> registry_root(RegistryRun* r, int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<weft::JoinHandle<void>> hs;
  long errors = 0;
  int i = 0;
  while (i < n) {
    // Bursts of random size: the sibling steals from long queues, and runs
    // lone tasks when the owner is busy.
    const int burst = 1 + static_cast<int>(rng() % 64);
    for (int k = 0; k < burst && i < n; ++k, ++i) {
      r->spawned.fetch_add(1, std::memory_order_relaxed);
      hs.push_back(weft::spawn(registry_child(r, rng(), 0)));
    }
    if (rng() % 4 == 0) co_await weft::yield_now();
    if (hs.size() >= 512) {
      for (auto& h : hs) {
        try {
          co_await h;
        } catch (const RegistryError&) {
          ++errors;
        }
      }
      hs.clear();
    }
  }
  for (auto& h : hs) {
    try {
      co_await h;
    } catch (const RegistryError&) {
      ++errors;
    }
  }
  co_return errors;
}

}  // namespace

TEST_CASE(
    "stress: the task registry stays consistent while both workers spawn and end each other's "
    "tasks and other threads list it",
    "[stress]") {
  const int tasks = weft_test::env_int("WEFT_STRESS_TASKS", kRegistryTasks);
  for (std::uint64_t seed : weft_test::stress_seeds(3)) {
    INFO(weft_test::replay(seed, tasks));
    weft::Runtime rt(weft_test::workers(2));
    RegistryRun r;
    std::atomic<bool> done{false};
    std::atomic<long> outside_listings{0}, outside_bad{0};
    std::thread lister([&] {
      do {
        const std::vector<weft::TaskRef> all = rt.all_tasks();
        const std::uint64_t live = rt.metrics().live_tasks;
        // Read after the listing: every task it saw was counted before then
        // (plus the two tasks the roots run in).
        const long bound = r.spawned.load(std::memory_order_acquire) + 2;
        if (static_cast<long>(all.size()) > bound || live > static_cast<std::uint64_t>(bound))
          outside_bad.fetch_add(1, std::memory_order_relaxed);
        outside_listings.fetch_add(1, std::memory_order_relaxed);
        std::this_thread::yield();
      } while (!done.load(std::memory_order_acquire));
    });
    // The lister is up before the roots start (not a synchronisation the
    // checks rely on: it only makes overlap likely on a loaded machine).
    while (outside_listings.load(std::memory_order_acquire) == 0) std::this_thread::yield();
    // One root per worker, each spawned from that worker's loop; main waits
    // on their handles, so every task has ended when the checks run.
    std::vector<weft::Future<weft::JoinHandle<long>>> placed;
    for (unsigned w = 0; w < 2; ++w) {
      auto p = std::make_shared<weft::Promise<weft::JoinHandle<long>>>(&rt);
      placed.push_back(p->get_future());
      const std::uint64_t root_seed = seed * 2 + w;
      rt.loop(w).call_soon_threadsafe([&r, p, tasks, root_seed] {
        p->set_result(weft::spawn(registry_root(&r, tasks / 2, root_seed)));
      });
    }
    std::vector<weft::JoinHandle<long>> roots;
    for (auto& f : placed) roots.push_back(f.get());
    const long errors =
        rt.block_on([](std::vector<weft::JoinHandle<long>>* hs) -> weft::Task<long> {
          long n = 0;
          for (auto& h : *hs) n += co_await h;
          co_return n;
        }(&roots));
    done.store(true, std::memory_order_release);
    lister.join();
    INFO(outside_listings.load() << " listings from outside, " << r.listings.load()
                                 << " from tasks, " << errors << " tasks failed");
    CHECK(outside_bad.load() == 0);
    CHECK(r.bad_listings.load() == 0);
    CHECK(errors > 0);
    CHECK(rt.all_tasks().empty());
    CHECK(rt.metrics().live_tasks == 0);
    rt.shutdown();
  }
}

// ---------------------------------------------------------------------------
// A detached task (its JoinHandle dropped) that ends on the worker owning its
// registry shard publishes its outcome with a plain store (complete_task):
// once it is unlinked and holds the only reference, nobody else can reach
// it. Here another thread keeps listing the tasks and, through the
// references the listing gives it, adds done callbacks, so those references
// come and go around the completions. A completion that took
// the plain store while a reference was out could overwrite kHasWaiters (a
// callback that never runs: the wait below times out) or free a frame the
// lister still uses (ASan); one that never freed its frame leaves
// `destroyed` short.

namespace {

constexpr int kDetachedTasks = weft_test::build_size(300'000, 20'000);

struct DetachedRun {
  std::atomic<long> spawned{0};
  std::atomic<long> destroyed{0};  // frames freed (a Counted parameter destroyed)
  std::atomic<long> added{0};      // done callbacks the lister added
  std::atomic<long> fired{0};      // and that ran
};

// Counts the destruction of the frame that owns it (the coroutine's copy of
// the parameter; moved-from copies count nothing).
struct Counted {
  explicit Counted(DetachedRun* run) noexcept : r(run) {}
  Counted(Counted&& o) noexcept : r(std::exchange(o.r, nullptr)) {}
  Counted& operator=(Counted&&) = delete;
  ~Counted() {
    if (r) r->destroyed.fetch_add(1, std::memory_order_relaxed);
  }
  DetachedRun* r;
};

weft::Task<void> detached_child(Counted c, unsigned yields) {
  (void)c;
  for (unsigned i = 0; i < yields; ++i) co_await weft::yield_now();
}

weft::Task<void> detached_root(DetachedRun* r, int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < n; ++i) {
    r->spawned.fetch_add(1, std::memory_order_relaxed);
    (void)weft::spawn(detached_child(Counted(r), static_cast<unsigned>(rng() % 3)));
    if (rng() % 16 == 0) co_await weft::yield_now();
  }
}

// Polls `done` between yields, up to 60 s: false if it never held.
template <class Pred>
weft::Task<bool> poll_60s(Pred done) {
  auto until = std::chrono::steady_clock::now() + 60s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) co_return false;
    co_await weft::yield_now();
  }
  co_return true;
}

}  // namespace

TEST_CASE(
    "stress: detached tasks end without a locked instruction while another thread lists them and "
    "adds done callbacks",
    "[stress]") {
  const int tasks = weft_test::env_int("WEFT_STRESS_TASKS", kDetachedTasks);
  for (std::uint64_t seed : weft_test::stress_seeds(3)) {
    INFO(weft_test::replay(seed, tasks));
    DetachedRun r;
    {
      weft::Runtime rt(weft_test::workers(2));
      std::atomic<bool> stop{false};
      std::atomic<long> listings{0};
      std::thread lister([&, seed] {
        std::mt19937_64 rng(~seed);
        do {
          const std::vector<weft::TaskRef> all = rt.all_tasks();
          for (const weft::TaskRef& t : all) {
            const unsigned pick = static_cast<unsigned>(rng() % 8);
            // No cancels: the roots and the pollers are listed too.
            if (pick < 3) {
              r.added.fetch_add(1, std::memory_order_relaxed);
              t.add_done_callback(
                  [&r](const weft::TaskRef&) { r.fired.fetch_add(1, std::memory_order_relaxed); });
            }
          }
          listings.fetch_add(1, std::memory_order_relaxed);
        } while (!stop.load(std::memory_order_acquire));
      });
      while (listings.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      std::vector<weft::JoinHandle<void>> roots;
      for (unsigned w = 0; w < 2; ++w) {
        auto p = std::make_shared<weft::Promise<weft::JoinHandle<void>>>(&rt);
        auto f = p->get_future();
        rt.loop(w).call_soon_threadsafe([&r, p, tasks, seed, w] {
          p->set_result(weft::spawn(detached_root(&r, tasks / 2, seed * 2 + w)));
        });
        roots.push_back(f.get());
      }
      rt.block_on([](std::vector<weft::JoinHandle<void>>* hs) -> weft::Task<void> {
        for (auto& h : *hs) co_await h;
      }(&roots));
      // Every task ended (the registry lists none but the poller), then the
      // lister stops and drops its references.
      const bool all_ended = rt.block_on(poll_60s([] {
        const std::vector<weft::TaskRef> left = weft::all_tasks();
        return left.size() == 1 && left[0] == weft::current_task();
      }));
      stop.store(true, std::memory_order_release);
      lister.join();
      INFO(listings.load() << " listings, " << r.added.load() << " callbacks added");
      REQUIRE(all_ended);
      const long added = r.added.load();
      const bool all_fired = rt.block_on(
          poll_60s([&r, added] { return r.fired.load(std::memory_order_relaxed) == added; }));
      INFO("fired " << r.fired.load() << " of " << added);
      CHECK(all_fired);
      rt.shutdown();
    }
    CHECK(r.destroyed.load() == r.spawned.load());
  }
}
