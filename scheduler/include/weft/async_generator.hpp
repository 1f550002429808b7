// weft/async_generator.hpp - AsyncGenerator<T>: a coroutine that co_yields
// values and may co_await between them (Python's async generator).
//
//   weft::AsyncGenerator<int> ticks(int n) {
//     for (int i = 0; i < n; ++i) {
//       co_await weft::sleep(1ms);
//       co_yield i;
//     }
//   }
//   auto gen = ticks(3);
//   while (auto v = co_await gen.next()) use(*v);
//
// The generator runs inline in the task that calls next(), like a Task<T>
// does: its awaits suspend that task, and a cancel of that task raises
// CancelledError inside the generator's body at its current await, which
// (unless caught) ends the generator and comes out of next(). next() yields
// std::optional<T>: the next value, or nullopt once the body has returned;
// an exception escaping the body is rethrown by the next() that ran it, and
// the generator is finished afterwards.
//
// Closing early: `co_await gen.aclose()` resumes a generator suspended at a
// co_yield with GeneratorExit thrown from that co_yield, so its catch blocks,
// destructors and any code after a catch (which may co_await) run; a body
// that yields again instead throws RuntimeError("async generator ignored
// GeneratorExit") from aclose(). A generator that is destroyed while
// suspended at a co_yield is closed the same way by a task spawned for it on
// the current runtime (asyncio's finalizer hook), and run() / Runtime::
// shutdown() closes every generator still suspended at a co_yield after the
// remaining tasks finished (asyncio's shutdown_asyncgens, §R 118). Destroyed
// outside a worker thread, a suspended generator's frame is destroyed at once
// (destructors run, no code that awaits).
//
// Threads: one task at a time may drive a generator (next() while it is
// running throws RuntimeError "already running"); it may move between tasks
// and threads between calls. Do not destroy one concurrently with the
// shutdown of its runtime.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <weft/detail/frame_alloc.hpp>
#include <weft/detail/task_header.hpp>
#include <weft/errors.hpp>
#include <weft/task.hpp>

namespace weft {

class Runtime;

/// Thrown into a generator at its co_yield by aclose(). Like CancelledError
/// it derives from nothing, so `catch (const std::exception&)` does not
/// swallow it; a body catching it with catch (...) must not yield again.
class GeneratorExit final {};

template <class T>
class AsyncGenerator;

namespace detail {

struct GenPromiseBase;
void gen_unregister(GenPromiseBase* p) noexcept;

struct GenPromiseBase {
  std::coroutine_handle<> continuation;  // who resumed us (next/aclose)
  std::coroutine_handle<> self;
  std::exception_ptr error;
  bool started = false;
  bool finished = false;
  bool at_yield = false;
  bool closing = false;
  bool running = false;
  // The runtime registry (async_generator.cpp), under its lock.
  GenPromiseBase* reg_prev = nullptr;
  GenPromiseBase* reg_next = nullptr;
  Runtime* runtime = nullptr;
  bool registered = false;
  bool orphan = false;  // the registry owns the frame

  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }

  std::suspend_always initial_suspend() const noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
      GenPromiseBase& p = h.promise();
      p.finished = true;
      p.at_yield = false;
      gen_unregister(&p);
      hand_on(p.continuation);
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
  void return_void() noexcept {}

  struct YieldAwaiter {
    GenPromiseBase* p = nullptr;
    bool await_ready() const noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
      p = &h.promise();
      p->at_yield = true;
      hand_on(p->continuation);
    }
    void await_resume() {
      p->at_yield = false;
      if (p->closing) throw GeneratorExit{};
    }
  };
};

/// Resumes the generator until its next co_yield or its end.
struct GenResumeAwaiter {
  GenPromiseBase* p;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> consumer) noexcept {
    p->continuation = consumer;
    p->running = true;
    hand_on(p->self);
  }
  void await_resume() noexcept { p->running = false; }
};

// ---- async_generator.cpp ----
/// Records a generator's first step (asyncio's firstiter hook).
void gen_register(GenPromiseBase* p) noexcept;
/// Closes a started generator: GeneratorExit at its co_yield (aclose).
Task<void> gen_close(GenPromiseBase* p);
/// A generator destroyed while suspended at a co_yield: hands its frame to a
/// finalizer task (or destroys it at once outside a worker).
void gen_abandon(GenPromiseBase* p) noexcept;
[[noreturn]] void throw_gen_running();

template <class T>
struct GenPromise : GenPromiseBase {
  std::optional<T> value;
  AsyncGenerator<T> get_return_object() noexcept;
  template <class U = T>
  YieldAwaiter yield_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value.emplace(std::forward<U>(v));
    return {};
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] AsyncGenerator {
  static_assert(!std::is_void_v<T> && !std::is_reference_v<T>,
                "AsyncGenerator<T> yields values: T must be an object type");

 public:
  using promise_type = detail::GenPromise<T>;
  using value_type = T;

  AsyncGenerator() noexcept = default;
  explicit AsyncGenerator(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  AsyncGenerator(AsyncGenerator&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  AsyncGenerator& operator=(AsyncGenerator&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  ~AsyncGenerator() { reset(); }

  bool valid() const noexcept { return static_cast<bool>(h_); }
  /// True once the body has returned, thrown, or been closed.
  bool finished() const noexcept { return !h_ || h_.promise().finished; }

  struct NextAwaiter {
    promise_type* p;
    bool await_ready() const noexcept { return p == nullptr || (p->finished && !p->error); }
    void await_suspend(std::coroutine_handle<> consumer) {
      if (p->running) detail::throw_gen_running();
      if (!p->started) {
        p->started = true;
        detail::gen_register(p);
      }
      detail::GenResumeAwaiter{p}.await_suspend(consumer);
    }
    std::optional<T> await_resume() {
      if (p == nullptr) return std::nullopt;
      p->running = false;
      if (p->error) {
        p->finished = true;
        std::rethrow_exception(std::exchange(p->error, nullptr));
      }
      if (p->finished) return std::nullopt;
      std::optional<T> out(std::move(p->value));
      p->value.reset();
      return out;
    }
  };
  /// Runs the body to its next co_yield: the value, or nullopt at the end.
  /// Rethrows what the body throws. Throws RuntimeError if the generator is
  /// already running.
  NextAwaiter next() noexcept { return NextAwaiter{h_ ? &h_.promise() : nullptr}; }

  /// Closes the generator (see the header comment). Throws RuntimeError if it
  /// ignores GeneratorExit or is running, or what its cleanup throws.
  Task<void> aclose() {
    if (!h_) return [](promise_type*) -> Task<void> { co_return; }(nullptr);
    return detail::gen_close(&h_.promise());
  }

 private:
  void reset() noexcept {
    if (!h_) return;
    promise_type& p = h_.promise();
    if (p.started && !p.finished && p.at_yield && !p.running && !p.closing) {
      detail::gen_abandon(&p);  // takes the frame
    } else {
      detail::gen_unregister(&p);
      h_.destroy();
    }
    h_ = {};
  }
  std::coroutine_handle<promise_type> h_;
};

namespace detail {
template <class T>
AsyncGenerator<T> GenPromise<T>::get_return_object() noexcept {
  auto h = std::coroutine_handle<GenPromise<T>>::from_promise(*this);
  self = h;
  return AsyncGenerator<T>(h);
}
}  // namespace detail

}  // namespace weft
