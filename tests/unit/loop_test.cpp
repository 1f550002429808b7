// ASYNCIO_SEMANTICS §A: event loop, callbacks, timers, threads.
//
// Skipped (with the reason):
//   A3  (part) a None delay/when -> TypeError: a std::chrono duration/time
//       point cannot be "None"; it does not compile.
//   A9  stop() before run_forever(): weft has no Loop::stop/run_forever; the
//       workers drive their loops for the Runtime's whole life.
//   A10 (part) stop() before the future completes: no stop(). The half that
//       applies, "returns the result or raises the exception", is tested
//       here with Runtime::block_on (weft's run_until_complete) and in R117
//       (run_test.cpp) with run().
//   A11 (part) a future from another loop -> ValueError: weft futures belong
//       to no loop (any task of any runtime may await them); a non-awaitable
//       does not compile.
//   A12 (part) close() idempotent / closed-loop call_soon/call_later/call_at:
//       loops are closed only by Runtime::shutdown, after which no thread is
//       the loop's owner; the C++ analogues tested are spawn/block_on/
//       call_soon_threadsafe after shutdown, and shutdown from a worker.
//
// Callback/task relative order is unspecified in weft (loop.hpp), so every
// ordering test observes callbacks only, and waits for them with a Promise
// completed by the last callback.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../support/test_helpers.hpp"

using namespace std::chrono_literals;
using weft_test::workers;

TEST_CASE("A1 call_soon runs callbacks FIFO with their arguments and returns a Handle", "[loop]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> log;
    weft::Promise<void> done;
    weft::Future<void> f = done.get_future();
    weft::Loop& loop = weft::running_loop();
    for (int i = 0; i < 10; ++i) {
      weft::Handle h = loop.call_soon([&log, i] { log.push_back(i * 10); });
      if (h.cancelled()) log.push_back(-1);  // a fresh Handle is not cancelled
    }
    loop.call_soon([&done] { done.set_result(); });
    co_await f;
    co_return log;
  };
  auto log = weft::run(main(), workers(1));
  REQUIRE(log == std::vector<int>{0, 10, 20, 30, 40, 50, 60, 70, 80, 90});
}

TEST_CASE("A2 a callback scheduled from a running callback runs after everything already queued",
          "[loop]") {
  auto main = []() -> weft::Task<std::vector<char>> {
    std::vector<char> log;
    weft::Promise<void> done;
    weft::Future<void> f = done.get_future();
    weft::Loop& loop = weft::running_loop();
    loop.call_soon([&] {
      log.push_back('a');
      loop.call_soon([&] {
        log.push_back('c');
        loop.call_soon([&] {
          log.push_back('e');
          done.set_result();
        });
      });
    });
    loop.call_soon([&] {
      log.push_back('b');
      loop.call_soon([&] { log.push_back('d'); });
    });
    co_await f;
    co_return log;
  };
  auto log = weft::run(main(), workers(1));
  REQUIRE(log == std::vector<char>{'a', 'b', 'c', 'd', 'e'});
}

namespace {
// A callback that re-posts itself until told to stop. If callbacks scheduled
// by a running callback ran in the same iteration, it would never let the
// loop return to its tasks.
struct ChainState {
  explicit ChainState(weft::Loop* l) : loop(l) {}
  weft::Loop* loop;
  long count = 0;
  bool stop = false;
  weft::Promise<void> stopped;
};
struct Chain {
  ChainState* s;
  void operator()() const {
    if (s->stop) {
      s->stopped.set_result();
      return;
    }
    ++s->count;
    if (s->count < 1000000) s->loop->call_soon(Chain{s});
  }
};
}  // namespace

