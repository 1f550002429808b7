// Randomised stress of the sync primitives on 2 workers plus foreign threads,
// with random yields and random cancels of waiters, over many seeds.
//
// Invariants checked per seed and primitive:
//   Lock        mutual exclusion (a plain counter, never two holders), and the
//               lock ends free.
//   Semaphore   never more than N holders; all permits back at the end.
//   Event       no lost wake-up: every waiter not cancelled returns.
//   Condition   no lost wake-up: consumers waiting on a counter under a
//               Condition all finish, although some are cancelled.
//   Queue       no lost or duplicated item: sum(got) + sum(left) equals
//               sum(put successfully), with cancelled gets and puts.
//   Channel     the same, with foreign-thread try_send and cancelled recvs.
//   oneshot     every value sent across workers/threads arrives once.
//
// Replay one seed with WEFT_STRESS_SEED=<seed>.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>
#include <weft/weft.hpp>

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kSeeds = 3;
constexpr int kScale = 1;
#else
constexpr int kSeeds = 30;
constexpr int kScale = 40;
#endif

std::vector<std::uint64_t> seeds() {
  std::vector<std::uint64_t> s;
  if (const char* one = std::getenv("WEFT_STRESS_SEED")) {
    s.push_back(std::strtoull(one, nullptr, 10));
  } else {
    std::uint64_t base = std::random_device{}();
    for (int i = 0; i < kSeeds; ++i) s.push_back(base + static_cast<std::uint64_t>(i));
  }
  return s;
}

weft::RuntimeOptions two() {
  weft::RuntimeOptions o;
  o.workers = 2;
  return o;
}

// A small deterministic generator per task (seeded from the run's seed).
struct Rng {
  std::uint64_t s;
  std::uint32_t next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(s >> 33);
  }
  bool one_in(std::uint32_t n) { return next() % n == 0; }
};

template <class T>
weft::Task<void> cancel_some(std::vector<weft::JoinHandle<T>>* hs, Rng rng, int rounds,
                             std::size_t eligible = 0) {
  if (eligible == 0) eligible = hs->size();
  for (int i = 0; i < rounds; ++i) {
    co_await weft::yield_now();
    auto& h = (*hs)[rng.next() % eligible];
    if (rng.one_in(3)) h.cancel();
  }
}

template <class T>
weft::Task<int> join_count_cancelled(std::vector<weft::JoinHandle<T>>* hs) {
  int cancelled = 0;
  for (auto& h : *hs) {
    try {
      co_await h;
    } catch (const weft::CancelledError&) {
      ++cancelled;
    }
  }
  co_return cancelled;
}

// Decrements on scope exit, also when a cancel unwinds the critical section.
struct Inside {
  std::atomic<int>* n;
  ~Inside() { n->fetch_sub(1); }
};

void report(std::uint64_t seed) { UNSCOPED_INFO("replay: WEFT_STRESS_SEED=" << seed); }

// ---------------------------------------------------------------- Lock

struct LockShared {
  weft::Lock l;
  long counter = 0;  // plain on purpose: TSan sees any unordered access
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
};

weft::Task<void> lock_user(LockShared* s, Rng rng, int n) {
  for (int i = 0; i < n; ++i) {
    auto g = co_await s->l.lock();
    if (s->inside.fetch_add(1) != 0) s->overlaps.fetch_add(1);
    Inside in{&s->inside};
    ++s->counter;
    if (rng.one_in(4)) co_await weft::yield_now();
  }
}

weft::Task<bool> lock_scenario(std::uint64_t seed) {
  LockShared s;
  Rng rng{seed};
  std::vector<weft::JoinHandle<void>> hs;
  for (int i = 0; i < 6; ++i)
    hs.push_back(weft::spawn(lock_user(&s, Rng{rng.next()}, 300 * kScale)));
  co_await cancel_some(&hs, Rng{rng.next()}, 50);
  (void)co_await join_count_cancelled(&hs);
  co_return s.overlaps.load() == 0 && !s.l.locked();
}

// ---------------------------------------------------------------- Semaphore

struct SemShared {
  weft::Semaphore sem{2};
  std::atomic<int> inside{0};
  std::atomic<int> too_many{0};
};

weft::Task<void> sem_user(SemShared* s, Rng rng, int n) {
  for (int i = 0; i < n; ++i) {
    auto g = co_await s->sem.hold();
    if (s->inside.fetch_add(1) >= 2) s->too_many.fetch_add(1);
    Inside in{&s->inside};
    if (rng.one_in(3)) co_await weft::yield_now();
  }
}

