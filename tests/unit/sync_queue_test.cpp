// ASYNCIO_SEMANTICS §P: Queue, LifoQueue, PriorityQueue; and weft's Channel
// and oneshot (Tokio's mpsc/oneshot). Ordering tests use one worker with the
// LIFO slot off (see sync_lock_test.cpp).
//
// Skipped: P106 (part) test_cancelled_put_silence_value_error_exception is
// about a Python-internal ValueError from list.remove; weft's intrusive list
// has no such failure mode.
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../support/test_helpers.hpp"

using weft_test::workers;

namespace {
weft::RuntimeOptions one_fifo() {
  weft::RuntimeOptions o = workers(1);
  o.lifo_slot = false;
  return o;
}
weft::Task<void> settle(int n = 8) {
  for (int i = 0; i < n; ++i) co_await weft::yield_now();
}
template <class Q>
weft::Task<std::vector<int>> drain_order(Q* q) {
  q->put_nowait(1);
  q->put_nowait(3);
  q->put_nowait(2);
  std::vector<int> out;
  for (int i = 0; i < 3; ++i) out.push_back(co_await q->get());
  co_return out;
}
weft::Task<int> getter(weft::Queue<int>* q) { co_return co_await q->get(); }
weft::Task<void> putter(weft::Queue<int>* q, int v) { co_await q->put(v); }
}  // namespace

TEST_CASE("P100 put order 1 3 2: Queue gets 1 3 2, LifoQueue 2 3 1, PriorityQueue 1 2 3",
          "[sync][queue]") {
  weft::Queue<int> q;
  weft::LifoQueue<int> l;
  weft::PriorityQueue<int> p;
  CHECK(weft::run(drain_order(&q), one_fifo()) == std::vector<int>{1, 3, 2});
  CHECK(weft::run(drain_order(&l), one_fifo()) == std::vector<int>{2, 3, 1});
  CHECK(weft::run(drain_order(&p), one_fifo()) == std::vector<int>{1, 2, 3});
}

TEST_CASE("P101 maxsize 2 blocks the third put until a get, maxsize <= 0 is unbounded",
          "[sync][queue]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    weft::Queue<int> q(2);
    co_await q.put(1);
    co_await q.put(2);
    out.push_back(q.full());
    auto h = weft::spawn(putter(&q, 3));
    co_await settle();
    out.push_back(h.done());  // 0: blocked
    out.push_back(co_await q.get());
    co_await h;
    out.push_back(static_cast<int>(q.qsize()));
    weft::Queue<int> u(0);
    for (int i = 0; i < 1000; ++i) u.put_nowait(i);
    out.push_back(u.full());
    co_return out;
  };
  CHECK(weft::run(main(), one_fifo()) == std::vector<int>{1, 0, 1, 2, 0});
}

TEST_CASE("P102 put_nowait on a full queue throws QueueFull, get_nowait on an empty one QueueEmpty",
          "[sync][queue]") {
  weft::Queue<int> q(1);
  CHECK_THROWS_AS(q.get_nowait(), weft::QueueEmpty);
  q.put_nowait(1);
  CHECK_THROWS_AS(q.put_nowait(2), weft::QueueFull);
  CHECK(q.get_nowait() == 1);
  static_assert(std::is_base_of_v<weft::Error, weft::QueueFull>);
  static_assert(std::is_base_of_v<weft::Error, weft::QueueEmpty>);
  static_assert(std::is_base_of_v<weft::Error, weft::QueueShutDown>);
  static_assert(std::is_base_of_v<weft::Error, weft::BrokenBarrierError>);
}

TEST_CASE("P103 join waits for task_done of every put item, an extra task_done is ValueError",
          "[sync][queue]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    weft::Queue<int> q;
    co_await q.join();  // nothing unfinished: at once
    q.put_nowait(1);
    q.put_nowait(2);
    auto joiner = [](weft::Queue<int>* qq) -> weft::Task<void> { co_await qq->join(); };
    auto j = weft::spawn(joiner(&q));
    (void)co_await q.get();
    (void)co_await q.get();
    co_await settle();
    out.push_back(j.done());  // 0: gets alone do not release join
    q.task_done();
    co_await settle();
    out.push_back(j.done());  // 0
    q.task_done();
    co_await j;
    out.push_back(1);
    try {
      q.task_done();
    } catch (const weft::ValueError&) {
      out.push_back(2);
    }
    co_return out;
  };
  CHECK(weft::run(main(), one_fifo()) == std::vector<int>{0, 0, 1, 2});
}

