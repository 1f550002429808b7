// Helpers shared by the unit tests (tests/unit/*.cpp). Header-only: every
// test file is its own executable.
#pragma once

#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <vector>
#include <weft/weft.hpp>

namespace weft_test {

/// Options for a runtime with `n` workers. One worker makes the order within
/// a loop (FIFO callbacks, timers, task start order) observable.
inline weft::RuntimeOptions workers(unsigned n) {
  weft::RuntimeOptions o;
  o.workers = n;
  return o;
}

/// Counts what happens to values of this type, to check that Task<T> and
/// JoinHandle<T> copy, move and destroy what they should and no more.
/// Atomic: a spawned task's frame (and the value in it) may be destroyed on
/// the worker that ran it while the awaiting task, on another worker,
/// destroys its own copy.
struct Counters {
  std::atomic<int> constructed{0};  // from a value
  std::atomic<int> copies{0};
  std::atomic<int> moves{0};
  std::atomic<int> destroyed{0};
  int live() const { return constructed + copies + moves - destroyed; }
};

/// A copyable value that reports its copies/moves/destructions to `c`.
struct Tracked {
  Counters* c;
  int value;
  Tracked(Counters* c_, int v) : c(c_), value(v) { ++c->constructed; }
  Tracked(const Tracked& o) : c(o.c), value(o.value) { ++c->copies; }
  Tracked(Tracked&& o) noexcept : c(o.c), value(o.value) { ++c->moves; }
  Tracked& operator=(const Tracked&) = delete;
  Tracked& operator=(Tracked&&) = delete;
  ~Tracked() { ++c->destroyed; }
};

/// A move-only value that reports its moves/destructions to `c`.
struct MoveOnly {
  Counters* c;
  int value;
  MoveOnly(Counters* c_, int v) : c(c_), value(v) { ++c->constructed; }
  MoveOnly(const MoveOnly&) = delete;
  MoveOnly(MoveOnly&& o) noexcept : c(o.c), value(o.value) { ++c->moves; }
  MoveOnly& operator=(const MoveOnly&) = delete;
  MoveOnly& operator=(MoveOnly&&) = delete;
  ~MoveOnly() { ++c->destroyed; }
};

/// Collects what the runtime's exception handler receives (any thread).
struct HandlerLog {
  struct Entry {
    std::string message;
    std::string what;  // the exception's what(), "" if none
    bool has_exception = false;
  };
  std::mutex mu;
  std::vector<Entry> entries;

  void install(weft::RuntimeOptions& o) {
    o.exception_handler = [this](const weft::ExceptionContext& ctx) {
      Entry e;
      e.message = ctx.message;
      e.has_exception = ctx.exception != nullptr;
      if (ctx.exception) {
        try {
          std::rethrow_exception(ctx.exception);
        } catch (const std::exception& x) {
          e.what = x.what();
        } catch (const weft::CancelledError& x) {
          e.what = std::string("CancelledError: ") + x.what();
        } catch (...) {
          e.what = "<non-std exception>";
        }
      }
      std::lock_guard<std::mutex> g(mu);
      entries.push_back(std::move(e));
    };
  }
  std::vector<Entry> snapshot() {
    std::lock_guard<std::mutex> g(mu);
    return entries;
  }
};

/// Runs `f()` and returns the message of the CancelledError it throws, or
/// "<no CancelledError>" if it throws none. Other exceptions propagate.
template <class F>
std::string cancel_message_of(F&& f) {
  try {
    f();
  } catch (const weft::CancelledError& e) {
    return e.message();
  }
  return "<no CancelledError>";
}

}  // namespace weft_test