weft::Task<bool> sem_scenario(std::uint64_t seed) {
  SemShared s;
  Rng rng{seed};
  std::vector<weft::JoinHandle<void>> hs;
  for (int i = 0; i < 6; ++i)
    hs.push_back(weft::spawn(sem_user(&s, Rng{rng.next()}, 300 * kScale)));
  co_await cancel_some(&hs, Rng{rng.next()}, 50);
  (void)co_await join_count_cancelled(&hs);
  co_return s.too_many.load() == 0 && s.sem.value() == 2;
}

// ---------------------------------------------------------------- Event

weft::Task<void> event_waiter(weft::Event* e) { co_await e->wait(); }

// A foreign thread sets the event while waiters arrive and some are cancelled.
bool event_scenario(weft::Runtime& rt, std::uint64_t seed) {
  weft::Event e;
  Rng rng{seed};
  std::vector<weft::JoinHandle<void>> hs;
  for (int i = 0; i < 100 * kScale; ++i) hs.push_back(rt.spawn(event_waiter(&e)));
  std::thread setter([&e] { e.set(); });
  auto finish = [](std::vector<weft::JoinHandle<void>>* h, Rng r) -> weft::Task<int> {
    co_await cancel_some(h, r, 20);
    co_return co_await join_count_cancelled(h);
  };
  (void)rt.block_on(finish(&hs, Rng{rng.next()}));  // hangs if a wake-up is lost
  setter.join();
  return true;
}

// ---------------------------------------------------------------- Condition

struct CondShared {
  weft::Condition c;
  int stock = 0;  // under c's lock
  int taken = 0;  // under c's lock
  bool closed = false;
};

weft::Task<void> cond_consumer(CondShared* s) {
  auto g = co_await s->c.lock();
  for (;;) {
    co_await s->c.wait_for([s] { return s->stock > 0 || s->closed; });
    if (s->stock == 0) co_return;
    --s->stock;
    ++s->taken;
  }
}

// N items, one notify(1) each, while consumers are cancelled at random: if a
// notified-then-cancelled consumer dropped its wake-up, items would stay in
// stock with every survivor asleep, and the final wait below would hang.
weft::Task<bool> cond_scenario(std::uint64_t seed) {
  CondShared s;
  Rng rng{seed};
  const int n = 400 * kScale;
  std::vector<weft::JoinHandle<void>> hs;
  for (int i = 0; i < 6; ++i) hs.push_back(weft::spawn(cond_consumer(&s)));
  for (int i = 0; i < n; ++i) {
    {
      auto g = co_await s.c.lock();
      ++s.stock;
      s.c.notify(1);
    }
    if (rng.one_in(50)) hs[rng.next() % 3].cancel();  // consumers 3-5 survive
    if (rng.one_in(3)) co_await weft::yield_now();
  }
  for (;;) {
    {
      auto g = co_await s.c.lock();
      if (s.taken == n) {
        s.closed = true;
        s.c.notify_all();
        break;
      }
    }
    co_await weft::yield_now();
  }
  (void)co_await join_count_cancelled(&hs);
  co_return s.stock == 0;
}

// ---------------------------------------------------------------- Queue

struct QueueShared {
  weft::Queue<long> q{8};
  std::atomic<long> put_sum{0}, got_sum{0};
};

weft::Task<void> q_producer(QueueShared* s, Rng rng, int n) {
  for (int i = 1; i <= n; ++i) {
    co_await s->q.put(i);
    s->put_sum.fetch_add(i);
    if (rng.one_in(5)) co_await weft::yield_now();
  }
}
weft::Task<void> q_consumer(QueueShared* s, Rng rng) {
  for (;;) {
    long v = co_await s->q.get();
    if (v < 0) co_return;
    s->got_sum.fetch_add(v);
    if (rng.one_in(5)) co_await weft::yield_now();
  }
}

bool queue_scenario(weft::Runtime& rt, std::uint64_t seed) {
  QueueShared s;
  Rng rng{seed};
  std::vector<weft::JoinHandle<void>> producers, consumers;
  for (int i = 0; i < 3; ++i)
    producers.push_back(rt.spawn(q_producer(&s, Rng{rng.next()}, 300 * kScale)));
  for (int i = 0; i < 3; ++i) consumers.push_back(rt.spawn(q_consumer(&s, Rng{rng.next()})));
  std::thread foreign([&s] {
    for (long i = 1; i <= 200; ++i) {
      for (;;) {
        try {
          s.q.put_nowait(i);
          s.put_sum.fetch_add(i);
          break;
        } catch (const weft::QueueFull&) {
          std::this_thread::yield();
        }
      }
    }
  });
  auto drive = [](QueueShared*, std::vector<weft::JoinHandle<void>>* p,
                  std::vector<weft::JoinHandle<void>>* c, Rng r) -> weft::Task<void> {
    co_await cancel_some(p, r, 30);
    co_await cancel_some(c, r, 30, 2);  // one consumer survives
    (void)co_await join_count_cancelled(p);
  };
  rt.block_on(drive(&s, &producers, &consumers, Rng{rng.next()}));
  foreign.join();
  // Stop the consumers that are still alive, then count what is left.
  auto stop = [](QueueShared* sh, std::vector<weft::JoinHandle<void>>* c) -> weft::Task<void> {
    for (auto& h : *c) {
      if (!h.done()) h.cancel();
      try {
        co_await h;
      } catch (const weft::CancelledError&) {
      }
    }
    while (!sh->q.empty()) sh->got_sum.fetch_add(sh->q.get_nowait());
  };
  rt.block_on(stop(&s, &consumers));
  return s.got_sum.load() == s.put_sum.load();
}

