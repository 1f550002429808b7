// Stress: TaskGroups nested three deep on 2 workers, with random failures,
// cancels (by siblings, by the driver, self-cancels) and timeout scopes
// around groups, over many seeds.
//
// Every spawned child gets an id. Its frame carries a guard that counts the
// frame's destruction, and the parent, after its group has joined (whatever
// the group raised), observes the child's outcome once: it must be done, and
// a value must be the one planned. At the end each id was observed exactly
// once and destroyed exactly once, all_tasks() is empty and the runtime
// counts no live task.
//
// Replay one seed with WEFT_STRESS_SEED=<seed> (and WEFT_STRESS_ROUNDS=<n>).
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <vector>
#include <weft/weft.hpp>

#include "../support/stress_seeds.hpp"

using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kSeeds = 6;
constexpr int kRounds = 150;
#else
constexpr int kSeeds = 12;
constexpr int kRounds = 300;
#endif
constexpr int kMaxIdsPerRound = 4 + 4 * 4 + 4 * 4 * 4 + 8;

struct Ctx {
  explicit Ctx(int ids) : observed(ids), destroyed(ids) {}
  std::vector<std::atomic<int>> observed, destroyed;
  std::atomic<int> next_id{0};
  std::atomic<int> wrong{0};
  std::atomic<int> groups_failed{0}, timeouts{0}, cancels{0}, values{0};
};

/// Counts the destruction of the frame that owns it.
struct FrameGuard {
  Ctx* c;
  int id;
  FrameGuard(Ctx* c_, int id_) : c(c_), id(id_) {}
  FrameGuard(FrameGuard&& o) noexcept : c(std::exchange(o.c, nullptr)), id(o.id) {}
  FrameGuard(const FrameGuard&) = delete;
  ~FrameGuard() {
    if (c) c->destroyed[static_cast<std::size_t>(id)].fetch_add(1, std::memory_order_relaxed);
  }
};

/// Handles of one group's children, shared with the children (siblings
/// cancel each other).
struct Siblings {
  std::mutex m;
  std::vector<weft::JoinHandle<int>> hs;
  void add(const weft::JoinHandle<int>& h) {
    std::lock_guard g(m);
    hs.push_back(h);
  }
  void cancel_one(std::uint64_t r) {
    std::lock_guard g(m);
    if (!hs.empty()) hs[r % hs.size()].cancel();
  }
};

weft::Task<int> leaf(FrameGuard, std::uint64_t seed, int planned, std::shared_ptr<Siblings> sib) {
  std::mt19937_64 rng(seed);
  switch (rng() % 6) {
    case 0:
      for (int i = static_cast<int>(rng() % 3); i > 0; --i) co_await weft::yield_now();
      co_return planned;
    case 1:
      co_await weft::sleep(std::chrono::microseconds(rng() % 1500));
      co_return planned;
    case 2:
      co_await weft::yield_now();
      throw std::runtime_error("leaf failed");
    case 3:
      sib->cancel_one(rng());
      co_await weft::yield_now();
      co_return planned;
    case 4:
      weft::current_task().cancel();
      co_await weft::yield_now();
      co_return planned;
    default:
      co_await weft::sleep(std::chrono::microseconds(500 + rng() % 3000));
      co_return planned;
  }
}

void observe(Ctx& c, const weft::JoinHandle<int>& h, int id, int planned) {
  c.observed[static_cast<std::size_t>(id)].fetch_add(1, std::memory_order_relaxed);
  if (!h.done()) {
    c.wrong.fetch_add(1);
    return;
  }
  try {
    if (h.result() != planned) c.wrong.fetch_add(1);
    c.values.fetch_add(1, std::memory_order_relaxed);
  } catch (const weft::CancelledError&) {
    c.cancels.fetch_add(1, std::memory_order_relaxed);
  } catch (...) {
  }
}

weft::Task<int> node(FrameGuard, Ctx* c, int depth, std::uint64_t seed, int planned);

struct Child {
  weft::JoinHandle<int> h;
  int id, planned;
};

