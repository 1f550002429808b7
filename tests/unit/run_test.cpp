// ASYNCIO_SEMANTICS §R: weft::run (asyncio.run) and weft::Runtime (Runner).
//
// Tested elsewhere:
//   R118 (part) finalising async generators after the tasks:
//        generator_test.cpp ("R118 ..."); shutting down the default executor
//        (run()/Runtime::shutdown cancels the task awaiting it, then joins
//        the pool): executor_test.cpp ("S120 run() cancels a task awaiting
//        the default pool ...", and S121 for the executor's own shutdown).
//   R119 (part) Ctrl-C handling (the first SIGINT cancels the main task,
//        run() raises KeyboardInterrupt): io_signal_test.cpp ("R119 ...").
//
// Skipped (with the reason):
//   R119 (part) one contextvars context across run() calls: weft has no
//        contextvars.
//   R117 (part) a non-coroutine argument -> ValueError: the C++ analogue
//        tested is an empty (moved-from) Task.
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

namespace {
struct Fatal {  // not a std::exception
  int code;
};

/// Waits on a future of its own that nobody completes (cancelling a task
/// cancels the future it awaits, so hanging tasks must not share one); when
/// cancelled, does some cleanup that itself suspends (so that "waits for
/// them" is observable), then either ends cancelled or fails with `fail_with`.
weft::Task<> hanging(std::atomic<int>* cleaned, const char* fail_with,
                     std::atomic<int>* started = nullptr) {
  if (started) started->fetch_add(1);
  weft::Promise<int> never;
  try {
    (void)co_await never.get_future();
  } catch (const weft::CancelledError&) {
    cleaned->fetch_add(1);
  }
  co_await weft::yield_now();  // cleanup goes on after an await
  cleaned->fetch_add(10);
  if (fail_with) throw std::runtime_error(fail_with);
  throw weft::CancelledError("again");
}
}  // namespace

TEST_CASE("R117 run returns the main task's value or rethrows its exception", "[run]") {
  auto value = []() -> weft::Task<std::string> {
    co_await weft::yield_now();
    co_return "ok";
  };
  auto nothing = [](int* n) -> weft::Task<> {
    ++*n;
    co_return;
  };
  auto throws = []() -> weft::Task<int> {
    co_await weft::yield_now();
    throw std::out_of_range("oops");
  };
  auto throws_fatal = []() -> weft::Task<int> {
    throw Fatal{7};
    co_return 0;
  };
  for (unsigned n : {1u, 2u}) {
    INFO("workers = " << n);
    CHECK(weft::run(value(), workers(n)) == "ok");
    int count = 0;
    weft::run(nothing(&count), workers(n));
    CHECK(count == 1);
    CHECK_THROWS_AS(weft::run(throws(), workers(n)), std::out_of_range);
    try {
      (void)weft::run(throws_fatal(), workers(n));
      FAIL("no exception");
    } catch (const Fatal& f) {
      CHECK(f.code == 7);
    }
  }
  // With the default options (one worker per core).
  CHECK(weft::run(value()) == "ok");
}

TEST_CASE("R117 run with an empty Task throws ValueError", "[run]") {
  auto body = []() -> weft::Task<int> { co_return 1; };
  weft::Task<int> t = body();
  weft::Task<int> keep = std::move(t);
  CHECK_THROWS_AS(weft::run(std::move(t)), weft::ValueError);
  CHECK(weft::run(std::move(keep), workers(1)) == 1);
}

TEST_CASE("R117 run from inside a running loop throws RuntimeError", "[run]") {
  auto inner = []() -> weft::Task<int> { co_return 1; };
  auto main = [](decltype(inner)* mk) -> weft::Task<std::string> {
    try {
      (void)weft::run((*mk)());
    } catch (const weft::RuntimeError& e) {
      co_return e.what();
    }
    co_return "<no error>";
  };
  std::string what = weft::run(main(&inner), workers(1));
  CHECK(what.find("cannot be called from a running event loop") != std::string::npos);
}

