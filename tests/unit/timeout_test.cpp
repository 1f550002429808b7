// ASYNCIO_SEMANTICS §G (wait_for), §H (timeout/timeout_at) and the §C 34
// cancelling()/uncancel() bookkeeping of timeout scopes.
//
// Skipped (with the reason):
//   H69 (part) "entering outside a task": run() can only be awaited inside a
//       task (a lazy Task cannot run elsewhere).
#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <string>

#include "../support/test_helpers.hpp"

using namespace std::chrono_literals;
using weft_test::workers;

namespace {

weft::Task<int> value_after(std::chrono::milliseconds d, int v) {
  co_await weft::sleep(d);
  co_return v;
}
weft::Task<void> sleep_for(std::chrono::milliseconds d) { co_await weft::sleep(d); }
weft::Task<int> forever() {
  weft::Promise<int> p;
  co_return co_await p.get_future();
}
// `started` is set once the task is inside its try: a test cancels it only
// then (a task cancelled before its first step never runs its cleanup, and
// on a loaded machine a 1 ms timeout can fire before that step).
weft::Task<int> slow_cleanup(bool* cleaned, weft::Promise<void>* started) {
  try {
    started->set_result();
    co_return co_await forever();
  } catch (const weft::CancelledError&) {
  }
  co_await weft::sleep(2ms);  // an await during cleanup
  *cleaned = true;
  throw weft::CancelledError();
}

}  // namespace

TEST_CASE("G55 wait_for returns the result in time, and nullopt never times out", "[wait_for]") {
  auto main = []() -> weft::Task<int> {
    int a = co_await weft::wait_for(value_after(1ms, 1), 10s);
    int b = co_await weft::wait_for(weft::spawn(value_after(2ms, 2)), std::nullopt);
    co_return a + b;
  };
  CHECK(weft::run(main(), workers(2)) == 3);
}

TEST_CASE("G56 on timeout the inner task is cancelled and awaited to its end, then TimeoutError",
          "[wait_for]") {
  struct Out {
    bool timeout = false, cleaned_at_raise = false, nested_cancel = false;
  };
  auto main = []() -> weft::Task<Out> {
    Out o;
    bool cleaned = false;
    weft::Promise<void> started;
    auto h = weft::spawn(slow_cleanup(&cleaned, &started));
    co_await started.get_future();
    try {
      co_await weft::wait_for(h, 1ms);
    } catch (const weft::TimeoutError& e) {
      o.timeout = true;
      o.cleaned_at_raise = cleaned && h.done();
      try {
        std::rethrow_if_nested(e);
      } catch (const weft::CancelledError&) {
        o.nested_cancel = true;
      }
    }
    co_return o;
  };
  Out o = weft::run(main(), workers(2));
  CHECK(o.timeout);
  CHECK(o.cleaned_at_raise);
  CHECK(o.nested_cancel);
}

TEST_CASE(
    "G57 timeout <= 0: a done task gives its result, an unstarted Task never runs, a running "
    "one is cancelled",
    "[wait_for]") {
  struct Out {
    int done_v = 0;
    bool unstarted_timeout = false, ran = false, running_timeout = false, running_cancelled = false;
  };
  auto body = [](bool* ran) -> weft::Task<int> {
    *ran = true;
    co_return 1;
  };
  auto main = [](decltype(body)* b) -> weft::Task<Out> {
    Out o;
    auto d = weft::spawn(value_after(0ms, 5));
    co_await d;
    o.done_v = co_await weft::wait_for(d, 0ms);
    try {
      co_await weft::wait_for((*b)(&o.ran), 0ms);
    } catch (const weft::TimeoutError&) {
      o.unstarted_timeout = true;
    }
    auto r = weft::spawn(forever());
    co_await weft::yield_now();
    try {
      co_await weft::wait_for(r, -1ms);
    } catch (const weft::TimeoutError&) {
      o.running_timeout = true;
    }
    o.running_cancelled = r.cancelled();
    co_return o;
  };
  Out o = weft::run(main(&body), workers(1));
  CHECK(o.done_v == 5);
  CHECK(o.unstarted_timeout);
  CHECK_FALSE(o.ran);
  CHECK(o.running_timeout);
  CHECK(o.running_cancelled);
}

