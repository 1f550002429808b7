// AsyncGenerator<T> (issue 6) and run()'s finalization of generators still
// suspended at shutdown (ASYNCIO_SEMANTICS §R 118, asyncio's
// shutdown_asyncgens).
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../support/test_helpers.hpp"

using namespace std::chrono_literals;
using weft_test::workers;

namespace {

weft::AsyncGenerator<int> count_to(int n) {
  for (int i = 0; i < n; ++i) {
    co_await weft::sleep(0ms);
    co_yield i;
  }
}

/// Yields forever; records its cleanup, which awaits.
weft::AsyncGenerator<int> with_cleanup(std::vector<std::string>* log) {
  try {
    for (int i = 0;; ++i) co_yield i;
  } catch (const weft::GeneratorExit&) {
    log->push_back("exit");
  }
  co_await weft::yield_now();  // async cleanup
  log->push_back("cleaned");
}

weft::AsyncGenerator<int> fails_after_one() {
  co_yield 1;
  throw std::runtime_error("gen failed");
}

}  // namespace

TEST_CASE("generator yields values while awaiting between them, then nullopt", "[generator]") {
  auto main = []() -> weft::Task<std::vector<int>> {
    std::vector<int> out;
    auto gen = count_to(4);
    while (auto v = co_await gen.next()) out.push_back(*v);
    if (!gen.finished()) out.push_back(-1);
    if (co_await gen.next()) out.push_back(-2);  // stays finished
    co_return out;
  };
  CHECK(weft::run(main(), workers(2)) == std::vector<int>{0, 1, 2, 3});
}

TEST_CASE("generator exceptions come out of next() and end the generator", "[generator]") {
  auto main = []() -> weft::Task<std::string> {
    auto gen = fails_after_one();
    std::string r = std::to_string(*co_await gen.next());
    try {
      co_await gen.next();
    } catch (const std::runtime_error& e) {
      r += e.what();
    }
    r += gen.finished() ? " finished" : "";
    co_return r;
  };
  CHECK(weft::run(main(), workers(1)) == "1gen failed finished");
}

TEST_CASE("generator aclose runs the cleanup, including its awaits", "[generator]") {
  auto main = []() -> weft::Task<std::vector<std::string>> {
    std::vector<std::string> log;
    auto gen = with_cleanup(&log);
    (void)co_await gen.next();
    co_await gen.aclose();
    log.push_back(gen.finished() ? "finished" : "open");
    co_return log;
  };
  CHECK(weft::run(main(), workers(1)) == std::vector<std::string>{"exit", "cleaned", "finished"});
}

TEST_CASE("generator that yields again while closing makes aclose throw RuntimeError",
          "[generator]") {
  auto stubborn = []() -> weft::AsyncGenerator<int> {
    for (;;) {
      try {
        co_yield 1;
      } catch (const weft::GeneratorExit&) {
      }
    }
  };
  auto main = [](decltype(stubborn)* s) -> weft::Task<std::string> {
    auto gen = (*s)();
    (void)co_await gen.next();
    try {
      co_await gen.aclose();
    } catch (const weft::RuntimeError& e) {
      co_return e.what();
    }
    co_return "";
  };
  CHECK(weft::run(main(&stubborn), workers(1)) == "async generator ignored GeneratorExit");
}

TEST_CASE("generator destroyed at a co_yield is closed by a finalizer task", "[generator]") {
  auto main = []() -> weft::Task<std::vector<std::string>> {
    std::vector<std::string> log;
    {
      auto gen = with_cleanup(&log);
      (void)co_await gen.next();
    }
    while (log.size() < 2) co_await weft::yield_now();
    co_return log;
  };
  CHECK(weft::run(main(), workers(1)) == std::vector<std::string>{"exit", "cleaned"});
}

TEST_CASE("generator: a cancel of the consumer raises CancelledError inside the body",
          "[generator]") {
  auto gen_fn = [](std::string* log) -> weft::AsyncGenerator<int> {
    try {
      co_await weft::sleep(10s);
      co_yield 1;
    } catch (const weft::CancelledError&) {
      *log = "body saw cancel";
      throw;
    }
  };
  auto consumer = [](decltype(gen_fn)* g, std::string* log) -> weft::Task<void> {
    auto gen = (*g)(log);
    (void)co_await gen.next();
  };
  auto main = [](decltype(gen_fn)* g, decltype(consumer)* c) -> weft::Task<std::string> {
    std::string log;
    auto h = weft::spawn((*c)(g, &log));
    co_await weft::yield_now();
    h.cancel();
    try {
      co_await h;
    } catch (const weft::CancelledError&) {
      log += ", consumer cancelled";
    }
    co_return log;
  };
  CHECK(weft::run(main(&gen_fn, &consumer), workers(1)) == "body saw cancel, consumer cancelled");
}

TEST_CASE("R118 run() finalizes generators still suspended at shutdown, after the tasks",
          "[generator]") {
  std::vector<std::string> log;
  std::optional<weft::AsyncGenerator<int>> kept;  // outlives run(), as in asyncio's test
  auto main = [](std::vector<std::string>* l,
                 std::optional<weft::AsyncGenerator<int>>* k) -> weft::Task<int> {
    k->emplace(with_cleanup(l));
    (void)co_await (*k)->next();
    co_return 0;
  };
  CHECK(weft::run(main(&log, &kept), workers(1)) == 0);
  CHECK(log == std::vector<std::string>{"exit", "cleaned"});
  CHECK(kept->finished());
}

TEST_CASE("generator next() on a generator already running throws RuntimeError", "[generator]") {
  // Suspended inside its first step until main has tried next() itself.
  auto slow = [](weft::Future<void> go) -> weft::AsyncGenerator<int> {
    co_await go;
    co_yield 1;
  };
  auto driver = [](weft::AsyncGenerator<int>* g) -> weft::Task<int> {
    auto v = co_await g->next();
    co_return v.value_or(-1);
  };
  auto main = [](decltype(slow)* s, decltype(driver)* d) -> weft::Task<std::string> {
    weft::Promise<void> go;
    auto gen = (*s)(go.get_future());
    auto first = weft::spawn((*d)(&gen));
    co_await weft::yield_now();
    std::string r;
    try {
      co_await gen.next();
    } catch (const weft::RuntimeError&) {
      r = "running";
    }
    go.set_result();
    r += std::to_string(co_await first);
    co_return r;
  };
  CHECK(weft::run(main(&slow, &driver), workers(1)) == "running1");
}