TEST_CASE("A2 a self-rescheduling callback runs once per iteration and does not starve tasks",
          "[loop]") {
  auto main = []() -> weft::Task<std::vector<long>> {
    ChainState st(&weft::running_loop());
    weft::Future<void> stopped = st.stopped.get_future();
    st.loop->call_soon(Chain{&st});
    std::vector<long> seen;
    for (int i = 0; i < 5; ++i) {
      co_await weft::yield_now();
      seen.push_back(st.count);
    }
    st.stop = true;
    co_await stopped;
    co_return seen;
  };
  auto seen = weft::run(main(), workers(1));
  REQUIRE(seen.size() == 5);
  // One iteration per yield, one run of the chain per iteration.
  for (std::size_t i = 0; i < seen.size(); ++i) {
    INFO("after yield " << i << " the chain had run " << seen[i] << " times");
    CHECK(seen[i] <= static_cast<long>(i) + 2);
  }
  CHECK(seen.back() < 1000000);
  CHECK(seen.back() > seen.front());  // and it did make progress meanwhile
}

TEST_CASE("A3 timers fire in deadline order, not registration order", "[loop][timer]") {
  auto main = []() -> weft::Task<std::vector<char>> {
    std::vector<char> log;
    weft::Promise<void> done;
    weft::Future<void> f = done.get_future();
    weft::Loop& loop = weft::running_loop();
    // 50 ms apart, so that a stall between two of the calls cannot reorder
    // the deadlines on a loaded machine.
    loop.call_later(200ms, [&] {
      log.push_back('x');
      done.set_result();
    });
    loop.call_later(100ms, [&] { log.push_back('y'); });
    loop.call_at(loop.time() + 150ms, [&] { log.push_back('z'); });
    co_await f;
    co_return log;
  };
  REQUIRE(weft::run(main(), workers(1)) == std::vector<char>{'y', 'z', 'x'});
}

TEST_CASE("A3 negative delays mean already due but are still ordered by deadline",
          "[loop][timer]") {
  auto main = []() -> weft::Task<std::vector<char>> {
    std::vector<char> log;
    weft::Promise<void> done;
    weft::Future<void> f = done.get_future();
    weft::Loop& loop = weft::running_loop();
    loop.call_later(-1s, [&] { log.push_back('a'); });
    loop.call_later(-2s, [&] { log.push_back('b'); });
    loop.call_at(loop.time() - 3s, [&] { log.push_back('c'); });
    loop.call_later(0s, [&] {
      log.push_back('d');
      done.set_result();
    });
    co_await f;
    co_return log;
  };
  REQUIRE(weft::run(main(), workers(1)) == std::vector<char>{'c', 'b', 'a', 'd'});
}

TEST_CASE("A4 timers with equal deadlines fire in scheduling order (weft's stricter guarantee)",
          "[loop][timer]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> log;
    weft::Promise<void> done;
    weft::Future<void> f = done.get_future();
    weft::Loop& loop = weft::running_loop();
    const weft::TimePoint when = loop.time() + 2ms;
    for (int i = 0; i < 20; ++i) loop.call_at(when, [&log, i] { log.push_back(i); });
    // Also ties among deadlines already past.
    const weft::TimePoint past = loop.time() - 1s;
    for (int i = 100; i < 110; ++i) loop.call_at(past, [&log, i] { log.push_back(i); });
    loop.call_at(when, [&] { done.set_result(); });
    co_await f;
    co_return log;
  };
  std::vector<int> expected;
  for (int i = 100; i < 110; ++i) expected.push_back(i);
  for (int i = 0; i < 20; ++i) expected.push_back(i);
  REQUIRE(weft::run(main(), workers(1)) == expected);
}

TEST_CASE("A5 due timers are queued after callbacks already ready", "[loop][timer]") {
  auto main = []() -> weft::Task<std::vector<char>> {
    std::vector<char> log;
    weft::Promise<void> done;
    weft::Future<void> f = done.get_future();
    weft::Loop& loop = weft::running_loop();
    loop.call_later(0s, [&] {
      log.push_back('t');
      done.set_result();
    });
    loop.call_later(-1s, [&] { log.push_back('u'); });
    loop.call_soon([&] { log.push_back('s'); });
    co_await f;
    co_return log;
  };
  REQUIRE(weft::run(main(), workers(1)) == std::vector<char>{'s', 'u', 't'});
}