TEST_CASE("P104 each put wakes one getter FIFO, a woken getter reserves nothing", "[sync][queue]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    weft::Queue<int> q;
    auto g1 = weft::spawn(getter(&q));
    auto g2 = weft::spawn(getter(&q));
    co_await settle();
    q.put_nowait(10);               // wakes g1 ...
    out.push_back(q.get_nowait());  // ... but we take the item first
    co_await settle();
    out.push_back(g1.done() + g2.done());  // 0: both still wait
    q.put_nowait(20);
    q.put_nowait(30);
    out.push_back(co_await g1);
    out.push_back(co_await g2);
    co_return out;
  };
  // g1 found the queue empty again and queued behind g2 (asyncio re-appends).
  CHECK(weft::run(main(), one_fifo()) == std::vector<int>{10, 0, 30, 20});
}

TEST_CASE("P104 each get wakes one blocked putter FIFO", "[sync][queue]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    weft::Queue<int> q(1);
    q.put_nowait(0);
    auto p1 = weft::spawn(putter(&q, 1));
    auto p2 = weft::spawn(putter(&q, 2));
    co_await settle();
    for (int i = 0; i < 3; ++i) out.push_back(co_await q.get());
    co_await p1;
    co_await p2;
    co_return out;
  };
  CHECK(weft::run(main(), one_fifo()) == std::vector<int>{0, 1, 2});
}

TEST_CASE("P105 cancelling a blocked get never loses an item", "[sync][queue]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    weft::Queue<int> q;
    auto r = weft::spawn(getter(&q));
    auto r2 = weft::spawn(getter(&q));
    co_await settle();
    r2.cancel();      // queued: removed
    q.put_nowait(1);  // wakes r ...
    q.put_nowait(2);
    r.cancel();  // ... cancelled before it runs
    try {
      (void)co_await r;
    } catch (const weft::CancelledError&) {
      out.push_back(-1);
    }
    try {
      (void)co_await r2;
    } catch (const weft::CancelledError&) {
      out.push_back(-2);
    }
    out.push_back(co_await q.get());
    out.push_back(co_await q.get());
    co_return out;
  };
  CHECK(weft::run(main(), one_fifo()) == std::vector<int>{-1, -2, 1, 2});
}

TEST_CASE("P106 cancelling a blocked put never enqueues its item, other putters keep their order",
          "[sync][queue]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    weft::Queue<int> q(1);
    q.put_nowait(0);
    auto p1 = weft::spawn(putter(&q, 1));
    auto p2 = weft::spawn(putter(&q, 2));
    auto p3 = weft::spawn(putter(&q, 3));
    co_await settle();
    p2.cancel();
    try {
      co_await p2;
    } catch (const weft::CancelledError&) {
      out.push_back(-2);
    }
    for (int i = 0; i < 3; ++i) out.push_back(co_await q.get());
    co_await p1;
    co_await p3;
    out.push_back(static_cast<int>(q.qsize()));
    co_return out;
  };
  CHECK(weft::run(main(), one_fifo()) == std::vector<int>{-2, 0, 1, 3, 0});
}

TEST_CASE(
    "P107 shutdown: puts raise QueueShutDown, gets drain then raise, immediate drops items "
    "and releases join",
    "[sync][queue]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    {
      weft::Queue<int> q(1);
      q.put_nowait(1);
      auto blocked = weft::spawn(putter(&q, 2));
      co_await settle();
      q.shutdown();
      try {
        co_await blocked;
      } catch (const weft::QueueShutDown&) {
        out.push_back(-1);
      }
      try {
        q.put_nowait(3);
      } catch (const weft::QueueShutDown&) {
        out.push_back(-2);
      }
      out.push_back(co_await q.get());
      try {
        (void)co_await q.get();
      } catch (const weft::QueueShutDown&) {
        out.push_back(-3);
      }
    }
    {
      weft::Queue<int> q;
      auto g = weft::spawn(getter(&q));
      co_await settle();
      q.put_nowait(5);
      (void)co_await g;
      q.put_nowait(6);
      q.put_nowait(7);
      auto joiner = [](weft::Queue<int>* qq) -> weft::Task<void> { co_await qq->join(); };
      auto j = weft::spawn(joiner(&q));
      co_await settle();
      q.task_done();     // 5
      q.shutdown(true);  // drops 6 and 7, counted done: join returns
      co_await j;
      out.push_back(static_cast<int>(q.qsize()));
      try {
        (void)q.get_nowait();
      } catch (const weft::QueueShutDown&) {
        out.push_back(-4);
      }
    }
    co_return out;
  };
  CHECK(weft::run(main(), one_fifo()) == std::vector<int>{-1, -2, 1, -3, 0, -4});
}