TEST_CASE("R117 Runtime::block_on returns the value or rethrows the exception", "[run]") {
  weft::Runtime rt(workers(2));
  auto ok = []() -> weft::Task<int> {
    co_await weft::sleep(1ms);
    co_return 3;
  };
  auto bad = []() -> weft::Task<int> {
    co_await weft::yield_now();
    throw std::invalid_argument("bad arg");
  };
  CHECK(rt.block_on(ok()) == 3);
  CHECK_THROWS_AS(rt.block_on(bad()), std::invalid_argument);
  CHECK(rt.block_on(ok()) == 3);  // an error does not break the runtime
}

TEST_CASE("R118 run cancels the tasks still alive at the end and waits for them", "[run]") {
  std::atomic<int> cleaned{0};
  std::atomic<int> started{0};
  auto main = [](std::atomic<int>* c, std::atomic<int>* s) -> weft::Task<int> {
    for (int i = 0; i < 4; ++i) (void)weft::spawn(hanging(c, nullptr, s));
    // Let them all start and block (with 2 workers a stolen one may start
    // later; a task cancelled before its first step would run no cleanup).
    while (s->load() < 4) co_await weft::yield_now();
    co_return 5;
  };
  for (unsigned n : {1u, 2u}) {
    INFO("workers = " << n);
    cleaned = 0;
    started = 0;
    CHECK(weft::run(main(&cleaned, &started), workers(n)) == 5);
    CHECK(cleaned.load() == 4 * 11);  // each was cancelled and finished its cleanup
  }
}

TEST_CASE("R118 run also cancels tasks spawned while the remaining ones unwind", "[run]") {
  std::atomic<int> cleaned{0};
  std::atomic<int> started{0};
  auto spawner = [](weft::Future<int> never, std::atomic<int>* c,
                    std::atomic<int>* s) -> weft::Task<> {
    s->fetch_add(1);
    try {
      (void)co_await never;
    } catch (const weft::CancelledError&) {
    }
    // Spawned during shutdown: must be cancelled too.
    (void)weft::spawn(hanging(c, nullptr));
    co_await weft::yield_now();
    throw weft::CancelledError();
  };
  auto main = [](decltype(spawner)* mk, std::atomic<int>* c, std::atomic<int>* s) -> weft::Task<> {
    weft::Promise<int> never;
    (void)weft::spawn((*mk)(never.get_future(), c, s));
    while (s->load() < 1) co_await weft::yield_now();  // it started (may be on the other worker)
  };
  weft::run(main(&spawner, &cleaned, &started), workers(2));
  CHECK(cleaned.load() == 11);
}

TEST_CASE("R118 run reports the non-cancel errors of the tasks it cancelled, after they finished",
          "[run]") {
  std::atomic<int> cleaned{0};
  weft_test::HandlerLog log;
  weft::RuntimeOptions opts = workers(2);
  log.install(opts);
  std::atomic<int> cleaned_at_report{-1};
  // Record, at the first report, how far the cancelled tasks had got.
  auto base = opts.exception_handler;
  opts.exception_handler = [&, base](const weft::ExceptionContext& ctx) {
    int expected = -1;
    cleaned_at_report.compare_exchange_strong(expected, cleaned.load());
    base(ctx);
  };
  std::atomic<int> started{0};
  auto main = [](std::atomic<int>* c, std::atomic<int>* s) -> weft::Task<> {
    (void)weft::spawn(hanging(c, "failed while unwinding", s));
    (void)weft::spawn(hanging(c, nullptr, s));  // ends cancelled: not reported
    while (s->load() < 2) co_await weft::yield_now();
  };
  weft::run(main(&cleaned, &started), std::move(opts));
  std::vector<weft_test::HandlerLog::Entry> shutdown_reports;
  for (auto& e : log.snapshot())
    if (e.message.find("unhandled exception during weft::run() shutdown") != std::string::npos)
      shutdown_reports.push_back(e);
  REQUIRE(shutdown_reports.size() == 1);
  CHECK(shutdown_reports[0].what == "failed while unwinding");
  CHECK(cleaned_at_report.load() == 22);  // both had finished before the report
}