// ---------------------------------------------------------------- Channel

weft::Task<void> ch_producer(weft::Channel<long> ch, std::atomic<long>* sent, int n) {
  for (long i = 1; i <= n; ++i) {
    co_await ch.send(i);
    sent->fetch_add(i);
  }
}
weft::Task<void> ch_consumer(weft::Channel<long> ch, std::atomic<long>* got) {
  while (std::optional<long> v = co_await ch.recv()) got->fetch_add(*v);
}

bool channel_scenario(weft::Runtime& rt, std::uint64_t seed, bool bounded) {
  weft::Channel<long> ch = bounded ? weft::Channel<long>(4) : weft::Channel<long>::unbounded();
  std::atomic<long> sent{0}, got{0};
  Rng rng{seed};
  std::vector<weft::JoinHandle<void>> producers, consumers;
  for (int i = 0; i < 3; ++i) producers.push_back(rt.spawn(ch_producer(ch, &sent, 300 * kScale)));
  for (int i = 0; i < 3; ++i) consumers.push_back(rt.spawn(ch_consumer(ch, &got)));
  std::thread foreign([ch, &sent]() mutable {
    for (long i = 1; i <= 200; ++i) {
      while (!ch.try_send(i)) std::this_thread::yield();
      sent.fetch_add(i);
    }
  });
  auto drive = [](std::vector<weft::JoinHandle<void>>* p, std::vector<weft::JoinHandle<void>>* c,
                  Rng r) -> weft::Task<void> {
    co_await cancel_some(c, r, 40, 2);  // cancelled receivers must not lose items
    co_await cancel_some(p, r, 10);
    (void)co_await join_count_cancelled(p);
  };
  rt.block_on(drive(&producers, &consumers, Rng{rng.next()}));
  foreign.join();
  ch.close();
  auto drain = [](weft::Channel<long> c, std::vector<weft::JoinHandle<void>>* cs,
                  std::atomic<long>* g) -> weft::Task<void> {
    (void)co_await join_count_cancelled(cs);
    while (std::optional<long> v = co_await c.recv()) g->fetch_add(*v);
  };
  rt.block_on(drain(ch, &consumers, &got));
  return got.load() == sent.load();
}

// ---------------------------------------------------------------- oneshot

weft::Task<long> oneshot_scenario(std::uint64_t seed) {
  Rng rng{seed};
  long sum = 0;
  auto echo = [](weft::OneshotReceiver<long> rx, weft::OneshotSender<long> tx) -> weft::Task<void> {
    long v = co_await rx;
    std::move(tx).send(v);
  };
  for (long i = 0; i < 300 * kScale; ++i) {
    auto [tx1, rx1] = weft::oneshot<long>();
    auto [tx2, rx2] = weft::oneshot<long>();
    auto h = weft::spawn(echo(std::move(rx1), std::move(tx2)));
    if (rng.one_in(2)) co_await weft::yield_now();
    std::move(tx1).send(i);
    sum += co_await rx2;
    co_await h;
  }
  co_return sum;
}

}  // namespace

TEST_CASE("stress: sync primitives keep their invariants across 2 workers and foreign threads",
          "[stress][sync]") {
  for (std::uint64_t seed : seeds()) {
    INFO("seed " << seed << " (replay: WEFT_STRESS_SEED=" << seed << ")");
    weft::Runtime rt(two());
    bool ok = rt.block_on(lock_scenario(seed));
    CHECK(ok);
    ok = rt.block_on(sem_scenario(seed));
    CHECK(ok);
    CHECK(event_scenario(rt, seed));
    ok = rt.block_on(cond_scenario(seed));
    CHECK(ok);
    CHECK(queue_scenario(rt, seed));
    CHECK(channel_scenario(rt, seed, true));
    CHECK(channel_scenario(rt, seed, false));
    long n = 300 * kScale;
    CHECK(rt.block_on(oneshot_scenario(seed)) == n * (n - 1) / 2);
    if (!ok) report(seed);
    rt.shutdown();
  }
}