TEST_CASE("G58 an inner that suppresses the cancel returns its value, another exception wins",
          "[wait_for]") {
  // Each inner is running (inside its try) before its 1 ms starts: a task
  // cancelled before its first step never gets to suppress the cancel.
  auto swallow = [](weft::Promise<void>* started) -> weft::Task<int> {
    try {
      started->set_result();
      co_await forever();
    } catch (const weft::CancelledError&) {
    }
    co_return 42;
  };
  auto other = [](weft::Promise<void>* started) -> weft::Task<int> {
    try {
      started->set_result();
      co_await forever();
    } catch (const weft::CancelledError&) {
    }
    throw std::runtime_error("during cancel");
  };
  auto main = [](decltype(swallow)* s, decltype(other)* x) -> weft::Task<std::string> {
    weft::Promise<void> s_started, x_started;
    auto sh = weft::spawn((*s)(&s_started));
    co_await s_started.get_future();
    int v = co_await weft::wait_for(sh, 1ms);
    auto xh = weft::spawn((*x)(&x_started));
    co_await x_started.get_future();
    try {
      co_await weft::wait_for(xh, 1ms);
    } catch (const std::runtime_error& e) {
      co_return std::to_string(v) + e.what();
    }
    co_return "";
  };
  CHECK(weft::run(main(&swallow, &other), workers(2)) == "42during cancel");
}

TEST_CASE("G59 cancelling the caller of wait_for cancels the inner and waits for it",
          "[wait_for]") {
  struct Out {
    bool caller_cancelled = false, inner_cancelled = false;
  };
  auto caller = [](weft::JoinHandle<int> h) -> weft::Task<int> {
    co_return co_await weft::wait_for(h, 10s);
  };
  auto main = [](decltype(caller)* c) -> weft::Task<Out> {
    Out o;
    auto inner = weft::spawn(forever());
    auto outer = weft::spawn((*c)(inner));
    co_await weft::yield_now();
    outer.cancel();
    try {
      co_await outer;
    } catch (const weft::CancelledError&) {
      o.caller_cancelled = true;
    }
    o.inner_cancelled = inner.done() && inner.cancelled();
    co_return o;
  };
  Out o = weft::run(main(&caller), workers(1));
  CHECK(o.caller_cancelled);
  CHECK(o.inner_cancelled);
}

TEST_CASE("G60 wait_for(shield(t)) times out while t runs on and yields later", "[wait_for]") {
  auto main = []() -> weft::Task<int> {
    weft::Promise<int> p;
    auto fut = p.get_future();
    auto t = weft::spawn(weft::detail::await_future(fut));
    bool timed_out = false;
    try {
      co_await weft::wait_for(weft::shield(t), 1ms);
    } catch (const weft::TimeoutError&) {
      timed_out = true;
    }
    p.set_result(7);
    int v = co_await t;
    co_return timed_out && !t.cancelled() ? v : -1;
  };
  CHECK(weft::run(main(), workers(2)) == 7);
}

TEST_CASE("G61 a wait_for that finished leaves no timeout or cancel state behind", "[wait_for]") {
  auto main = []() -> weft::Task<std::string> {
    // 200 ms: the inner (one yield) finishes well before it even when a
    // loaded machine stalls the loop (with 10 ms, a stall made it time out).
    (void)co_await weft::wait_for(value_after(0ms, 1), 200ms);
    co_await weft::sleep(250ms);  // the old deadline passes: nothing fires
    auto self = weft::current_task();
    if (self.cancelling() != 0) co_return "stray cancelling";
    self.cancel();
    try {
      co_await weft::yield_now();
    } catch (const weft::CancelledError&) {
      self.uncancel();
      co_return "cancel landed";
    }
    co_return "no cancel";
  };
  CHECK(weft::run(main(), workers(1)) == "cancel landed");
}

TEST_CASE("H62 a body overrunning its timeout gets CancelledError, the scope raises TimeoutError",
          "[timeout]") {
  struct Out {
    bool body_saw_cancel = false, timeout = false, expired = false;
  };
  auto main = []() -> weft::Task<Out> {
    Out o;
    auto cm = weft::timeout(1ms);
    auto body = [](Out* out) -> weft::Task<void> {
      try {
        co_await weft::sleep(10s);
      } catch (const weft::CancelledError&) {
        out->body_saw_cancel = true;
        throw;
      }
    };
    try {
      co_await cm.run(body(&o));
    } catch (const weft::TimeoutError&) {
      o.timeout = true;
    }
    o.expired = cm.expired();
    co_return o;
  };
  Out o = weft::run(main(), workers(1));
  CHECK(o.body_saw_cancel);
  CHECK(o.timeout);
  CHECK(o.expired);
}

