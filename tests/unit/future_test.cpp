// ASYNCIO_SEMANTICS §B: Future (weft::Promise<T> writes, weft::Future<T> reads).
//
// B19 remove_done_callback and B21 wrap_future: future_remove_wrap_test.cpp.
//
// Skipped (with the reason):
//   B16 (part) "passing a class stores an instance": C++ stores an
//       exception_ptr; there is no class-vs-instance distinction.
//   B22 (part) asyncio.TimeoutError *is* the builtin TimeoutError: C++ has no
//       builtin; weft::TimeoutError is checked to be a weft::Error.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "../support/test_helpers.hpp"

using namespace std::chrono_literals;
using weft_test::workers;

namespace {
struct MyError : std::runtime_error {
  explicit MyError(int c) : std::runtime_error("my error"), code(c) {}
  int code;
};
}  // namespace

TEST_CASE("B14 a new future is pending: result() and exception() throw InvalidStateError",
          "[future]") {
  weft::Promise<int> p(nullptr);
  weft::Future<int> f = p.get_future();
  CHECK(f.valid());
  CHECK_FALSE(f.done());
  CHECK_FALSE(f.cancelled());
  CHECK_FALSE(p.done());
  CHECK_THROWS_AS(f.result(), weft::InvalidStateError);
  CHECK_THROWS_AS(f.exception(), weft::InvalidStateError);

  weft::Promise<void> pv(nullptr);
  weft::Future<void> fv = pv.get_future();
  CHECK_THROWS_AS(fv.result(), weft::InvalidStateError);
  CHECK_THROWS_AS(fv.exception(), weft::InvalidStateError);
}

TEST_CASE("B14 a pending task's result() and exception() throw InvalidStateError",
          "[future][task]") {
  struct Out {
    bool done = true, cancelled = true;
    int result_ise = 0, exception_ise = 0;
    int value = 0;
  };
  auto child = [](weft::Future<int> f) -> weft::Task<int> { co_return co_await f; };
  auto main = [](decltype(child)* mk) -> weft::Task<Out> {
    Out o;
    weft::Promise<int> p;
    auto h = weft::spawn((*mk)(p.get_future()));
    o.done = h.done();
    o.cancelled = h.cancelled();
    try {
      (void)h.result();
    } catch (const weft::InvalidStateError&) {
      ++o.result_ise;
    }
    try {
      (void)h.exception();
    } catch (const weft::InvalidStateError&) {
      ++o.exception_ise;
    }
    p.set_result(9);
    o.value = co_await h;
    co_return o;
  };
  Out o = weft::run(main(&child), workers(2));
  CHECK_FALSE(o.done);
  CHECK_FALSE(o.cancelled);
  CHECK(o.result_ise == 1);
  CHECK(o.exception_ise == 1);
  CHECK(o.value == 9);
}

TEST_CASE("B15 after set_result: result, no exception, further set_* and cancel refused",
          "[future]") {
  weft::Promise<std::string> p(nullptr);
  weft::Future<std::string> f = p.get_future();
  p.set_result("v");
  CHECK(f.done());
  CHECK(p.done());
  CHECK_FALSE(f.cancelled());
  CHECK(f.result() == "v");
  CHECK(f.exception() == nullptr);
  CHECK_THROWS_AS(p.set_result("w"), weft::InvalidStateError);
  CHECK_THROWS_AS(p.set_exception(std::make_exception_ptr(MyError(1))), weft::InvalidStateError);
  CHECK_FALSE(f.cancel());
  CHECK_FALSE(f.cancel("m"));
  // No state change.
  CHECK_FALSE(f.cancelled());
  CHECK(f.result() == "v");
  CHECK(f.exception() == nullptr);
  // Every reading end sees the same outcome.
  CHECK(p.get_future().result() == "v");
}

TEST_CASE("B15 a future of an over-aligned value keeps it aligned", "[future]") {
  // Future states come from the frame recycler, which aligns to 16 bytes; a
  // wider value takes the aligned global allocation instead.
  struct alignas(128) Wide {
    int v;
  };
  for (int i = 0; i < 16; ++i) {
    weft::Promise<Wide> p(nullptr);
    weft::Future<Wide> f = p.get_future();
    p.set_result(Wide{i});
    const Wide& w = f.result();
    CHECK(reinterpret_cast<std::uintptr_t>(&w) % alignof(Wide) == 0);
    CHECK(w.v == i);
  }
}