TEST_CASE("P (threads) put_nowait from foreign threads and getters on two workers lose no item",
          "[sync][queue]") {
  weft::Runtime rt(workers(2));
  weft::Queue<int> q;
  auto consumer = [](weft::Queue<int>* qq, std::atomic<long>* sum) -> weft::Task<void> {
    for (;;) {
      int v = co_await qq->get();
      if (v < 0) co_return;
      sum->fetch_add(v);
    }
  };
  std::atomic<long> sum{0};
  std::vector<weft::JoinHandle<void>> hs;
  for (int i = 0; i < 4; ++i) hs.push_back(rt.spawn(consumer(&q, &sum)));
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t)
    ts.emplace_back([&q] {
      for (int i = 1; i <= 1000; ++i) q.put_nowait(i);
    });
  for (auto& t : ts) t.join();
  for (int i = 0; i < 4; ++i) q.put_nowait(-1);
  auto join_all = [](std::vector<weft::JoinHandle<void>> v) -> weft::Task<void> {
    for (auto& h : v) co_await h;
  };
  rt.block_on(join_all(std::move(hs)));
  CHECK(sum.load() == 3L * 500500);
}

// ---------------------------------------------------------------- Channel

TEST_CASE("Channel bounded: send waits while full, receivers drain then see the end after close",
          "[sync][channel]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    weft::Channel<int> ch(2);
    co_await ch.send(1);
    co_await ch.send(2);
    auto sender = [](weft::Channel<int> c) -> weft::Task<void> { co_await c.send(3); };
    auto s = weft::spawn(sender(ch));
    co_await settle();
    out.push_back(s.done());  // 0
    ch.close();
    // The blocked sender had not sent: it fails, its item is not delivered.
    try {
      co_await s;
    } catch (const weft::ChannelClosed&) {
      out.push_back(-1);
    }
    for (;;) {
      std::optional<int> v = co_await ch.recv();
      if (!v) break;
      out.push_back(*v);
    }
    try {
      co_await ch.send(9);
    } catch (const weft::ChannelClosed&) {
      out.push_back(-2);
    }
    co_return out;
  };
  CHECK(weft::run(main(), one_fifo()) == std::vector<int>{0, -1, 1, 2, -2});
}

TEST_CASE(
    "Channel unbounded: try_send from a foreign thread and MPMC across two workers lose "
    "nothing",
    "[sync][channel]") {
  weft::Runtime rt(workers(2));
  auto ch = weft::Channel<int>::unbounded();
  auto consumer = [](weft::Channel<int> c) -> weft::Task<long> {
    long sum = 0;
    while (std::optional<int> v = co_await c.recv()) sum += *v;
    co_return sum;
  };
  auto producer = [](weft::Channel<int> c) -> weft::Task<void> {
    for (int i = 1; i <= 1000; ++i) co_await c.send(i);
  };
  std::vector<weft::JoinHandle<long>> cs;
  for (int i = 0; i < 3; ++i) cs.push_back(rt.spawn(consumer(ch)));
  std::vector<weft::JoinHandle<void>> ps;
  for (int i = 0; i < 2; ++i) ps.push_back(rt.spawn(producer(ch)));
  std::thread t([ch]() mutable {
    for (int i = 1; i <= 1000; ++i) CHECK_NOTHROW(ch.try_send(i));
  });
  t.join();
  auto finish = [](std::vector<weft::JoinHandle<void>> p, std::vector<weft::JoinHandle<long>> c,
                   weft::Channel<int> chan) -> weft::Task<long> {
    for (auto& h : p) co_await h;
    chan.close();
    long sum = 0;
    for (auto& h : c) sum += co_await h;
    co_return sum;
  };
  CHECK(rt.block_on(finish(std::move(ps), std::move(cs), ch)) == 3L * 500500);
}