weft::Task<void> group_body(Ctx* c, int depth, std::mt19937_64* rng, std::vector<Child>* kids) {
  auto sib = std::make_shared<Siblings>();
  // The children hold `sib`, which holds their handles: break that cycle
  // once the group is over, however it ends.
  struct BreakCycle {
    Siblings* s;
    ~BreakCycle() {
      std::lock_guard g(s->m);
      s->hs.clear();
    }
  } break_cycle{sib.get()};
  // Captures are plain pointers: g++ 12 mishandles a lambda temporary with
  // a non-trivial capture (a shared_ptr) in a co_await full-expression.
  std::shared_ptr<Siblings>* sibp = &sib;
  co_await weft::task_group([c, depth, rng, kids, sibp](weft::TaskGroup& tg) -> weft::Task<void> {
    const std::shared_ptr<Siblings>& siblings = *sibp;
    int n = 1 + static_cast<int>((*rng)() % 4);
    for (int i = 0; i < n; ++i) {
      int id = c->next_id.fetch_add(1);
      int planned = static_cast<int>((*rng)() % 1000);
      std::uint64_t s = (*rng)();
      bool nested = depth < 2 && (*rng)() % 3 == 0;
      try {
        auto h = nested ? tg.spawn(node(FrameGuard(c, id), c, depth + 1, s, planned))
                        : tg.spawn(leaf(FrameGuard(c, id), s, planned, siblings));
        siblings->add(h);
        kids->push_back({h, id, planned});
      } catch (const weft::RuntimeError&) {
        // Refused while the group aborts: the Task (and its guard) is gone.
        c->observed[static_cast<std::size_t>(id)].fetch_add(1);
      }
      if ((*rng)() % 2) co_await weft::yield_now();
    }
    if ((*rng)() % 20 == 0) throw std::runtime_error("body failed");
  });
}

weft::Task<int> node(FrameGuard, Ctx* c, int depth, std::uint64_t seed, int planned) {
  std::mt19937_64 rng(seed);
  std::vector<Child> kids;
  std::exception_ptr error;
  try {
    if (rng() % 3 == 0) {
      auto cm = weft::timeout(std::chrono::microseconds(200 + rng() % 2000));
      try {
        co_await cm.run(group_body(c, depth, &rng, &kids));
      } catch (const weft::TimeoutError&) {
        c->timeouts.fetch_add(1, std::memory_order_relaxed);
        error = std::current_exception();
      }
    } else {
      co_await group_body(c, depth, &rng, &kids);
    }
  } catch (const weft::ExceptionGroup&) {
    c->groups_failed.fetch_add(1, std::memory_order_relaxed);
    error = std::current_exception();
  } catch (...) {
    error = std::current_exception();
  }
  for (auto& k : kids) observe(*c, k.h, k.id, k.planned);
  if (error) std::rethrow_exception(error);
  co_return planned;
}

weft::Task<void> driver(Ctx* c, int rounds, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int r = 0; r < rounds; ++r) {
    int id = c->next_id.fetch_add(1);
    int planned = static_cast<int>(rng() % 1000);
    auto h = weft::spawn(node(FrameGuard(c, id), c, 0, rng(), planned));
    if (rng() % 5 == 0) {
      co_await weft::sleep(std::chrono::microseconds(rng() % 1000));
      h.cancel();
    }
    try {
      co_await h;
    } catch (...) {
    }
    observe(*c, h, id, planned);
  }
}

}  // namespace

TEST_CASE("stress: TaskGroups nested three deep with random failures, cancels and timeouts",
          "[stress]") {
  const int rounds = weft_test::env_int("WEFT_STRESS_ROUNDS", kRounds);
  for (std::uint64_t seed : weft_test::stress_seeds(kSeeds)) {
    INFO("seed " << seed << " (replay: WEFT_STRESS_SEED=" << seed
                 << " WEFT_STRESS_ROUNDS=" << rounds << ")");
    Ctx c(rounds * kMaxIdsPerRound);
    weft::RuntimeOptions o;
    o.workers = 2;
    o.exception_handler = [&c](const weft::ExceptionContext&) { c.wrong.fetch_add(1); };
    weft::Runtime rt(o);
    rt.block_on(driver(&c, rounds, seed));
    CHECK(rt.all_tasks().empty());
    CHECK(rt.metrics().live_tasks == 0);
    rt.shutdown();
    CHECK(c.wrong == 0);
    int ids = c.next_id.load();
    int bad_observed = 0, bad_destroyed = 0;
    for (int i = 0; i < ids; ++i) {
      if (c.observed[static_cast<std::size_t>(i)] != 1) ++bad_observed;
      if (c.destroyed[static_cast<std::size_t>(i)] != 1) {
        if (bad_destroyed < 3)
          std::fprintf(stderr, "id %d destroyed %d\n", i,
                       c.destroyed[static_cast<std::size_t>(i)].load());
        ++bad_destroyed;
      }
    }
    CHECK(bad_observed == 0);
    CHECK(bad_destroyed == 0);
    CHECK(c.groups_failed > 0);
    CHECK(c.cancels > 0);
    CHECK(c.values > 0);
  }
}