TEST_CASE("B16 after set_exception: result rethrows the same object, exception() returns it",
          "[future]") {
  weft::Promise<int> p(nullptr);
  weft::Future<int> f = p.get_future();
  std::exception_ptr e = std::make_exception_ptr(MyError(42));
  p.set_exception(e);
  CHECK(f.done());
  CHECK_FALSE(f.cancelled());
  CHECK(f.exception() == e);
  const MyError* first = nullptr;
  const MyError* second = nullptr;
  try {
    (void)f.result();
  } catch (const MyError& x) {
    first = &x;
    CHECK(x.code == 42);
  }
  try {
    (void)f.result();
  } catch (const MyError& x) {
    second = &x;
  }
  REQUIRE(first != nullptr);
  CHECK(first == second);
  CHECK_THROWS_AS(p.set_result(1), weft::InvalidStateError);
  CHECK_THROWS_AS(p.set_exception(std::make_exception_ptr(MyError(2))), weft::InvalidStateError);
  CHECK_FALSE(f.cancel());
  CHECK(f.exception() == e);
  // A null exception_ptr is an argument error, not a completion.
  weft::Promise<int> q(nullptr);
  CHECK_THROWS_AS(q.set_exception(nullptr), std::invalid_argument);
  CHECK_FALSE(q.done());
}

TEST_CASE(
    "B17 cancel: true once, then false, result/exception raise CancelledError(msg), set_* refused",
    "[future]") {
  weft::Promise<int> p(nullptr);
  weft::Future<int> f = p.get_future();
  CHECK(f.cancel("m"));
  CHECK_FALSE(f.cancel("other"));
  CHECK(f.done());
  CHECK(f.cancelled());
  CHECK(p.done());
  CHECK(weft_test::cancel_message_of([&] { (void)f.result(); }) == "m");
  CHECK(weft_test::cancel_message_of([&] { (void)f.exception(); }) == "m");
  CHECK_THROWS_AS(p.set_result(1), weft::InvalidStateError);
  CHECK_THROWS_AS(p.set_exception(std::make_exception_ptr(MyError(1))), weft::InvalidStateError);

  weft::Promise<void> q(nullptr);
  weft::Future<void> g = q.get_future();
  CHECK(g.cancel());
  CHECK(weft_test::cancel_message_of([&] { g.result(); }) == "");
}

TEST_CASE("B17 awaiting a cancelled future raises CancelledError with its message", "[future]") {
  auto main = []() -> weft::Task<std::string> {
    weft::Promise<int> p;
    weft::Future<int> f = p.get_future();
    f.cancel("stop now");
    try {
      (void)co_await f;
    } catch (const weft::CancelledError& e) {
      co_return e.message();
    }
    co_return "<not cancelled>";
  };
  CHECK(weft::run(main(), workers(1)) == "stop now");
}

namespace {
struct CbLog {
  std::vector<std::string> entries;
  bool ran_inside_set = false;
};
}  // namespace

TEST_CASE("B18 done callbacks are queued in registration order, never run inside set_result",
          "[future][loop]") {
  auto main = []() -> weft::Task<CbLog> {
    CbLog log;
    weft::Promise<int> p;
    weft::Future<int> f = p.get_future();
    for (int i = 1; i <= 3; ++i)
      f.add_done_callback([&log, i](weft::Future<int> g) {
        log.entries.push_back("cb" + std::to_string(i) + "=" + std::to_string(g.result()));
      });
    p.set_result(5);
    log.ran_inside_set = !log.entries.empty();
    weft::Promise<void> done;
    weft::Future<void> d = done.get_future();
    weft::running_loop().call_soon([&] { done.set_result(); });
    co_await d;
    co_return log;
  };
  CbLog log = weft::run(main(), workers(1));
  CHECK_FALSE(log.ran_inside_set);
  CHECK(log.entries == std::vector<std::string>{"cb1=5", "cb2=5", "cb3=5"});
}

TEST_CASE("B18 done callbacks also follow set_exception and cancel, receiving the future",
          "[future][loop]") {
  auto main = []() -> weft::Task<CbLog> {
    CbLog log;
    weft::Promise<int> p1, p2;
    weft::Future<int> f1 = p1.get_future(), f2 = p2.get_future();
    f1.add_done_callback([&log](weft::Future<int> g) {
      log.entries.push_back(g.exception() != nullptr ? "exception" : "value");
    });
    f2.add_done_callback([&log](weft::Future<int> g) {
      log.entries.push_back(g.cancelled() ? "cancelled" : "not cancelled");
    });
    p1.set_exception(std::make_exception_ptr(MyError(3)));
    f2.cancel();
    log.ran_inside_set = !log.entries.empty();
    weft::Promise<void> done;
    weft::Future<void> d = done.get_future();
    weft::running_loop().call_soon([&] { done.set_result(); });
    co_await d;
    co_return log;
  };
  CbLog log = weft::run(main(), workers(1));
  CHECK_FALSE(log.ran_inside_set);
  CHECK(log.entries == std::vector<std::string>{"exception", "cancelled"});
}