TEST_CASE("Channel cancelling a blocked recv never loses an item", "[sync][channel]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    weft::Channel<int> ch(4);
    auto recv1 = [](weft::Channel<int> c) -> weft::Task<int> {
      std::optional<int> v = co_await c.recv();
      co_return v ? *v : -100;
    };
    auto r = weft::spawn(recv1(ch));
    co_await settle();
    co_await ch.send(1);  // moved into r's awaiter
    r.cancel();           // after the hand-over: r gives the item back
    try {
      out.push_back(co_await r);
    } catch (const weft::CancelledError&) {
      out.push_back(-1);
    }
    out.push_back(*(co_await ch.recv()));  // the item is still there
    auto r2 = weft::spawn(recv1(ch));
    co_await settle();
    r2.cancel();  // before any send: no item taken
    try {
      out.push_back(co_await r2);
    } catch (const weft::CancelledError&) {
      out.push_back(-2);
    }
    co_await ch.send(2);
    out.push_back(*(co_await ch.recv()));
    co_return out;
  };
  CHECK(weft::run(main(), one_fifo()) == std::vector<int>{-1, 1, -2, 2});
}

namespace {
// Waits until thread `tid` sleeps in the kernel (state S in /proc): the
// threads below make one blocking call, so S means they block in it. A
// false S (a thread still starting) only weakens a test, never fails it:
// each outcome checked below is the same whenever the thread gets there.
void wait_until_sleeping(pid_t tid) {
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  for (;;) {
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);
    std::size_t p = line.rfind(')');  // the name, in parentheses, may hold spaces
    if (p != std::string::npos && p + 2 < line.size() && line[p + 2] == 'S') return;
    std::this_thread::yield();
  }
}
pid_t this_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }
}  // namespace

TEST_CASE(
    "Channel blocking_send from a foreign thread blocks on a full channel until a task "
    "receives",
    "[sync][channel]") {
  weft::Runtime rt(workers(2));
  weft::Channel<int> ch(1);
  REQUIRE(ch.try_send(1));
  std::atomic<pid_t> tid{0};
  std::atomic<bool> returned{false};
  std::thread t([ch, &tid, &returned]() mutable {
    tid.store(this_tid());
    ch.blocking_send(2);  // full: blocks
    returned.store(true);
    for (int i = 3; i <= 2000; ++i) ch.blocking_send(i);
    ch.close();
  });
  while (tid.load() == 0) std::this_thread::yield();
  wait_until_sleeping(tid.load());
  CHECK_FALSE(returned.load());
  CHECK(ch.size() == 1);
  // One consumer on the runtime: FIFO, nothing lost, the end after close().
  auto consumer = [](weft::Channel<int> c) -> weft::Task<bool> {
    int expect = 1;
    while (std::optional<int> v = co_await c.recv()) {
      if (*v != expect++) co_return false;
      if (expect % 7 == 0) co_await weft::yield_now();
    }
    co_return expect == 2001;
  };
  CHECK(rt.block_on(consumer(ch)));
  t.join();
  CHECK(returned.load());
}

TEST_CASE(
    "Channel close() while a foreign thread blocks in blocking_send raises ChannelClosed "
    "there, the item is not sent",
    "[sync][channel]") {
  weft::Runtime rt(workers(2));
  weft::Channel<int> ch(1);
  REQUIRE(ch.try_send(1));
  std::atomic<pid_t> tid{0};
  std::atomic<int> outcome{0};  // 1: returned, 2: ChannelClosed
  std::thread t([ch, &tid, &outcome]() mutable {
    tid.store(this_tid());
    try {
      ch.blocking_send(2);
      outcome.store(1);
    } catch (const weft::ChannelClosed&) {
      outcome.store(2);
    }
  });
  while (tid.load() == 0) std::this_thread::yield();
  wait_until_sleeping(tid.load());
  ch.close();
  t.join();
  CHECK(outcome.load() == 2);
  CHECK_THROWS_AS(ch.blocking_send(3), weft::ChannelClosed);  // closed before: at once
  auto drain = [](weft::Channel<int> c) -> weft::Task<std::vector<int>> {
    std::vector<int> got;
    while (std::optional<int> v = co_await c.recv()) got.push_back(*v);
    co_return got;
  };
  CHECK(rt.block_on(drain(ch)) == std::vector<int>{1});
}