// The shutdown sequence retrieves the error and reports it; nothing else may
// report it again as "Task exception was never retrieved".
TEST_CASE("R118 an error of a task cancelled at shutdown is reported exactly once", "[run]") {
  int total = 0, runs = 0;
  for (int i = 0; i < 20; ++i) {
    std::atomic<int> cleaned{0};
    weft_test::HandlerLog log;
    weft::RuntimeOptions opts = workers(2);
    log.install(opts);
    std::atomic<int> started{0};
    auto main = [](std::atomic<int>* c, std::atomic<int>* s) -> weft::Task<> {
      (void)weft::spawn(hanging(c, "failed while unwinding", s));
      while (s->load() < 1) co_await weft::yield_now();
    };
    weft::run(main(&cleaned, &started), std::move(opts));
    total += static_cast<int>(log.snapshot().size());
    ++runs;
  }
  CHECK(total == runs);
}

TEST_CASE("R118 Runtime::shutdown and the destructor follow the same end sequence", "[run]") {
  std::atomic<int> cleaned{0};
  // The task owns its promise: the test thread's get() may return while
  // set_result is still finishing, so the test must not own (and destroy)
  // the promise the task completes.
  auto started_then_hang = [](weft::Promise<void> started, std::atomic<int>* c) -> weft::Task<> {
    started.set_result();
    co_await hanging(c, nullptr);
  };
  {
    weft::Runtime rt(workers(2));
    weft::Promise<void> started(&rt);
    weft::Future<void> s = started.get_future();
    (void)rt.spawn(started_then_hang(std::move(started), &cleaned));
    s.get();
  }  // ~Runtime
  CHECK(cleaned.load() == 11);
  {
    weft::Runtime rt(workers(1));
    weft::Promise<void> started(&rt);
    weft::Future<void> s = started.get_future();
    (void)rt.spawn(started_then_hang(std::move(started), &cleaned));
    s.get();
    rt.shutdown();
    CHECK(cleaned.load() == 22);
    CHECK(rt.all_tasks().empty());
  }
}

TEST_CASE("R119 repeated block_on calls share one runtime, tasks live on between them", "[run]") {
  weft::Runtime rt(workers(2));
  auto background = [](weft::Future<int> f) -> weft::Task<int> { co_return co_await f * 2; };
  auto first = [](decltype(background)* mk, weft::Future<int> f,
                  weft::Runtime** seen) -> weft::Task<weft::JoinHandle<int>> {
    *seen = &weft::running_loop().runtime();
    co_return weft::spawn((*mk)(f));
  };
  auto second = [](weft::Promise<int> p, weft::JoinHandle<int> h,
                   weft::Runtime** seen) -> weft::Task<int> {
    *seen = &weft::running_loop().runtime();
    p.set_result(21);
    co_return co_await h;
  };
  weft::Promise<int> p(&rt);
  weft::Runtime* seen1 = nullptr;
  weft::Runtime* seen2 = nullptr;
  weft::JoinHandle<int> h = rt.block_on(first(&background, p.get_future(), &seen1));
  CHECK_FALSE(h.done());  // still pending between the two calls
  CHECK(rt.block_on(second(std::move(p), h, &seen2)) == 42);
  CHECK(seen1 == &rt);
  CHECK(seen2 == &rt);
}

TEST_CASE(
    "R119 after shutdown (idempotent) block_on and spawn throw RuntimeError, block_on on a "
    "worker throws",
    "[run]") {
  weft::Runtime rt(workers(1));
  auto one = []() -> weft::Task<int> { co_return 1; };
  auto nested = [](weft::Runtime* r, decltype(one)* mk) -> weft::Task<bool> {
    try {
      (void)r->block_on((*mk)());
    } catch (const weft::RuntimeError&) {
      co_return true;
    }
    co_return false;
  };
  CHECK(rt.block_on(nested(&rt, &one)));
  rt.shutdown();
  rt.shutdown();
  CHECK_THROWS_AS(rt.block_on(one()), weft::RuntimeError);
  CHECK_THROWS_AS(rt.spawn(one()), weft::RuntimeError);
}