TEST_CASE("A6 a cancelled Handle never runs and reports cancelled()", "[loop]") {
  struct Out {
    bool ran = false, ran_foreign = false, cancelled = false, cancelled_foreign = false;
    bool later_ran = false;
  };
  auto main = []() -> weft::Task<Out> {
    Out o;
    weft::Promise<void> done;
    weft::Future<void> f = done.get_future();
    weft::Loop& loop = weft::running_loop();
    weft::Handle h = loop.call_soon([&] { o.ran = true; });
    weft::Handle h2 = loop.call_soon([&] { o.ran_foreign = true; });
    h.cancel();
    // Handles may be cancelled from any thread.
    std::thread([h2]() mutable { h2.cancel(); }).join();
    loop.call_soon([&] {
      o.later_ran = true;
      done.set_result();
    });
    co_await f;
    o.cancelled = h.cancelled();
    o.cancelled_foreign = h2.cancelled();
    co_return o;
  };
  Out o = weft::run(main(), workers(1));
  CHECK_FALSE(o.ran);
  CHECK_FALSE(o.ran_foreign);
  CHECK(o.cancelled);
  CHECK(o.cancelled_foreign);
  CHECK(o.later_ran);
}

TEST_CASE("A6 a cancelled TimerHandle never runs, when() is time() + delay", "[loop][timer]") {
  struct Out {
    bool ran = false, cancelled = false, when_ok = false;
    std::vector<char> log;
  };
  auto main = []() -> weft::Task<Out> {
    Out o;
    weft::Promise<void> done;
    weft::Future<void> f = done.get_future();
    weft::Loop& loop = weft::running_loop();
    const weft::TimePoint before = loop.time();
    weft::TimerHandle th = loop.call_later(1ms, [&] { o.ran = true; });
    const weft::TimePoint after = loop.time();
    o.when_ok = th.when() >= before + 1ms && th.when() <= after + 1ms;
    // 'a' (2 ms from its call) is due before 'x' unless the calls between
    // `before` and it took 28 ms, which not even a loaded machine takes.
    weft::TimerHandle at = loop.call_at(before + 30ms, [&] { o.log.push_back('x'); });
    if (at.when() != before + 30ms) o.when_ok = false;
    th.cancel();
    loop.call_later(2ms, [&] { o.log.push_back('a'); });
    loop.call_later(40ms, [&] {
      o.log.push_back('b');
      done.set_result();
    });
    co_await f;
    o.cancelled = th.cancelled();
    co_return o;
  };
  Out o = weft::run(main(), workers(1));
  CHECK_FALSE(o.ran);
  CHECK(o.cancelled);
  CHECK(o.when_ok);
  CHECK(o.log == std::vector<char>{'a', 'x', 'b'});
}

TEST_CASE("A7 an exception escaping a callback goes to the exception handler and the loop goes on",
          "[loop]") {
  weft_test::HandlerLog handler;
  weft::RuntimeOptions opts = workers(1);
  handler.install(opts);
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> log;
    weft::Promise<void> done;
    weft::Future<void> f = done.get_future();
    weft::Loop& loop = weft::running_loop();
    loop.call_soon([&] { log.push_back(1); });
    loop.call_soon([] { throw std::runtime_error("cb boom"); });
    loop.call_soon([&] { log.push_back(2); });
    loop.call_later(-1s, [] { throw std::logic_error("timer boom"); });
    loop.call_later(0s, [&] {
      log.push_back(3);
      done.set_result();
    });
    co_await f;
    co_return log;
  };
  auto log = weft::run(main(), std::move(opts));
  CHECK(log == std::vector<int>{1, 2, 3});
  auto entries = handler.snapshot();
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].message.rfind("Exception in callback", 0) == 0);
  CHECK(entries[0].has_exception);
  CHECK(entries[0].what == "cb boom");
  CHECK(entries[1].message.rfind("Exception in callback", 0) == 0);
  CHECK(entries[1].what == "timer boom");
}

