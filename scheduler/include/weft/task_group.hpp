// weft/task_group.hpp - TaskGroup (asyncio.TaskGroup) as task_group(body).
//
//   co_await weft::task_group([&](weft::TaskGroup& tg) -> weft::Task<> {
//     auto a = tg.spawn(fetch(1));
//     tg.spawn(fetch(2), {.name = "second"});
//     co_return;
//   });   // every child has finished here
//
// Why a function taking the body, not a scope object: C++ has no `async
// with`. A scope object would need an explicit `co_await group.join()` that
// nothing forces the user to write, and an exception leaving the body would
// skip it (a destructor cannot co_await, nor replace the exception in
// flight). task_group() runs the body inline, catches what it throws, then
// always joins: forgetting to join is impossible, and "spawn before entry",
// "enter twice" and "no parent task" (§K 83) cannot be written.
//
// Semantics (§K): the join waits for every child, including children spawned
// late by the body or by other children (§K 76). The first child to fail
// with an exception that is not CancelledError cancels every other child and
// the body at its current await (§K 77); a child cancelled on its own is not
// an error (§K 78); an exception from the body cancels the children (§K 79).
// On failure task_group throws ExceptionGroup("unhandled errors in a
// TaskGroup") holding only the real errors, children's first, then the
// body's; a failing nested group appears as a nested ExceptionGroup (§K 81).
// An external cancel of the parent cancels the children and gives
// CancelledError, unless children fail meanwhile: then the ExceptionGroup
// wins (§K 80). The group withdraws the cancel it requested on its parent
// (uncancel), so cancelling() is back to its value on entry afterwards; an
// external cancel that raced a child failure stays requested (§K 84).
// spawn() while the group aborts throws RuntimeError("... is shutting down"),
// after it finished RuntimeError("... is finished"); the refused Task is
// destroyed unrun (§K 83). Children's handles stay valid after the group.
// weft::KeyboardInterrupt (runtime.hpp), from a child or from the body, is
// what asyncio's KeyboardInterrupt/SystemExit is (§K 82): it cancels the
// other children and the body like any failure, and once every child has
// finished the first one is re-raised bare, not inside an ExceptionGroup,
// whatever else failed or was cancelled meanwhile. Every other exception,
// std:: or not, counts as an ordinary error (C++ has no BaseException, so
// there is no BaseExceptionGroup).
//
// g++ 12: capture by reference ([&]) or only trivially copyable values. g++
// 12 destroys a lambda temporary of a `co_await` full-expression twice when a
// capture is not trivially copyable (measured: a shared_ptr captured by value
// loses two references; the same bug SpawnOptions works around). Lambdas
// held in a named variable first are not affected.
//
// Threads: TaskGroup is a reference-counted handle; copies may be kept by the
// children and spawn() called from any worker thread while the group runs.
// task_group() must be awaited inside a weft task. Throws (from the await)
// ExceptionGroup, KeyboardInterrupt, CancelledError, RuntimeError,
// std::bad_alloc.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#include <weft/detail/watch.hpp>
#include <weft/ensure_future.hpp>
#include <weft/exception_group.hpp>
#include <weft/join_handle.hpp>
#include <weft/task.hpp>

namespace weft {

namespace detail {

class GroupState final : public Watch {
 public:
  /// A group whose parent is the calling task. Throws RuntimeError outside one.
  static GroupState* enter();
  /// Takes a slot for a child, or throws RuntimeError (shutting down/finished).
  std::size_t begin_spawn();

 private:
  friend Task<void> group_join(WatchRef<GroupState> s, std::exception_ptr body_error,
                               bool body_cancelled);
  void on_done_locked(TaskHeader* t, std::size_t index) noexcept override;
  bool on_cancel_locked(WatchWait* w) noexcept override;
  void abort_locked() noexcept;

  TaskHeader* parent_ = nullptr;
  bool exiting_ = false;
  bool aborting_ = false;
  bool parent_cancel_requested_ = false;
  bool propagate_cancel_ = false;
  std::string propagate_message_;
  std::exception_ptr propagate_error_;
  std::exception_ptr base_error_;  // the first KeyboardInterrupt (§K 82)
  std::vector<std::exception_ptr> errors_;
};

/// Waits for the children and raises what the group raises (task_group.cpp).
Task<void> group_join(WatchRef<GroupState> s, std::exception_ptr body_error, bool body_cancelled);

}  // namespace detail

/// Handle on a running task group, given to the body of task_group().
class TaskGroup {
 public:
  /// Spawns `task` as a child (asyncio's tg.create_task). Throws
  /// RuntimeError if the group is shutting down or finished (the task is
  /// then destroyed without running), or what spawn() throws.
  template <class T>
  JoinHandle<T> spawn(Task<T> task, SpawnOptions opts = {}) {
    std::size_t slot = s_->begin_spawn();
    auto handle = [&] {
      try {
        return weft::spawn(std::move(task), opts);
      } catch (...) {
        s_->unreserve();
        throw;
      }
    }();
    s_->add(handle.header(), slot, /*reserved=*/true);
    return handle;
  }

 private:
  explicit TaskGroup(detail::WatchRef<detail::GroupState> s) noexcept : s_(std::move(s)) {}
  template <class F>
  friend auto task_group(F body);
  detail::WatchRef<detail::GroupState> s_;
};

/// Runs body(TaskGroup&) -> Task<R> as an asyncio `async with TaskGroup()`
/// block and returns R once every child has finished. See the header comment.
template <class F>
auto task_group(F body) {
  using BodyTask = std::invoke_result_t<F&, TaskGroup&>;
  using R = typename BodyTask::value_type;
  return [](F fn) -> Task<R> {
    detail::WatchRef<detail::GroupState> s(detail::GroupState::enter());
    TaskGroup tg(s);
    std::exception_ptr error;
    bool cancelled = false;
    std::optional<value_or_unit_t<R>> result;
    try {
      if constexpr (std::is_void_v<R>) {
        co_await fn(tg);
      } else {
        result.emplace(co_await fn(tg));
      }
    } catch (const CancelledError&) {
      error = std::current_exception();
      cancelled = true;
    } catch (...) {
      error = std::current_exception();
    }
    co_await detail::group_join(s, error, cancelled);
    if constexpr (!std::is_void_v<R>) co_return std::move(*result);
  }(std::move(body));
}

}  // namespace weft