TEST_CASE("B18 a done callback added to a done future is queued, not run synchronously",
          "[future][loop]") {
  auto main = []() -> weft::Task<CbLog> {
    CbLog log;
    weft::Promise<int> p;
    weft::Future<int> f = p.get_future();
    p.set_result(8);
    weft::Loop& loop = weft::running_loop();
    loop.call_soon([&] { log.entries.push_back("before"); });
    f.add_done_callback(
        [&](weft::Future<int> g) { log.entries.push_back("cb=" + std::to_string(g.result())); });
    log.ran_inside_set = !log.entries.empty();
    weft::Promise<void> done;
    weft::Future<void> d = done.get_future();
    loop.call_soon([&] {
      log.entries.push_back("after");
      done.set_result();
    });
    co_await d;
    co_return log;
  };
  CbLog log = weft::run(main(), workers(1));
  CHECK_FALSE(log.ran_inside_set);
  CHECK(log.entries == std::vector<std::string>{"before", "cb=8", "after"});
}

TEST_CASE(
    "B18 (threads) a done callback runs on the registering loop when a foreign thread completes",
    "[future][threads]") {
  auto main = []() -> weft::Task<bool> {
    weft::Loop* mine = &weft::running_loop();
    weft::Promise<int> p;
    weft::Future<int> f = p.get_future();
    weft::Promise<bool> on_loop;
    weft::Future<bool> res = on_loop.get_future();
    f.add_done_callback([&on_loop, mine](weft::Future<int> g) {
      on_loop.set_result(weft::Loop::current() == mine && g.result() == 3);
    });
    std::thread t([&p] { p.set_result(3); });
    bool ok = co_await res;
    t.join();
    co_return ok;
  };
  CHECK(weft::run(main(), workers(2)));
}

TEST_CASE("B18 (threads) a done callback registered outside the runtime runs on worker 0",
          "[future][threads]") {
  weft::Runtime rt(workers(2));
  weft::Promise<int> p(&rt);
  weft::Future<int> f = p.get_future();
  weft::Promise<bool> seen(&rt);
  weft::Future<bool> seen_f = seen.get_future();
  weft::Loop* loop0 = &rt.loop(0);
  f.add_done_callback([&seen, loop0](weft::Future<int> g) {
    seen.set_result(weft::Loop::current() == loop0 && g.result() == 11);
  });
  p.set_result(11);
  CHECK(seen_f.get());
  // get() may return while the callback is still inside seen.set_result:
  // join the workers before `seen` goes out of scope.
  rt.shutdown();

  // Outside the runtime, on a future bound to no runtime: nowhere to queue it.
  weft::Promise<int> orphan(nullptr);
  CHECK_THROWS_AS(orphan.get_future().add_done_callback([](weft::Future<int>) {}),
                  weft::RuntimeError);
}

TEST_CASE("B20 awaiting a done future does not suspend, and awaiting it again gives the same value",
          "[future]") {
  struct Out {
    bool other_ran_early = true;
    int a = 0, b = 0;
    int copies_in_state = -1;
  };
  auto other = [](bool* flag) -> weft::Task<> {
    *flag = true;
    co_return;
  };
  auto main = [](decltype(other)* mk) -> weft::Task<Out> {
    Out o;
    bool flag = false;
    weft::Promise<int> p;
    weft::Future<int> f = p.get_future();
    p.set_result(17);
    auto h = weft::spawn((*mk)(&flag));  // queued on this (only) worker
    o.a = co_await f;
    o.b = co_await f;
    o.other_ran_early = flag;  // had we suspended, `other` would have run
    co_await h;
    co_return o;
  };
  Out o = weft::run(main(&other), workers(1));
  CHECK_FALSE(o.other_ran_early);
  CHECK(o.a == 17);
  CHECK(o.b == 17);
}

TEST_CASE("B20 awaiting a done future yields a copy each time and keeps the stored value",
          "[future]") {
  weft_test::Counters c;
  auto main = [](weft_test::Counters* cs) -> weft::Task<std::vector<int>> {
    weft::Promise<weft_test::Tracked> p;
    weft::Future<weft_test::Tracked> f = p.get_future();
    p.set_result(cs, 4);
    std::vector<int> got;
    {
      weft_test::Tracked x = co_await f;
      got.push_back(x.value);
    }
    {
      weft_test::Tracked y = co_await f;
      got.push_back(y.value);
    }
    got.push_back(f.result().value);
    co_return got;
  };
  CHECK(weft::run(main(&c), workers(1)) == std::vector<int>{4, 4, 4});
  CHECK(c.constructed == 1);  // emplaced in place by set_result
  CHECK(c.live() == 0);       // nothing leaked, nothing destroyed twice
}