TEST_CASE("A8 call_soon_threadsafe from a foreign thread wakes a parked loop", "[loop][threads]") {
  // The loop parks with a 10 s timer pending; a std::thread posts a callback
  // once it has seen the worker park. The callback must run on the loop's
  // thread before that timer is due (a 10 s margin: not a timing assertion,
  // the proof that the wake-up, not the timer, unparked the loop).
  struct Out {
    bool before_timer = false;
    bool on_loop_thread = false;
    bool timer_ran = false;
  };
  weft::Runtime rt(workers(1));
  auto main = [](weft::Runtime* r) -> weft::Task<Out> {
    Out o;
    weft::Loop& loop = weft::running_loop();
    weft::TimerHandle timer = loop.call_later(10s, [&o] { o.timer_ran = true; });
    const weft::TimePoint due = timer.when();
    const std::thread::id loop_thread = std::this_thread::get_id();
    weft::Promise<void> p;
    weft::Future<void> f = p.get_future();
    const std::uint64_t parks0 = r->metrics().total().parks;
    std::thread poster([&, parks0] {
      // Wait (without sleeping) until the worker has parked again.
      for (long i = 0; i < 200000000 && r->metrics().total().parks <= parks0; ++i)
        std::this_thread::yield();
      r->loop(0).call_soon_threadsafe([&] {
        o.before_timer = weft::Clock::now() < due;
        o.on_loop_thread =
            std::this_thread::get_id() == loop_thread && weft::Loop::current() == &loop;
        p.set_result();
      });
    });
    co_await f;
    timer.cancel();
    poster.join();
    co_return o;
  };
  Out o = rt.block_on(main(&rt));
  CHECK(o.before_timer);
  CHECK(o.on_loop_thread);
  CHECK_FALSE(o.timer_ran);
}

TEST_CASE("A8 call_soon_threadsafe from the loop's own thread is FIFO with call_soon", "[loop]") {
  auto main = []() -> weft::Task<std::vector<std::string>> {
    std::vector<std::string> log;
    weft::Promise<void> done;
    weft::Future<void> f = done.get_future();
    weft::Loop& loop = weft::running_loop();
    loop.call_soon_threadsafe([&] { log.push_back("hello"); });
    loop.call_soon([&] { log.push_back("world"); });
    loop.call_soon_threadsafe([&] {
      log.push_back("!");
      done.set_result();
    });
    co_await f;
    co_return log;
  };
  REQUIRE(weft::run(main(), workers(1)) == std::vector<std::string>{"hello", "world", "!"});
}

TEST_CASE("A8 call_soon_threadsafe from another worker runs on the target loop's thread",
          "[loop][threads]") {
  auto main = []() -> weft::Task<bool> {
    weft::Loop& here = weft::running_loop();
    weft::Loop& there = here.runtime().loop(1 - here.index());
    weft::Promise<bool> p;
    weft::Future<bool> f = p.get_future();
    there.call_soon_threadsafe([&p, &there] { p.set_result(weft::Loop::current() == &there); });
    co_return co_await f;
  };
  REQUIRE(weft::run(main(), workers(2)));
}

