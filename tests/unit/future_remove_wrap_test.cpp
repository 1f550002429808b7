// ASYNCIO_SEMANTICS §B 19 (remove_done_callback) and §B 21 (wrap_future).
//
// weft removes a done callback by the DoneCallbackHandle add_done_callback
// returned (a C++ callable has no identity to compare; see future.hpp), so
// "remove every registration of cb" becomes "remove each handle", and the
// count is summed over the handles.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "../support/test_helpers.hpp"
#include "../support/tsan_exception_ptr.hpp"

using namespace std::chrono_literals;
using weft_test::workers;

namespace {
// Runs one loop iteration's worth of queued callbacks: a callback queued
// now runs after everything already queued on this loop.
weft::Task<void> drain_loop() {
  weft::Promise<void> done;
  weft::Future<void> d = done.get_future();
  weft::running_loop().call_soon([&] { done.set_result(); });
  co_await d;
}
}  // namespace

TEST_CASE("B19 remove_done_callback removes registrations, returns the count, removed never run",
          "[future][loop]") {
  struct Out {
    std::size_t removed_cb1 = 0, removed_again = 0, removed_foreign = 0;
    std::vector<std::string> ran;
  };
  auto main = []() -> weft::Task<Out> {
    Out o;
    weft::Promise<int> p, other;
    weft::Future<int> f = p.get_future();
    auto cb1 = [&o](weft::Future<int>) { o.ran.push_back("cb1"); };
    auto cb2 = [&o](weft::Future<int>) { o.ran.push_back("cb2"); };
    // cb1, cb2, cb2 again and cb1 x5 (the CPython test's shape).
    std::vector<weft::DoneCallbackHandle> cb1_handles;
    cb1_handles.push_back(f.add_done_callback(cb1));
    weft::DoneCallbackHandle h2 = f.add_done_callback(cb2);
    weft::DoneCallbackHandle h2b = f.add_done_callback(cb2);
    for (int i = 0; i < 5; ++i) cb1_handles.push_back(f.add_done_callback(cb1));
    for (auto& h : cb1_handles) o.removed_cb1 += f.remove_done_callback(h);
    for (auto& h : cb1_handles) o.removed_again += f.remove_done_callback(h);
    o.removed_foreign = other.get_future().remove_done_callback(h2);  // not its registration
    p.set_result(1);
    co_await drain_loop();
    co_return o;
  };
  Out o = weft::run(main(), workers(1));
  CHECK(o.removed_cb1 == 6);
  CHECK(o.removed_again == 0);
  CHECK(o.removed_foreign == 0);
  CHECK(o.ran == std::vector<std::string>{"cb2", "cb2"});
}

TEST_CASE("B19 removing the first / the third of three callbacks keeps the others in order",
          "[future][loop]") {
  auto run_case = [](int which) {
    auto main = [](int w) -> weft::Task<std::vector<int>> {
      std::vector<int> ran;
      weft::Promise<int> p;
      weft::Future<int> f = p.get_future();
      std::vector<weft::DoneCallbackHandle> hs;
      for (int i = 1; i <= 3; ++i)
        hs.push_back(f.add_done_callback([&ran, i](weft::Future<int>) { ran.push_back(i); }));
      CHECK(f.remove_done_callback(hs[static_cast<std::size_t>(w - 1)]) == 1);
      p.set_result(0);
      co_await drain_loop();
      co_return ran;
    };
    return weft::run(main(which), workers(1));
  };
  CHECK(run_case(1) == std::vector<int>{2, 3});
  CHECK(run_case(3) == std::vector<int>{1, 2});
}

TEST_CASE("B19 a callback already queued (future done) cannot be removed: count 0",
          "[future][loop]") {
  auto main = []() -> weft::Task<std::pair<std::size_t, int>> {
    int ran = 0;
    weft::Promise<int> p;
    weft::Future<int> f = p.get_future();
    weft::DoneCallbackHandle h = f.add_done_callback([&ran](weft::Future<int>) { ++ran; });
    p.set_result(1);
    std::size_t n = f.remove_done_callback(h);
    co_await drain_loop();
    co_return std::pair<std::size_t, int>{n, ran};
  };
  auto [n, ran] = weft::run(main(), workers(1));
  CHECK(n == 0);
  CHECK(ran == 1);
}

