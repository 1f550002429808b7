// Randomised stress of the sync primitives on 2 workers plus foreign threads,
// with random yields and random cancels of waiters, over many seeds.
//
// Invariants checked per seed and primitive:
//   Lock        mutual exclusion (a plain counter, never two holders), and the
//               lock ends free.
//   Semaphore   never more than N holders; all permits back at the end. With
//               permits released by a foreign thread: every release is either
//               taken by exactly one acquire or still free at the end.
//   BoundedSemaphore  never more holders than the bound; a release beyond the
//               bound (from a thread outside the runtime) raises ValueError
//               and changes nothing; all permits back at the end.
//   Barrier     parties on both workers over many rounds: each round's
//               arrival indices are a permutation of 0..parties-1, with
//               cancelled waiters (they leave the cycle and arrive again),
//               reset() (BrokenBarrierError, the round is tried again) and a
//               final abort() from a foreign thread that releases every party.
//   Event       no lost wake-up: every waiter not cancelled returns.
//   Condition   no lost wake-up: consumers waiting on a counter under a
//               Condition all finish, although some are cancelled.
//   Queue, LifoQueue, PriorityQueue
//               no lost or duplicated item: sum(got) + sum(left) equals
//               sum(put successfully), with cancelled gets and puts. For
//               PriorityQueue also: one consumer draining a quiescent queue
//               (filled from both workers and a foreign thread) gets the
//               items smallest first.
//   Channel     the same, with cancelled recvs and foreign threads calling
//               try_send, blocking_send and blocking_recv.
//   oneshot     every value sent across workers/threads arrives once; sent
//               from a foreign thread to receivers on both workers, some
//               cancelled (they await again) and some senders dropped unsent
//               (ChannelClosed).
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
// Many short seeds rather than a few long ones: the interleavings differ per
// seed. 200 seeds took 21-37 s in the tsan build on the 2-core VM, depending
// on what else ran (100 took 19 s under load), leaving room under a minute.
constexpr int kSeeds = 200;
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

// ---------------------------------------------------------------- BoundedSemaphore

constexpr std::int64_t kBound = 2;

struct BoundedShared {
  weft::BoundedSemaphore sem{kBound};
  std::atomic<int> inside{0};
  std::atomic<int> too_many{0};
};

weft::Task<void> bounded_user(BoundedShared* s, Rng rng, int n) {
  for (int i = 0; i < n; ++i) {
    if (rng.one_in(2)) {
      auto g = co_await s->sem.hold();
      if (s->inside.fetch_add(1) >= kBound) s->too_many.fetch_add(1);
      Inside in{&s->inside};
      if (rng.one_in(3)) co_await weft::yield_now();
    } else {
      co_await s->sem.acquire();  // the plain pair: release() by hand
      if (s->inside.fetch_add(1) >= kBound) s->too_many.fetch_add(1);
      s->inside.fetch_sub(1);
      s->sem.release();
      if (rng.one_in(3)) co_await weft::yield_now();
    }
  }
}

// Phases of users on both workers with cancels; between phases, with every
// permit back, this (foreign) thread releases once more: that must raise
// ValueError and leave the value, locked() and the next phase unchanged.
bool bounded_sem_scenario(weft::Runtime& rt, std::uint64_t seed) {
  BoundedShared s;
  Rng rng{seed};
  bool ok = true;
  for (int phase = 0; phase < 4; ++phase) {
    auto run_phase = [](BoundedShared* sh, Rng r) -> weft::Task<void> {
      std::vector<weft::JoinHandle<void>> hs;
      for (int i = 0; i < 6; ++i)
        hs.push_back(weft::spawn(bounded_user(sh, Rng{r.next()}, 80 * kScale)));
      co_await cancel_some(&hs, Rng{r.next()}, 20);
      (void)co_await join_count_cancelled(&hs);
    };
    rt.block_on(run_phase(&s, Rng{rng.next()}));
    ok = ok && s.sem.value() == kBound && !s.sem.locked();
    bool raised = false;
    try {
      s.sem.release();
    } catch (const weft::ValueError&) {
      raised = true;
    }
    ok = ok && raised && s.sem.value() == kBound && !s.sem.locked();
  }
  return ok && s.too_many.load() == 0;
}