TEST_CASE("A8 call_soon, call_later and call_at from a foreign thread throw RuntimeError",
          "[loop][threads]") {
  weft::Runtime rt(workers(2));
  weft::Loop& loop = rt.loop(0);
  bool ran = false;
  CHECK_THROWS_AS(loop.call_soon([&] { ran = true; }), weft::RuntimeError);
  CHECK_THROWS_AS(loop.call_later(1ms, [&] { ran = true; }), weft::RuntimeError);
  CHECK_THROWS_AS(loop.call_at(loop.time(), [&] { ran = true; }), weft::RuntimeError);
  try {
    loop.call_soon([] {});
  } catch (const weft::RuntimeError& e) {
    CHECK(std::string(e.what()).find("Non-thread-safe operation") != std::string::npos);
  }

  // ... and from another worker of the same runtime.
  auto other = []() -> weft::Task<int> {
    weft::Loop& here = weft::running_loop();
    weft::Loop& there = here.runtime().loop(1 - here.index());
    int thrown = 0;
    try {
      there.call_soon([] {});
    } catch (const weft::RuntimeError&) {
      ++thrown;
    }
    try {
      there.call_later(1ms, [] {});
    } catch (const weft::RuntimeError&) {
      ++thrown;
    }
    try {
      there.call_at(there.time(), [] {});
    } catch (const weft::RuntimeError&) {
      ++thrown;
    }
    co_return thrown;
  };
  CHECK(rt.block_on(other()) == 3);
  rt.shutdown();
  CHECK_FALSE(ran);
}

