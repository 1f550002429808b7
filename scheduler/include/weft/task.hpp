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

// Every spawned task carries this in its frame, so it is nothing but the
// header: whether the task is spawned is header.runtime != null, how it ended
// is in the state word, its exception (if any) is kept in the header's
// waiting_on word once the body is over (TaskHeader::error_slot), the
// coroutine that awaits an inline Task in its registry link word (a spawned
// task needs no caller, an inline one is never registered), and a spawned
// task finds its own coroutine from the header's address (own_coroutine).
struct PromiseBase {
  TaskHeader header;

  PromiseBase() noexcept = default;
  PromiseBase(const PromiseBase&) = delete;
  PromiseBase& operator=(const PromiseBase&) = delete;
  ~PromiseBase() {
    if (has_error()) stored_error().~exception_ptr();
  }

  bool spawned() const noexcept { return header.runtime != nullptr; }
  bool has_error() const noexcept {
    return (header.state.load(std::memory_order_relaxed) & TaskHeader::kErrorStored) != 0;
  }
  // Only while kErrorStored is set.
  std::exception_ptr& stored_error() noexcept {
    return *std::launder(static_cast<std::exception_ptr*>(header.error_slot()));
  }
  void set_caller(std::coroutine_handle<> c) noexcept { header.inline_caller = c.address(); }
  std::coroutine_handle<> caller() const noexcept {
    return std::coroutine_handle<>::from_address(header.inline_caller);
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
        const std::uint32_t s = p.header.state.load(std::memory_order_relaxed);
        const bool cancel = (s & TaskHeader::kThrewCancel) != 0;
        complete_task(&p.header, cancel || (s & TaskHeader::kErrorStored) != 0, cancel);
      } else {
        hand_on(p.caller());
      }
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }

  void unhandled_exception() noexcept {
    std::exception_ptr e = std::current_exception();
    std::uint32_t bits = 0;
    if (current_exception_is_cancel()) {
      bits |= TaskHeader::kThrewCancel;
      // A spawned task cancelled by weft keeps only the outcome bit and its
      // cancel message: a million cancelled tasks must not pin a million
      // exception objects until their handles go. (An inline task hands the
      // exception on to its awaiter, so it keeps it.)
      if (spawned() && take_weft_cancel(e)) e = nullptr;
    }
    if (e) {
      // The body is over: it waits on nothing, and never will again.
      ::new (header.error_slot()) std::exception_ptr(std::move(e));
      bits |= TaskHeader::kErrorStored;
    }
    // Relaxed: only this thread reads these bits before the final suspend
    // publishes kComplete (release); wakers CAS the same word concurrently,
    // and their CAS keeps the bits.
    header.state.fetch_or(bits, std::memory_order_relaxed);
  }
};

static_assert(sizeof(PromiseBase) == sizeof(TaskHeader) && std::is_standard_layout_v<PromiseBase>,
              "a task's promise adds nothing to its header (its frame is one allocation)");

/// The exception a spawned task ended with (null for a value, and for a
/// cancellation weft raised). The header is the first member of the
/// standard-layout PromiseBase, so the two addresses are interconvertible.
/// Only once the task is complete (or from the thread that ran it).
inline std::exception_ptr task_error(TaskHeader* h) noexcept {
  auto* p = reinterpret_cast<PromiseBase*>(h);
  return p->has_error() ? p->stored_error() : std::exception_ptr();
}

/// A spawned task's coroutine, found from its header: the promise sits at
/// a fixed offset in the frame for every promise aligned to 16 bytes or
/// less, which TaskPromise checks (frames are only 16-aligned anyway).
inline std::coroutine_handle<> own_coroutine(TaskHeader* h) noexcept {
  return std::coroutine_handle<PromiseBase>::from_promise(*reinterpret_cast<PromiseBase*>(h));
}

template <class T>
struct TaskPromise : PromiseBase {
  static_assert(alignof(T) <= 16,
                "weft::Task<T>: T aligned to more than 16 bytes is not supported (coroutine "
                "frames are 16-aligned); return it in a std::unique_ptr");
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
    if (has_error()) std::rethrow_exception(stored_error());
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
    if (has_error()) std::rethrow_exception(stored_error());
    return *value;
  }
  T* value = nullptr;
};

template <>
struct TaskPromise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void get() {
    if (has_error()) std::rethrow_exception(stored_error());
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
      h.promise().set_caller(parent);
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