TEST_CASE(
    "H63 timeout_at(t).when() is t, a scope that does not expire is not expired, nullopt "
    "never fires",
    "[timeout]") {
  struct Out {
    bool when_ok = false, not_expired = false, later = false, disabled = false;
  };
  auto main = []() -> weft::Task<Out> {
    Out o;
    auto t = weft::Clock::now() + 10s;
    auto cm = weft::timeout_at(t);
    o.when_ok = cm.when() == t;
    co_await cm.run(sleep_for(0ms));
    o.not_expired = !cm.expired();
    o.later = *cm.when() > weft::Clock::now();
    auto none = weft::timeout(std::nullopt);
    co_await none.run(sleep_for(2ms));
    o.disabled = !none.when() && !none.expired();
    co_return o;
  };
  Out o = weft::run(main(), workers(1));
  CHECK(o.when_ok);
  CHECK(o.not_expired);
  CHECK(o.later);
  CHECK(o.disabled);
}

TEST_CASE("H64 timeout(0) or a past deadline interrupts the first await, even yield_now",
          "[timeout]") {
  auto yield_body = []() -> weft::Task<void> { co_await weft::yield_now(); };
  auto main = [](decltype(yield_body)* y) -> weft::Task<int> {
    int n = 0;
    auto a = weft::timeout(0ms);
    try {
      co_await a.run((*y)());
    } catch (const weft::TimeoutError&) {
      ++n;
    }
    auto b = weft::timeout_at(weft::Clock::now() - 1s);
    try {
      co_await b.run((*y)());
    } catch (const weft::TimeoutError&) {
      ++n;
    }
    co_return n + (weft::current_task().cancelling() == 0 ? 10 : 0);
  };
  CHECK(weft::run(main(&yield_body), workers(1)) == 12);
}

TEST_CASE("H65 other exceptions pass through, also one raised by cleanup after expiry",
          "[timeout]") {
  auto fails = []() -> weft::Task<void> {
    co_await weft::yield_now();
    throw std::runtime_error("plain");
  };
  auto cleanup_fails = []() -> weft::Task<void> {
    try {
      co_await weft::sleep(10s);
    } catch (const weft::CancelledError&) {
    }
    throw std::runtime_error("cleanup");
  };
  auto main = [](decltype(fails)* f, decltype(cleanup_fails)* c) -> weft::Task<std::string> {
    std::string r;
    auto a = weft::timeout(10s);
    try {
      co_await a.run((*f)());
    } catch (const std::runtime_error& e) {
      r += e.what();
      r += a.expired() ? "+expired" : "";
    }
    auto b = weft::timeout(1ms);
    try {
      co_await b.run((*c)());
    } catch (const std::runtime_error& e) {
      r += std::string(",") + e.what();
    }
    co_return r;
  };
  CHECK(weft::run(main(&fails, &cleanup_fails), workers(1)) == "plain,cleanup");
}

TEST_CASE("H66 a cancel not caused by the timeout propagates as CancelledError, not expired",
          "[timeout]") {
  struct Out {
    bool cancelled = false, expired = true;
  };
  auto inner = [](Out* o) -> weft::Task<void> {
    auto cm = weft::timeout(10s);
    try {
      co_await cm.run(sleep_for(10s));
    } catch (const weft::CancelledError&) {
      o->cancelled = true;
      o->expired = cm.expired();
      throw;
    }
  };
  auto main = [](decltype(inner)* in) -> weft::Task<Out> {
    Out o;
    auto h = weft::spawn((*in)(&o));
    co_await weft::yield_now();
    h.cancel();
    try {
      co_await h;
    } catch (const weft::CancelledError&) {
    }
    co_return o;
  };
  Out o = weft::run(main(&inner), workers(1));
  CHECK(o.cancelled);
  CHECK_FALSE(o.expired);
}

