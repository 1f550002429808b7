// weft/task.hpp - Task<T>, weft's coroutine type (asyncio's coroutine).
//
// A Task<T> is lazy: calling a coroutine function that returns Task<T> runs
// nothing. `co_await task` runs it inline, within the awaiting task, and
// yields its value or rethrows its exception; `spawn(std::move(task))` turns
// it into a concurrently running task (asyncio's create_task).
//
// T may be void, a value type, a reference (T&) or a move-only type.
//
// Control passes between an awaiting coroutine and the Task it awaits without
// growing the stack: an await hands the child to a trampoline (resume_chain)
// and the child's end hands its parent back the same way, so a million
// nested or consecutive awaits of already-finished tasks run in constant stack
// depth. This is symmetric transfer done by hand. We do not return the handle
// from await_suspend and let the compiler jump because g++ 12 at -O0 emits
// that jump as a call: a loop of a million `co_await` on ready tasks overflows
// an 8 MiB stack there (measured). Only code that weft resumes runs Task
// bodies; a Task must not be resumed with coroutine_handle::resume() by user
// code.
//
// Threads: a Task object is owned by one thread at a time. It may be awaited
// from any weft task; awaiting it outside a task is not possible (use
// Runtime::block_on or run).
#pragma once

#include <cassert>
#include <coroutine>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <weft/detail/frame_alloc.hpp>
#include <weft/detail/task_header.hpp>

namespace weft {

template <class T = void>
class Task;

namespace detail {

bool current_exception_is_cancel() noexcept;
/// True (and forgotten) if `e` is the CancelledError weft itself raised last
/// on this thread: it carries nothing but the task's cancel message, so a
/// finished task need not keep the exception object alive.
bool take_weft_cancel(const std::exception_ptr& e) noexcept;

// Every spawned task carries this in its frame, so it is kept small: whether
// the task is spawned is header.runtime != null, a CancelledError ending is a
// state bit, and a spawned task's own handle (destroyed with its last
// reference) lives in `continuation`, which only inline awaits use.
struct PromiseBase {
  TaskHeader header;
  std::coroutine_handle<> continuation;  // spawned: the task's own coroutine
  std::exception_ptr error;
  bool spawned() const noexcept { return header.runtime != nullptr; }
  bool threw_cancel() const noexcept {
    return (header.state.load(std::memory_order_relaxed) & TaskHeader::kThrewCancel) != 0;
  }

  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }

  std::suspend_always initial_suspend() const noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
      PromiseBase& p = h.promise();
      if (p.spawned()) {
        const bool cancel = p.threw_cancel();
        complete_task(&p.header, p.error != nullptr || cancel, cancel);
      } else {
        hand_on(p.continuation);
      }
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }

  void unhandled_exception() noexcept {
    error = std::current_exception();
    if (!current_exception_is_cancel()) return;
    // Relaxed: only this thread reads it, at the final suspend (wakers CAS
    // the same word concurrently; their CAS keeps the bit).
    header.state.fetch_or(TaskHeader::kThrewCancel, std::memory_order_relaxed);
    // A spawned task cancelled by weft keeps only the outcome bit and its
    // cancel message: a million cancelled tasks must not pin a million
    // exception objects until their handles go. (An inline task hands the
    // exception on to its awaiter, so it keeps it.)
    if (spawned() && take_weft_cancel(error)) error = nullptr;
  }
};

/// The exception a spawned task ended with (null for a value, and for a
/// cancellation weft raised). The header is the first member of the
/// standard-layout PromiseBase, so the two addresses are interconvertible.
inline std::exception_ptr& task_error(TaskHeader* h) noexcept {
  return reinterpret_cast<PromiseBase*>(h)->error;
}

template <class T>
struct TaskPromise : PromiseBase {
  TaskPromise() noexcept {}
  ~TaskPromise() {
    if (has_value) value.~T();
  }
  Task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    ::new (static_cast<void*>(std::addressof(value))) T(std::forward<U>(v));
    has_value = true;
  }
  T& get() & {
    if (error) std::rethrow_exception(error);
    return value;
  }
  union {
    T value;
  };
  bool has_value = false;
};

template <class T>
struct TaskPromise<T&> : PromiseBase {
  Task<T&> get_return_object() noexcept;
  void return_value(T& v) noexcept { value = std::addressof(v); }
  T& get() {
    if (error) std::rethrow_exception(error);
    return *value;
  }
  T* value = nullptr;
};

template <>
struct TaskPromise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void get() {
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  Task() noexcept = default;
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  /// True if this object holds a coroutine (not moved from, not spawned).
  bool valid() const noexcept { return static_cast<bool>(h_); }

  struct Awaiter {
    std::coroutine_handle<promise_type> h;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> parent) noexcept {
      h.promise().continuation = parent;
      detail::hand_on(h);
    }
    T await_resume() {
      if constexpr (std::is_reference_v<T> || std::is_void_v<T>) {
        return h.promise().get();
      } else {
        return std::move(h.promise().get());
      }
    }
  };
  /// Runs the task inline. Awaiting an empty (moved-from) Task is a bug and
  /// asserts in debug builds.
  Awaiter operator co_await() && noexcept {
    assert(h_ && "co_await on an empty weft::Task");
    return Awaiter{h_};
  }
  Awaiter operator co_await() & noexcept {
    assert(h_ && "co_await on an empty weft::Task");
    return Awaiter{h_};
  }

  /// Gives up ownership of the coroutine (used by spawn).
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, {}); }
  /// The coroutine, still owned (used by spawn).
  std::coroutine_handle<promise_type> handle() const noexcept { return h_; }

 private:
  void reset() noexcept {
    if (h_) {
      h_.destroy();
      h_ = {};
    }
  }
  std::coroutine_handle<promise_type> h_;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
template <class T>
Task<T&> TaskPromise<T&>::get_return_object() noexcept {
  return Task<T&>(std::coroutine_handle<TaskPromise<T&>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace weft