TEST_CASE("B22 CancelledError derives from nothing in <stdexcept>, other errors are weft::Error",
          "[future][errors]") {
  STATIC_REQUIRE_FALSE(std::is_base_of_v<std::exception, weft::CancelledError>);
  STATIC_REQUIRE_FALSE(std::is_base_of_v<weft::Error, weft::CancelledError>);
  STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, weft::Error>);
  STATIC_REQUIRE(std::is_base_of_v<weft::Error, weft::TimeoutError>);
  STATIC_REQUIRE(std::is_base_of_v<weft::Error, weft::InvalidStateError>);
  STATIC_REQUIRE(std::is_base_of_v<weft::Error, weft::RuntimeError>);
  STATIC_REQUIRE(std::is_base_of_v<weft::Error, weft::ValueError>);

  bool swallowed = false, by_name = false;
  try {
    try {
      throw weft::CancelledError("m");
    } catch (const std::exception&) {
      swallowed = true;
    }
  } catch (const weft::CancelledError& e) {
    by_name = e.message() == "m";
  }
  CHECK_FALSE(swallowed);
  CHECK(by_name);
  CHECK(std::string(weft::CancelledError().what()) == "CancelledError");
}

TEST_CASE("B22 a catch (std::exception&) in a task does not swallow its cancellation",
          "[future][errors]") {
  struct Out {
    bool swallowed = false;
    bool cancelled = false;
    bool future_cancelled = false;
  };
  auto victim = [](weft::Future<int> f, bool* swallowed) -> weft::Task<int> {
    try {
      co_return co_await f;
    } catch (const std::exception&) {
      *swallowed = true;
    }
    co_return -1;
  };
  auto main = [](decltype(victim)* mk) -> weft::Task<Out> {
    Out o;
    weft::Promise<int> p;
    weft::Future<int> f = p.get_future();
    auto h = weft::spawn((*mk)(f, &o.swallowed));
    co_await weft::yield_now();  // let it block on f
    h.cancel();
    try {
      (void)co_await h;
    } catch (const weft::CancelledError&) {
    }
    o.cancelled = h.cancelled();
    o.future_cancelled = f.cancelled();
    co_return o;
  };
  Out o = weft::run(main(&victim), workers(1));
  CHECK_FALSE(o.swallowed);
  CHECK(o.cancelled);
  CHECK(o.future_cancelled);
}

TEST_CASE("B (threads) futures completed from foreign threads wake the awaiting task",
          "[future][threads]") {
  auto main = []() -> weft::Task<long> {
    long sum = 0;
    for (int i = 1; i <= 50; ++i) {
      weft::Promise<int> p;
      weft::Future<int> f = p.get_future();
      std::thread t([pp = std::move(p), i]() mutable { pp.set_result(i); });
      sum += co_await f;
      t.join();
    }
    co_return sum;
  };
  CHECK(weft::run(main(), workers(2)) == 50 * 51 / 2);
}

TEST_CASE(
    "B (threads) Future::get blocks a foreign thread, get(timeout) throws TimeoutError, "
    "get() on a worker throws RuntimeError",
    "[future][threads]") {
  weft::Runtime rt(workers(2));
  weft::Promise<int> p(&rt);
  weft::Future<int> f = p.get_future();
  CHECK_THROWS_AS(f.get(1ms), weft::TimeoutError);
  CHECK_FALSE(f.done());

  auto setter = [](weft::Promise<int> q) -> weft::Task<> {
    co_await weft::yield_now();
    q.set_result(21);
  };
  auto h = rt.spawn(setter(std::move(p)));
  CHECK(f.get() == 21);
  CHECK(f.get(0ms) == 21);

  auto on_worker = [](weft::Future<int> g) -> weft::Task<bool> {
    try {
      (void)g.get();
    } catch (const weft::RuntimeError&) {
      co_return true;
    }
    co_return false;
  };
  CHECK(rt.block_on(on_worker(f)));

  weft::Promise<int> e(&rt);
  e.set_exception(std::make_exception_ptr(MyError(5)));
  CHECK_THROWS_AS(e.get_future().get(), MyError);
  weft::Promise<int> c(&rt);
  c.get_future().cancel("x");
  CHECK(weft_test::cancel_message_of([&] { (void)c.get_future().get(); }) == "x");
}