TEST_CASE("H67 nested timeouts with the same deadline: only the outermost raises TimeoutError",
          "[timeout]") {
  struct Out {
    bool inner_cancel = false, outer_timeout = false, both_expired = false;
  };
  auto main = []() -> weft::Task<Out> {
    Out o;
    // Far enough off that the inner scope is entered before it passes, also
    // on a loaded machine (entered after it, the inner would expire at once).
    auto when = weft::Clock::now() + 100ms;
    auto outer = weft::timeout_at(when);
    auto inner = weft::timeout_at(when);
    auto inner_body = [](weft::Timeout* in, Out* out) -> weft::Task<void> {
      try {
        co_await in->run(sleep_for(10s));
      } catch (const weft::CancelledError&) {
        out->inner_cancel = true;
        throw;
      }
    };
    try {
      co_await outer.run(inner_body(&inner, &o));
    } catch (const weft::TimeoutError&) {
      o.outer_timeout = true;
    }
    o.both_expired = outer.expired() && inner.expired();
    co_return o;
  };
  Out o = weft::run(main(), workers(1));
  CHECK(o.inner_cancel);
  CHECK(o.outer_timeout);
  CHECK(o.both_expired);
}

TEST_CASE("H67 nested timeouts: an inner one expiring first raises TimeoutError, the outer runs on",
          "[timeout]") {
  auto body = []() -> weft::Task<std::string> {
    auto inner = weft::timeout(1ms);
    std::string r;
    try {
      co_await inner.run(sleep_for(10s));
    } catch (const weft::TimeoutError&) {
      r = "inner timeout";
    }
    co_await weft::sleep(1ms);  // the outer scope still works
    co_return r;
  };
  auto main = [](decltype(body)* b) -> weft::Task<std::string> {
    auto outer = weft::timeout(10s);
    std::string r = co_await outer.run((*b)());
    co_return r + (outer.expired() ? " outer expired" : "");
  };
  CHECK(weft::run(main(&body), workers(1)) == "inner timeout");
}

TEST_CASE("H67 nested timeouts: the outer expiring passes CancelledError through the inner",
          "[timeout]") {
  auto main = []() -> weft::Task<std::string> {
    auto outer = weft::timeout(1ms);
    auto inner = weft::timeout(10s);
    auto inner_body = [](weft::Timeout* in) -> weft::Task<std::string> {
      try {
        co_await in->run(sleep_for(10s));
      } catch (const weft::CancelledError&) {
        co_return "inner saw cancel";  // the inner scope passed the CancelledError on
      }
      co_return "";
    };
    std::string r = co_await outer.run(inner_body(&inner));
    co_return r + (outer.expired() ? ", outer expired" : "") + (inner.expired() ? ", inner!" : "");
  };
  CHECK(weft::run(main(), workers(1)) == "inner saw cancel, outer expired");
}

TEST_CASE("H68 C34 after a handled timeout the task is not cancelled and cancelling() is restored",
          "[timeout]") {
  auto main = []() -> weft::Task<std::string> {
    auto self = weft::current_task();
    self.cancel();  // a request the task swallows first
    try {
      co_await weft::yield_now();
    } catch (const weft::CancelledError&) {
    }
    int before = self.cancelling();  // 1
    auto cm = weft::timeout(1ms);
    try {
      co_await cm.run(sleep_for(10s));
    } catch (const weft::TimeoutError&) {
    }
    int after = self.cancelling();
    co_await weft::sleep(1ms);  // no stray cancellation lands
    co_return std::to_string(before) + std::to_string(after);
  };
  CHECK(weft::run(main(), workers(1)) == "11");
}

TEST_CASE("H69 reschedule moves or disables the deadline, errors outside the entered state",
          "[timeout]") {
  struct Out {
    bool before_entry = false, moved = false, after_exit = false, double_enter = false;
  };
  auto body = [](weft::Timeout* cm) -> weft::Task<void> {
    cm->reschedule(weft::Clock::now() + 10s);  // moved (not yet due, whatever the load)
    cm->reschedule(std::nullopt);              // disabled: the sleep completes
    co_await weft::sleep(3ms);
  };
  auto main = [](decltype(body)* b) -> weft::Task<Out> {
    Out o;
    auto cm = weft::timeout(10s);
    try {
      cm.reschedule(weft::Clock::now());
    } catch (const weft::RuntimeError&) {
      o.before_entry = true;
    }
    co_await cm.run((*b)(&cm));
    o.moved = !cm.expired() && !cm.when();
    try {
      cm.reschedule(weft::Clock::now());
    } catch (const weft::RuntimeError&) {
      o.after_exit = true;
    }
    try {
      co_await cm.run(sleep_for(0ms));
    } catch (const weft::RuntimeError&) {
      o.double_enter = true;
    }
    co_return o;
  };
  Out o = weft::run(main(&body), workers(1));
  CHECK(o.before_entry);
  CHECK(o.moved);
  CHECK(o.after_exit);
  CHECK(o.double_enter);
}