TEST_CASE(
    "Channel blocking_recv from a foreign thread blocks until a task sends, close() ends it "
    "with nullopt",
    "[sync][channel]") {
  weft::Runtime rt(workers(2));
  weft::Channel<int> ch(4);
  std::atomic<pid_t> tid{0};
  std::atomic<int> first{0};
  std::atomic<int> second{0};  // -1: nullopt
  std::atomic<bool> waiting_again{false};
  std::thread t([ch, &tid, &first, &second, &waiting_again]() mutable {
    tid.store(this_tid());
    first.store(ch.blocking_recv().value_or(-1));
    waiting_again.store(true);
    second.store(ch.blocking_recv().value_or(-1));
  });
  while (tid.load() == 0) std::this_thread::yield();
  wait_until_sleeping(tid.load());
  auto sender = [](weft::Channel<int> c) -> weft::Task<void> { co_await c.send(5); };
  rt.block_on(sender(ch));
  while (!waiting_again.load()) std::this_thread::yield();
  wait_until_sleeping(tid.load());
  CHECK(first.load() == 5);
  ch.close();
  t.join();
  CHECK(second.load() == -1);
}

TEST_CASE("Channel blocking_send and blocking_recv on a worker thread throw RuntimeError",
          "[sync][channel]") {
  auto main = []() -> weft::Task<std::vector<std::string>> {
    std::vector<std::string> out;
    weft::Channel<int> ch(1);
    try {
      ch.blocking_send(1);
    } catch (const weft::RuntimeError& e) {
      out.emplace_back(e.what());
    }
    try {
      (void)ch.blocking_recv();
    } catch (const weft::RuntimeError& e) {
      out.emplace_back(e.what());
    }
    out.push_back(std::to_string(ch.size()));  // nothing was sent
    co_return out;
  };
  std::vector<std::string> out = weft::run(main(), workers(1));
  REQUIRE(out.size() == 3);
  CHECK(out[0].find("blocking_send") != std::string::npos);
  CHECK(out[0].find("worker thread") != std::string::npos);
  CHECK(out[1].find("blocking_recv") != std::string::npos);
  CHECK(out[2] == "0");
}

// ---------------------------------------------------------------- oneshot

TEST_CASE("oneshot delivers one value (also from a foreign thread), a dropped sender closes it",
          "[sync][oneshot]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    {
      auto [tx, rx] = weft::oneshot<int>();
      std::move(tx).send(1);
      out.push_back(co_await rx);
    }
    {
      auto [tx, rx] = weft::oneshot<int>();
      std::thread t([s = std::move(tx)]() mutable { std::move(s).send(2); });
      out.push_back(co_await rx);
      t.join();
    }
    {
      auto [tx, rx] = weft::oneshot<std::string>();
      { auto dropped = std::move(tx); }
      try {
        (void)co_await rx;
      } catch (const weft::ChannelClosed&) {
        out.push_back(-1);
      }
    }
    co_return out;
  };
  CHECK(weft::run(main(), workers(2)) == std::vector<int>{1, 2, -1});
}

TEST_CASE("oneshot a cancelled receive throws CancelledError and may be awaited again",
          "[sync][oneshot]") {
  auto recv = [](weft::OneshotReceiver<int>* rx) -> weft::Task<int> { co_return co_await *rx; };
  auto main = [](decltype(recv)* r) -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    auto [tx, rx] = weft::oneshot<int>();
    auto h = weft::spawn((*r)(&rx));
    co_await settle();
    h.cancel();
    try {
      out.push_back(co_await h);
    } catch (const weft::CancelledError&) {
      out.push_back(-1);
    }
    std::move(tx).send(7);
    out.push_back(co_await rx);
    co_return out;
  };
  CHECK(weft::run(main(&recv), one_fifo()) == std::vector<int>{-1, 7});
}

TEST_CASE("oneshot (threads) many round trips across two workers", "[sync][oneshot]") {
  auto pong = [](weft::OneshotReceiver<int> rx, weft::OneshotSender<int> tx) -> weft::Task<void> {
    int v = co_await rx;
    std::move(tx).send(v + 1);
  };
  auto main = [](decltype(pong)* p) -> weft::Task<long> {
    long sum = 0;
    for (int i = 0; i < 2000; ++i) {
      auto [tx1, rx1] = weft::oneshot<int>();
      auto [tx2, rx2] = weft::oneshot<int>();
      auto h = weft::spawn((*p)(std::move(rx1), std::move(tx2)));
      std::move(tx1).send(i);
      sum += co_await rx2;
      co_await h;
    }
    co_return sum;
  };
  CHECK(weft::run(main(&pong), workers(2)) == 2000L * 1999 / 2 + 2000);
}