namespace {
struct A10Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace

TEST_CASE("A10 block_on returns the task's value once the task has finished", "[loop][runtime]") {
  weft::Runtime rt(workers(2));
  weft::TaskRef self;
  auto body = [](weft::TaskRef* me) -> weft::Task<std::string> {
    *me = weft::current_task();
    co_await weft::sleep(2ms);  // block_on must wait through a suspension
    co_return std::string("result");
  };
  CHECK(rt.block_on(body(&self)) == "result");
  REQUIRE(self);
  CHECK(self.done());
  CHECK_FALSE(self.cancelled());
  CHECK(self.exception() == nullptr);
  CHECK(rt.all_tasks().empty());  // not left running
}

TEST_CASE("A10 block_on rethrows the task's exception once the task has finished",
          "[loop][runtime]") {
  weft::Runtime rt(workers(2));
  weft::TaskRef self;
  auto body = [](weft::TaskRef* me) -> weft::Task<int> {
    *me = weft::current_task();
    co_await weft::sleep(2ms);
    throw A10Error("boom");
  };
  std::string what;
  try {
    (void)rt.block_on(body(&self));
  } catch (const A10Error& e) {  // the task's own exception type, not a wrapper
    what = e.what();
  }
  CHECK(what == "boom");
  REQUIRE(self);
  CHECK(self.done());
  CHECK_FALSE(self.cancelled());
  CHECK(self.exception() != nullptr);
  CHECK(rt.all_tasks().empty());
}

TEST_CASE("A10 block_on of a task that ends cancelled throws its CancelledError",
          "[loop][runtime]") {
  weft::Runtime rt(workers(2));
  weft::TaskRef self;
  auto body = [](weft::TaskRef* me) -> weft::Task<void> {
    *me = weft::current_task();
    me->cancel("stop here");
    co_await weft::sleep(10s);  // the pending cancel is delivered here
  };
  CHECK(weft_test::cancel_message_of([&] { rt.block_on(body(&self)); }) == "stop here");
  REQUIRE(self);
  CHECK(self.done());
  CHECK(self.cancelled());
  CHECK(rt.all_tasks().empty());
}

TEST_CASE("A11 block_on, run and Runtime construction from inside a worker throw RuntimeError",
          "[loop][runtime]") {
  struct Out {
    int thrown = 0;
    std::string run_what;
  };
  weft::Runtime rt(workers(1));
  auto inner = []() -> weft::Task<int> { co_return 1; };
  auto main = [](weft::Runtime* r, decltype(inner)* mk) -> weft::Task<Out> {
    Out o;
    try {
      (void)r->block_on((*mk)());
    } catch (const weft::RuntimeError&) {
      ++o.thrown;
    }
    try {
      (void)weft::run((*mk)());
    } catch (const weft::RuntimeError& e) {
      ++o.thrown;
      o.run_what = e.what();
    }
    try {
      weft::Runtime nested(weft_test::workers(1));
    } catch (const weft::RuntimeError&) {
      ++o.thrown;
    }
    co_return o;
  };
  Out o = rt.block_on(main(&rt, &inner));
  CHECK(o.thrown == 3);
  CHECK(o.run_what.find("cannot be called from a running event loop") != std::string::npos);
}

TEST_CASE(
    "A12 after shutdown, spawn, block_on and call_soon_threadsafe throw RuntimeError, "
    "shutdown is idempotent",
    "[loop][runtime]") {
  weft::Runtime rt(workers(2));
  auto body = []() -> weft::Task<int> { co_return 7; };
  REQUIRE(rt.block_on(body()) == 7);
  rt.shutdown();
  REQUIRE_NOTHROW(rt.shutdown());
  CHECK_THROWS_AS(rt.spawn(body()), weft::RuntimeError);
  CHECK_THROWS_AS(rt.block_on(body()), weft::RuntimeError);
  bool ran = false;
  CHECK_THROWS_AS(rt.loop(0).call_soon_threadsafe([&] { ran = true; }), weft::RuntimeError);
  CHECK_THROWS_AS(rt.loop(1).call_soon_threadsafe([&] { ran = true; }), weft::RuntimeError);
  CHECK_FALSE(ran);
}

TEST_CASE("A12 shutdown called on a worker (closing a running loop) throws RuntimeError",
          "[loop][runtime]") {
  weft::Runtime rt(workers(1));
  auto main = []() -> weft::Task<bool> {
    try {
      weft::running_loop().runtime().shutdown();
    } catch (const weft::RuntimeError&) {
      co_return true;
    }
    co_return false;
  };
  CHECK(rt.block_on(main()));
  // The runtime is still usable.
  auto again = []() -> weft::Task<int> { co_return 5; };
  CHECK(rt.block_on(again()) == 5);
}

TEST_CASE("A13 running_loop outside a worker throws RuntimeError('no running event loop')",
          "[loop]") {
  CHECK(weft::Loop::current() == nullptr);
  try {
    (void)weft::running_loop();
    FAIL("running_loop() did not throw");
  } catch (const weft::RuntimeError& e) {
    CHECK(std::string(e.what()) == "no running event loop");
  }
  // Also on a thread that is not a worker while a runtime runs.
  weft::Runtime rt(workers(1));
  CHECK(weft::Loop::current() == nullptr);
  CHECK_THROWS_AS(weft::running_loop(), weft::RuntimeError);
}

TEST_CASE("A13 inside a task, running_loop is the calling worker's loop", "[loop]") {
  weft::Runtime rt(workers(2));
  auto main = [](weft::Runtime* r) -> weft::Task<bool> {
    weft::Loop* cur = weft::Loop::current();
    bool ok = cur != nullptr && cur == &weft::running_loop() && &cur->runtime() == r &&
              cur->index() < r->workers() && &r->loop(cur->index()) == cur;
    co_return ok;
  };
  CHECK(rt.block_on(main(&rt)));
}

TEST_CASE("A13 two threads can each run weft::run at the same time with independent loops",
          "[loop][threads]") {
  // Each main task completes the other's promise and then waits for its own:
  // neither run() can return unless both are running at once.
  weft::Promise<void> pa(nullptr), pb(nullptr);
  weft::Future<void> fa = pa.get_future(), fb = pb.get_future();
  auto body = [](weft::Promise<void> give, weft::Future<void> wait) -> weft::Task<weft::Runtime*> {
    weft::Runtime* mine = &weft::running_loop().runtime();
    give.set_result();
    co_await wait;
    // Still on a loop of our own runtime.
    co_return &weft::running_loop().runtime() == mine ? mine : nullptr;
  };
  weft::Runtime* ra = nullptr;
  weft::Runtime* rb = nullptr;
  std::thread ta([&] { ra = weft::run(body(std::move(pa), fb), workers(1)); });
  std::thread tb([&] { rb = weft::run(body(std::move(pb), fa), workers(1)); });
  ta.join();
  tb.join();
  CHECK(ra != nullptr);
  CHECK(rb != nullptr);
  CHECK(ra != rb);
}