// ---------------------------------------------------------------- Semaphore, foreign release

struct SemForeign {
  weft::Semaphore sem{0};
  std::atomic<long> acquired{0};
  std::atomic<bool> released_all{false};
};

// Takes permits until cancelled.
weft::Task<void> sem_taker(SemForeign* s, Rng rng) {
  for (;;) {
    co_await s->sem.acquire();
    s->acquired.fetch_add(1);
    if (rng.one_in(4)) co_await weft::yield_now();
  }
}

// Until the releasing thread is done, cancels takers at random (waiting, or
// just handed a permit) and replaces each with a new one.
weft::Task<void> sem_taker_churn(SemForeign* s, std::vector<weft::JoinHandle<void>>* live,
                                 std::vector<weft::JoinHandle<void>>* retired, Rng rng) {
  while (!s->released_all.load()) {
    co_await weft::yield_now();
    if (!rng.one_in(4)) continue;
    auto& h = (*live)[rng.next() % live->size()];
    h.cancel();
    retired->push_back(std::move(h));
    h = weft::spawn(sem_taker(s, Rng{rng.next()}));
  }
}

// A thread outside the runtime releases every permit, one at a time while
// the takers on both workers keep the value low, so most releases hand the
// permit to a waiter. A cancelled waiter never uses a permit up, so once
// everyone has stopped, permits acquired + permits still free == released.
bool sem_foreign_scenario(weft::Runtime& rt, std::uint64_t seed) {
  SemForeign s;
  Rng rng{seed};
  const long released = 100 * kScale;
  std::vector<weft::JoinHandle<void>> live, retired;
  for (int i = 0; i < 4; ++i) live.push_back(rt.spawn(sem_taker(&s, Rng{rng.next()})));
  std::thread foreign([&s, released] {
    for (long i = 0; i < released; ++i) {
      while (s.sem.value() > 1) std::this_thread::yield();  // pacing only
      s.sem.release();
    }
    s.released_all.store(true);
  });
  rt.block_on(sem_taker_churn(&s, &live, &retired, Rng{rng.next()}));
  foreign.join();
  auto stop = [](std::vector<weft::JoinHandle<void>>* a,
                 std::vector<weft::JoinHandle<void>>* b) -> weft::Task<void> {
    for (auto& h : *a) h.cancel();
    (void)co_await join_count_cancelled(a);
    (void)co_await join_count_cancelled(b);
  };
  rt.block_on(stop(&live, &retired));
  return s.acquired.load() + s.sem.value() == released;
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

// ---------------------------------------------------------------- Barrier

// The controller is one of the parties, so no round trips without it: the
// parties cannot run ahead of its cancels and resets, and when it stops the
// others are left waiting for the abort.
constexpr std::size_t kParties = 4;  // kParties - 1 party tasks + the controller

struct BarrierShared {
  weft::Barrier b{kParties};
  // Per round, bit i: some party got arrival index i in that round.
  std::vector<std::atomic<std::uint32_t>> seen;
  std::atomic<int> started{0};
  std::atomic<int> bad{0};  // an index out of range or seen twice in a round
  explicit BarrierShared(std::size_t rounds) : seen(rounds) {}
  void record(std::size_t round, std::size_t idx) {
    if (idx >= kParties || round >= seen.size()) {
      bad.fetch_add(1);
    } else if (std::uint32_t bit = 1u << idx; seen[round].fetch_or(bit) & bit) {
      bad.fetch_add(1);
    }
  }
};

// A cancel (at the wait or at a yield) or a reset's BrokenBarrierError makes
// it try the same round again; an abort ends it.
weft::Task<void> barrier_party(BarrierShared* s, Rng rng) {
  s->started.fetch_add(1);
  std::size_t round = 0;
  for (;;) {
    try {
      if (rng.one_in(3)) co_await weft::yield_now();
      s->record(round, co_await s->b.wait());
      ++round;
    } catch (const weft::BrokenBarrierError&) {
      if (s->b.broken()) co_return;  // aborted: current and future waiters
    } catch (const weft::CancelledError&) {
    }
  }
}

// Waits `rounds` rounds with the parties; between its arrivals it yields,
// cancels parties and resets the barrier at random.
weft::Task<void> barrier_controller(BarrierShared* s, std::vector<weft::JoinHandle<void>>* hs,
                                    Rng rng, std::size_t rounds) {
  // A party cancelled before its first step would run none of its body and
  // leave the others waiting for ever: cancel only started ones.
  while (s->started.load() < static_cast<int>(hs->size())) co_await weft::yield_now();
  for (std::size_t round = 0; round < rounds;) {
    for (std::uint32_t steps = rng.next() % 4; steps > 0; --steps) {
      co_await weft::yield_now();
      if (rng.one_in(3)) (*hs)[rng.next() % hs->size()].cancel();
      if (rng.one_in(40)) s->b.reset();  // only we reset: we are never the one broken
    }
    try {
      s->record(round, co_await s->b.wait());
      ++round;
    } catch (const weft::BrokenBarrierError&) {
      s->bad.fetch_add(1);
      co_return;
    }
  }
}

// Parties on both workers with the controller; then this (foreign) thread
// aborts the barrier, which must release the parties waiting for the
// controller's next arrival.
bool barrier_scenario(weft::Runtime& rt, std::uint64_t seed) {
  Rng rng{seed};
  const std::size_t rounds = 40 * kScale;
  BarrierShared s(rounds + 1);  // + the round the abort interrupts
  std::vector<weft::JoinHandle<void>> hs;
  for (std::size_t i = 0; i + 1 < kParties; ++i)
    hs.push_back(rt.spawn(barrier_party(&s, Rng{rng.next()})));
  rt.block_on(barrier_controller(&s, &hs, Rng{rng.next()}, rounds));
  s.b.abort();
  (void)rt.block_on(join_count_cancelled(&hs));  // hangs if abort left a party waiting
  // Every round the controller saw through is a permutation of
  // 0..kParties-1; the last one, without the controller, never tripped.
  const std::uint32_t full = (1u << kParties) - 1;
  bool ok = s.bad.load() == 0 && s.seen[rounds].load() == 0;
  for (std::size_t r = 0; r < rounds; ++r) ok = ok && s.seen[r].load() == full;
  // Future waiters of an aborted barrier raise too.
  auto late = [](weft::Barrier* b) -> weft::Task<bool> {
    try {
      (void)co_await b->wait();
    } catch (const weft::BrokenBarrierError&) {
      co_return true;
    }
    co_return false;
  };
  return ok && s.b.broken() && rt.block_on(late(&s.b));
}

// ---------------------------------------------------------------- Queue

// Q is Queue<long>, LifoQueue<long> or PriorityQueue<long>.
template <class Q>
struct QueueShared {
  Q q{8};
  std::atomic<long> put_sum{0}, got_sum{0};
};

template <class Q>
weft::Task<void> q_producer(QueueShared<Q>* s, Rng rng, int n) {
  for (int i = 1; i <= n; ++i) {
    co_await s->q.put(i);
    s->put_sum.fetch_add(i);
    if (rng.one_in(5)) co_await weft::yield_now();
  }
}
template <class Q>
weft::Task<void> q_consumer(QueueShared<Q>* s, Rng rng) {
  for (;;) {
    long v = co_await s->q.get();
    s->got_sum.fetch_add(v);
    if (rng.one_in(5)) co_await weft::yield_now();
  }
}

// True if no item was lost or duplicated. `ordered` (PriorityQueue): the
// items left at the end, drained by one consumer, come smallest first.
template <class Q>
bool queue_scenario(weft::Runtime& rt, std::uint64_t seed, bool ordered = false) {
  QueueShared<Q> s;
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
  auto drive = [](std::vector<weft::JoinHandle<void>>* p, std::vector<weft::JoinHandle<void>>* c,
                  Rng r) -> weft::Task<void> {
    co_await cancel_some(p, r, 30);
    co_await cancel_some(c, r, 30, 2);  // one consumer survives
    (void)co_await join_count_cancelled(p);
  };
  rt.block_on(drive(&producers, &consumers, Rng{rng.next()}));
  foreign.join();
  // Stop the consumers that are still alive, then drain what is left with
  // one consumer: the queue is quiescent now.
  auto stop = [](QueueShared<Q>* sh, std::vector<weft::JoinHandle<void>>* c) -> weft::Task<bool> {
    for (auto& h : *c) {
      if (!h.done()) h.cancel();
      try {
        co_await h;
      } catch (const weft::CancelledError&) {
      }
    }
    bool sorted = true;
    long prev = 0;
    while (!sh->q.empty()) {
      long v = co_await sh->q.get();
      sorted = sorted && v >= prev;
      prev = v;
      sh->got_sum.fetch_add(v);
    }
    co_return sorted;
  };
  bool sorted = rt.block_on(stop(&s, &consumers));
  if (ordered && !sorted) return false;
  return s.got_sum.load() == s.put_sum.load();
}

// PriorityQueue order: producers on both workers and a foreign thread fill an
// unbounded queue with random priorities (duplicates included); once they
// are done one consumer drains it and must get every item, smallest first.
weft::Task<void> pq_filler(weft::PriorityQueue<long>* q, std::atomic<long>* sum,
                           std::atomic<long>* count, Rng rng, int n) {
  for (int i = 0; i < n; ++i) {
    long v = static_cast<long>(rng.next() % 1000);
    co_await q->put(v);
    sum->fetch_add(v);
    count->fetch_add(1);
    if (rng.one_in(4)) co_await weft::yield_now();
  }
}

bool pq_order_scenario(weft::Runtime& rt, std::uint64_t seed) {
  weft::PriorityQueue<long> q;
  std::atomic<long> put_sum{0}, put_count{0};
  Rng rng{seed};
  std::vector<weft::JoinHandle<void>> fillers;
  for (int i = 0; i < 3; ++i)
    fillers.push_back(rt.spawn(pq_filler(&q, &put_sum, &put_count, Rng{rng.next()}, 50 * kScale)));
  std::thread foreign([&q, &put_sum, &put_count, r = Rng{rng.next()}]() mutable {
    for (int i = 0; i < 200; ++i) {
      long v = static_cast<long>(r.next() % 1000);
      q.put_nowait(v);
      put_sum.fetch_add(v);
      put_count.fetch_add(1);
    }
  });
  auto fill = [](std::vector<weft::JoinHandle<void>>* f, Rng r) -> weft::Task<void> {
    co_await cancel_some(f, r, 10);  // a cancelled filler stops; its puts so far count
    (void)co_await join_count_cancelled(f);
  };
  rt.block_on(fill(&fillers, Rng{rng.next()}));
  foreign.join();
  struct Drained {
    long sum = 0, count = 0;
    bool sorted = true;
  };
  auto drain = [](weft::PriorityQueue<long>* pq) -> weft::Task<Drained> {
    Drained d;
    long prev = -1;
    while (!pq->empty()) {
      long v = co_await pq->get();
      d.sorted = d.sorted && v >= prev;
      prev = v;
      d.sum += v;
      ++d.count;
    }
    co_return d;
  };
  Drained d = rt.block_on(drain(&q));
  return d.sorted && d.sum == put_sum.load() && d.count == put_count.load();
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
  // Foreign threads: one sends, half with try_send and half with
  // blocking_send (queued with the waiting tasks), one receives with
  // blocking_recv until the end.
  std::thread foreign([ch, &sent]() mutable {
    for (long i = 1; i <= 200; ++i) {
      if (i % 2 == 0) {
        ch.blocking_send(i);
      } else {
        while (!ch.try_send(i)) std::this_thread::yield();
      }
      sent.fetch_add(i);
    }
  });
  std::thread foreign_rx([ch, &got]() mutable {
    while (std::optional<long> v = ch.blocking_recv()) got.fetch_add(*v);
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
  foreign_rx.join();
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

// A thread outside the runtime sends on oneshots whose receivers wait on both
// workers; some receivers are cancelled (they catch it and await again) and
// some senders are dropped unsent (ChannelClosed). Each receiver that started
// gets its own value once, or ChannelClosed if its sender was dropped; one
// cancelled before its first step ends cancelled without running.
constexpr int kGot = 1, kClosed = 2, kWrong = 3;

weft::Task<void> oneshot_receiver(weft::OneshotReceiver<long> rx, long expect,
                                  std::atomic<int>* outcome, std::atomic<bool>* started) {
  started->store(true);
  for (;;) {
    try {
      long v = co_await rx;
      outcome->store(v == expect ? kGot : kWrong);
      co_return;
    } catch (const weft::ChannelClosed&) {
      outcome->store(kClosed);
      co_return;
    } catch (const weft::CancelledError&) {
    }
  }
}

bool oneshot_foreign_scenario(weft::Runtime& rt, std::uint64_t seed) {
  Rng rng{seed};
  const int n = 100 * kScale;
  std::vector<weft::OneshotSender<long>> senders;
  std::vector<std::atomic<int>> outcome(static_cast<std::size_t>(n));
  std::vector<std::atomic<bool>> started(static_cast<std::size_t>(n));
  std::vector<bool> dropped;  // decided here, before the sender thread starts
  std::vector<weft::JoinHandle<void>> hs;
  for (int i = 0; i < n; ++i) {
    auto [tx, rx] = weft::oneshot<long>();
    senders.push_back(std::move(tx));
    dropped.push_back(rng.one_in(10));
    auto k = static_cast<std::size_t>(i);
    hs.push_back(rt.spawn(oneshot_receiver(std::move(rx), i, &outcome[k], &started[k])));
  }
  std::thread foreign([&senders, &dropped, r = Rng{rng.next()}]() mutable {
    for (std::size_t i = 0; i < senders.size(); ++i) {
      if (dropped[i]) {
        weft::OneshotSender<long> gone = std::move(senders[i]);
      } else {
        std::move(senders[i]).send(static_cast<long>(i));
      }
      if (r.one_in(8)) std::this_thread::yield();
    }
  });
  auto drive = [](std::vector<weft::JoinHandle<void>>* h, Rng r) -> weft::Task<void> {
    co_await cancel_some(h, r, 200);
    (void)co_await join_count_cancelled(h);
  };
  rt.block_on(drive(&hs, Rng{rng.next()}));  // hangs if a value is lost
  foreign.join();
  // A receiver that started has its outcome, whether it then ended normally
  // or cancelled (a cancel that came after the value, with no suspension
  // point left, ends the task cancelled, as in asyncio).
  bool ok = true;
  for (std::size_t i = 0; i < outcome.size(); ++i) {
    if (started[i].load()) {
      ok = ok && outcome[i].load() == (dropped[i] ? kClosed : kGot);
    } else {
      ok = ok && hs[i].cancelled();
    }
  }
  return ok;
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
    CHECK(bounded_sem_scenario(rt, seed));
    CHECK(sem_foreign_scenario(rt, seed));
    CHECK(event_scenario(rt, seed));
    ok = rt.block_on(cond_scenario(seed));
    CHECK(ok);
    CHECK(barrier_scenario(rt, seed));
    CHECK(queue_scenario<weft::Queue<long>>(rt, seed));
    CHECK(queue_scenario<weft::LifoQueue<long>>(rt, seed));
    CHECK(queue_scenario<weft::PriorityQueue<long>>(rt, seed, /*ordered=*/true));
    CHECK(pq_order_scenario(rt, seed));
    CHECK(channel_scenario(rt, seed, true));
    CHECK(channel_scenario(rt, seed, false));
    long n = 300 * kScale;
    CHECK(rt.block_on(oneshot_scenario(seed)) == n * (n - 1) / 2);
    CHECK(oneshot_foreign_scenario(rt, seed));
    if (!ok) report(seed);
    rt.shutdown();
  }
}
