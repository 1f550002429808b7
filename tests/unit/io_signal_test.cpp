// Signals on the ring: add_signal_handler / remove_signal_handler (asyncio's
// loop API) and run()'s Ctrl-C handling (ASYNCIO_SEMANTICS §R 119).
//
// Catch2 installs its own SIGINT handler while a test runs (to report an
// interrupted test); run() only takes SIGINT over from the default
// disposition, as asyncio.Runner does, so the Ctrl-C tests put SIG_DFL in
// place for their duration (DefaultSigint).
//
// fd_check.hpp fails the file if any test case leaks a descriptor (the
// signalfds a registration opens must be closed by remove_signal_handler or
// by the runtime's shutdown).
#include "../support/fd_check.hpp"
// (fd_check.hpp first: it configures Catch)
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <weft/io/signal.hpp>
#include <weft/weft.hpp>

#include "../support/test_helpers.hpp"

namespace {

using weft_test::workers;

bool disposition_is(int signo, void (*handler)(int)) {
  struct sigaction cur {};
  sigaction(signo, nullptr, &cur);
  return !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == handler;
}

struct DefaultSigint {
  struct sigaction saved {};
  DefaultSigint() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGINT, &dfl, &saved);
  }
  ~DefaultSigint() { sigaction(SIGINT, &saved, nullptr); }
};

std::atomic<int> g_custom_calls{0};
void custom_handler(int) { g_custom_calls.fetch_add(1); }

}  // namespace

TEST_CASE("add_signal_handler: kill(getpid(), SIGUSR1) runs the callback on the registering loop") {
  weft::run(
      []() -> weft::Task<void> {
        weft::Event got;
        weft::Loop* registered_on = weft::Loop::current();
        std::atomic<weft::Loop*> ran_on{nullptr};
        weft::io::add_signal_handler(SIGUSR1, [&] {
          ran_on.store(weft::Loop::current());
          got.set();
        });
        REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
        co_await got.wait();
        CHECK(ran_on.load() == registered_on);
        CHECK(weft::io::remove_signal_handler(SIGUSR1));
      }(),
      workers(2));
  CHECK(disposition_is(SIGUSR1, SIG_DFL));
}

TEST_CASE(
    "add_signal_handler: every signal sent after the previous was handled runs the callback") {
  weft::run(
      []() -> weft::Task<void> {
        std::atomic<int> calls{0};
        weft::Event got;
        weft::io::add_signal_handler(SIGUSR2, [&] {
          calls.fetch_add(1);
          got.set();
        });
        for (int i = 1; i <= 5; ++i) {
          got.clear();
          ::kill(::getpid(), SIGUSR2);
          co_await got.wait();
          CHECK(calls.load() == i);
        }
        weft::io::remove_signal_handler(SIGUSR2);
      }(),
      workers(2));
}

TEST_CASE("add_signal_handler twice replaces the callback") {
  weft::run(
      []() -> weft::Task<void> {
        std::atomic<int> first{0}, second{0};
        weft::Event got;
        weft::io::add_signal_handler(SIGUSR1, [&] { first.fetch_add(1); });
        weft::io::add_signal_handler(SIGUSR1, [&] {
          second.fetch_add(1);
          got.set();
        });
        ::kill(::getpid(), SIGUSR1);
        co_await got.wait();
        CHECK(first.load() == 0);
        CHECK(second.load() == 1);
        CHECK(weft::io::remove_signal_handler(SIGUSR1));
      }(),
      workers(1));
}

TEST_CASE("remove_signal_handler returns false when nothing is registered, true once after add") {
  weft::run(
      []() -> weft::Task<void> {
        CHECK_FALSE(weft::io::remove_signal_handler(SIGUSR1));
        weft::io::add_signal_handler(SIGUSR1, [] {});
        CHECK(weft::io::remove_signal_handler(SIGUSR1));
        CHECK_FALSE(weft::io::remove_signal_handler(SIGUSR1));
        co_return;
      }(),
      workers(2));
}

TEST_CASE("remove_signal_handler restores the disposition that was there before add") {
  struct sigaction custom {
  }, saved{};
  custom.sa_handler = custom_handler;
  sigemptyset(&custom.sa_mask);
  sigaction(SIGUSR2, &custom, &saved);
  weft::run(
      []() -> weft::Task<void> {
        weft::io::add_signal_handler(SIGUSR2, [] {});
        CHECK_FALSE(disposition_is(SIGUSR2, custom_handler));
        CHECK(weft::io::remove_signal_handler(SIGUSR2));
        CHECK(disposition_is(SIGUSR2, custom_handler));
        co_return;
      }(),
      workers(2));
  CHECK(disposition_is(SIGUSR2, custom_handler));
  sigaction(SIGUSR2, &saved, nullptr);
}

TEST_CASE("runtime shutdown removes a handler left registered and restores the disposition") {
  weft::run(
      []() -> weft::Task<void> {
        weft::io::add_signal_handler(SIGUSR1, [] {});
        co_return;  // never removed
      }(),
      workers(2));
  CHECK(disposition_is(SIGUSR1, SIG_DFL));
  // A later runtime can register it afresh.
  weft::run(
      []() -> weft::Task<void> {
        weft::io::add_signal_handler(SIGUSR1, [] {});
        CHECK(weft::io::remove_signal_handler(SIGUSR1));
        co_return;
      }(),
      workers(1));
}