TEST_CASE("B19 a removed callback releases its captures at once, a pending future then frees",
          "[future][lifetime]") {
  weft_test::Counters c;
  {
    weft::Runtime rt(workers(1));
    weft::Promise<int> p(&rt);
    weft::Future<int> f = p.get_future();
    weft::DoneCallbackHandle h =
        f.add_done_callback([t = weft_test::Tracked(&c, 1)](weft::Future<int>) { (void)t; });
    CHECK(c.live() == 1);
    CHECK(f.remove_done_callback(h) == 1);
    CHECK(c.live() == 0);
    // The future is dropped still pending: the removed node goes with it
    // (LeakSanitizer checks).
  }
  CHECK(c.live() == 0);
}

TEST_CASE("B21 wrap_future of a std::future finishes with the same result", "[future][executor]") {
  auto main = []() -> weft::Task<int> {
    std::promise<int> sp;
    std::future<int> sf = sp.get_future();
    weft::Future<int> w = weft::wrap_future(std::move(sf));
    std::thread setter([&sp] { sp.set_value(42); });
    int v = co_await w;
    setter.join();
    co_return v;
  };
  CHECK(weft::run(main(), workers(2)) == 42);
}

TEST_CASE("B21 wrap_future of a std::future carries its exception", "[future][executor]") {
  auto main = []() -> weft::Task<std::string> {
    std::promise<int> sp;
    weft::Future<int> w = weft::wrap_future(sp.get_future());
    sp.set_exception(std::make_exception_ptr(std::runtime_error("boom")));
    try {
      (void)co_await w;
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "no error";
  };
  CHECK(weft::run(main(), workers(1)) == "boom");
}

TEST_CASE("B21 Runtime::shutdown returns although a wrapped std::future never completes",
          "[future][executor][shutdown]") {
  std::promise<int> never;  // outlives the runtime: pending all through its shutdown
  weft::Runtime rt(workers(1));
  weft::Future<int> w = rt.block_on([](std::future<int> f) -> weft::Task<weft::Future<int>> {
    co_return weft::wrap_future(std::move(f));
  }(never.get_future()));
  // The shutdown runs on a thread so that a hang fails here, within a bound
  // far above its few milliseconds, rather than at ctest's TIMEOUT.
  std::promise<void> returned;
  std::future<void> r = returned.get_future();
  std::thread t([&] {
    rt.shutdown();
    returned.set_value();
  });
  if (r.wait_for(60s) != std::future_status::ready) {
    std::fprintf(stderr, "Runtime::shutdown hung on a wrapped std::future\n");
    std::abort();  // the hung thread can be neither joined nor stopped
  }
  t.join();
  REQUIRE(w.done());
  CHECK(w.cancelled());  // the wait gave up: the wrapper says so
}

TEST_CASE("B21 shutdown_default_executor cancels a wrapper whose std::future never completes",
          "[future][executor][shutdown]") {
  std::promise<int> never;  // outlives the runtime
  auto main = [](std::future<int> f) -> weft::Task<bool> {
    weft::Future<int> w = weft::wrap_future(std::move(f));
    co_await weft::shutdown_default_executor();  // waits for the pool's threads
    co_return w.cancelled();
  };
  CHECK(weft::run(main(never.get_future()), workers(1)));
}

TEST_CASE("B21 cancelling the task awaiting a wrapped std::future releases the pool thread",
          "[future][executor][cancel]") {
  std::promise<int> never;  // outlives the runtime: only the cancel can end the wait
  weft::RuntimeOptions o = workers(2);
  o.blocking_threads = 1;  // the next job can run only once the wait let go of the thread
  weft::Runtime rt(o);
  std::promise<void> wrapped;
  auto body = [](std::future<int> f, std::promise<void>* ready) -> weft::Task<int> {
    weft::Future<int> w = weft::wrap_future(std::move(f));
    ready->set_value();
    co_return co_await w;  // a cancel from here on reaches w (§C 25, 30)
  };
  weft::JoinHandle<int> h = rt.spawn(body(never.get_future(), &wrapped));
  wrapped.get_future().wait();
  h.cancel();
  CHECK(rt.block_on([](weft::JoinHandle<int> t) -> weft::Task<bool> {
    try {
      (void)co_await t;
    } catch (const weft::CancelledError&) {
      co_return true;
    }
    co_return false;
  }(h)));
  // The pool's only thread runs this job once the wrapper's wait has given
  // up; still waiting on `never`, get() would throw TimeoutError.
  weft::Future<int> next = weft::default_executor(rt)->submit([] { return 7; });
  CHECK(next.get(30s) == 7);
}

TEST_CASE("B21 wrap_future of a future of this runtime returns the same future", "[future]") {
  auto main = []() -> weft::Task<bool> {
    weft::Promise<int> p;
    weft::Future<int> f = p.get_future();
    weft::Future<int> w = weft::wrap_future(f);
    p.set_result(3);
    // Same shared state: the wrapper is done the moment f is.
    co_return w.done() && w.result() == 3;
  };
  CHECK(weft::run(main(), workers(1)));
}

TEST_CASE("B21 wrap_future of another runtime's future follows it", "[future]") {
  weft::Runtime other(workers(1));
  weft::Promise<int> src(&other);
  weft::Future<int> src_f = src.get_future();
  auto main = [](weft::Future<int> f, weft::Promise<int>* s) -> weft::Task<int> {
    weft::Future<int> w = weft::wrap_future(f);
    CHECK_FALSE(w.done());
    std::thread t([s] { s->set_result(11); });
    int v = co_await w;
    t.join();
    co_return v;
  };
  CHECK(weft::run(main(src_f, &src), workers(1)) == 11);
}

TEST_CASE("B21 cancelling the wrapper cancels the source future", "[future]") {
  weft::Runtime other(workers(1));
  weft::Promise<int> src(&other);
  weft::Future<int> src_f = src.get_future();
  auto main = [](weft::Future<int> f) -> weft::Task<bool> {
    weft::Future<int> w = weft::wrap_future(f);
    CHECK(w.cancel("stop"));
    co_return f.cancelled();
  };
  CHECK(weft::run(main(src_f), workers(1)));
  CHECK(src_f.cancelled());
  CHECK_THROWS_AS(src.set_result(1), weft::InvalidStateError);
}

TEST_CASE("B21 cancelling the wrapper keeps a result the source already has", "[future]") {
  weft::Runtime other(workers(1));
  weft::Promise<int> src(&other);
  weft::Future<int> src_f = src.get_future();
  auto main = [](weft::Future<int> f, weft::Promise<int>* s) -> weft::Task<int> {
    weft::Future<int> w = weft::wrap_future(f);
    s->set_result(5);  // the wrapper follows inside set_result
    (void)w.cancel();  // too late: already done with 5
    co_return f.result();
  };
  CHECK(weft::run(main(src_f, &src), workers(1)) == 5);
  CHECK_FALSE(src_f.cancelled());
}

TEST_CASE("B21 a wrapper and a source never completed are freed once the wrapper is cancelled",
          "[future][lifetime]") {
  // They keep each other alive while both are pending (documented in
  // future.hpp); cancelling either ends that (LeakSanitizer checks).
  weft::Runtime other(workers(1));
  weft::Future<int> src_f;
  {
    weft::Promise<int> src(&other);
    src_f = src.get_future();
    weft::Future<int> w = weft::wrap_future(src_f);  // outside any runtime: bound to none
    CHECK(w.cancel("bye"));
    CHECK(w.cancelled());
  }
  CHECK(src_f.cancelled());
}