TEST_CASE("a signal sent to a thread outside the runtime is forwarded to the loop") {
  // The thread inside run() has SIGUSR1 unblocked; the forwarding handler
  // blocks it there and sends it to the process, where the signalfd sees it.
  const pthread_t outside = pthread_self();
  sigset_t before;
  pthread_sigmask(SIG_SETMASK, nullptr, &before);
  REQUIRE_FALSE(sigismember(&before, SIGUSR1));
  weft::run(
      [](pthread_t target) -> weft::Task<void> {
        weft::Event got;
        weft::io::add_signal_handler(SIGUSR1, [&] { got.set(); });
        REQUIRE(pthread_kill(target, SIGUSR1) == 0);
        co_await got.wait();
        CHECK(weft::io::remove_signal_handler(SIGUSR1));
      }(outside),
      workers(2));
  // run() gives its thread its signal mask back.
  sigset_t after;
  pthread_sigmask(SIG_SETMASK, nullptr, &after);
  CHECK_FALSE(sigismember(&after, SIGUSR1));
}

TEST_CASE("add_signal_handler rejects bad signal numbers with clear exceptions") {
  weft::run(
      []() -> weft::Task<void> {
        CHECK_THROWS_AS(weft::io::add_signal_handler(0, [] {}), weft::ValueError);
        CHECK_THROWS_AS(weft::io::add_signal_handler(SIGRTMAX + 1, [] {}), weft::ValueError);
        CHECK_THROWS_AS(weft::io::add_signal_handler(-3, [] {}), weft::ValueError);
        CHECK_THROWS_WITH(weft::io::add_signal_handler(SIGKILL, [] {}),
                          Catch::Contains("cannot be caught"));
        CHECK_THROWS_AS(weft::io::add_signal_handler(SIGKILL, [] {}), weft::RuntimeError);
        CHECK_THROWS_AS(weft::io::add_signal_handler(SIGSTOP, [] {}), weft::RuntimeError);
        CHECK_THROWS_AS(weft::io::add_signal_handler(SIGSEGV, [] {}), weft::RuntimeError);
        CHECK_THROWS_AS(weft::io::add_signal_handler(32, [] {}), weft::ValueError);  // glibc's
        CHECK_THROWS_AS(weft::io::add_signal_handler(SIGUSR1, std::function<void()>{}),
                        weft::ValueError);
        CHECK_THROWS_AS(weft::io::remove_signal_handler(0), weft::ValueError);
        CHECK_THROWS_AS(weft::io::remove_signal_handler(SIGRTMAX + 1), weft::ValueError);
        co_return;
      }(),
      workers(1));
  CHECK(disposition_is(SIGKILL, SIG_DFL));
  // Outside a worker there is no running loop.
  CHECK_THROWS_AS(weft::io::add_signal_handler(SIGUSR1, [] {}), weft::RuntimeError);
}

TEST_CASE("R119 the first Ctrl-C cancels run()'s main task and run() raises KeyboardInterrupt") {
  DefaultSigint dfl;
  auto main_task = []() -> weft::Task<int> {
    weft::Event never;
    ::kill(::getpid(), SIGINT);  // Ctrl-C
    co_await never.wait();
    co_return 1;
  };
  CHECK_THROWS_AS(weft::run(main_task(), workers(2)), weft::KeyboardInterrupt);
  CHECK(disposition_is(SIGINT, SIG_DFL));
}

TEST_CASE("R119 a main task that handles the Ctrl-C cancellation returns its value from run()") {
  DefaultSigint dfl;
  auto main_task = []() -> weft::Task<int> {
    weft::Event never;
    ::kill(::getpid(), SIGINT);
    try {
      co_await never.wait();
    } catch (const weft::CancelledError&) {
      co_return 7;
    }
    co_return 1;
  };
  CHECK(weft::run(main_task(), workers(2)) == 7);
  CHECK(disposition_is(SIGINT, SIG_DFL));
}

TEST_CASE("R119 run() leaves a SIGINT disposition of the program's own alone") {
  struct sigaction custom {
  }, saved{};
  custom.sa_handler = custom_handler;
  sigemptyset(&custom.sa_mask);
  sigaction(SIGINT, &custom, &saved);
  CHECK(weft::run(
            []() -> weft::Task<int> {
              CHECK(disposition_is(SIGINT, custom_handler));
              co_return 3;
            }(),
            workers(1)) == 3);
  CHECK(disposition_is(SIGINT, custom_handler));
  sigaction(SIGINT, &saved, nullptr);
}

TEST_CASE("R119 add_signal_handler(SIGINT) takes Ctrl-C over from run() and gives it back") {
  DefaultSigint dfl;
  auto main_task = []() -> weft::Task<int> {
    weft::Event got;
    weft::io::add_signal_handler(SIGINT, [&] { got.set(); });
    ::kill(::getpid(), SIGINT);
    co_await got.wait();  // our callback ran; the main task was not cancelled
    CHECK(weft::io::remove_signal_handler(SIGINT));
    co_return 5;
  };
  CHECK(weft::run(main_task(), workers(2)) == 5);
  CHECK(disposition_is(SIGINT, SIG_DFL));
}
