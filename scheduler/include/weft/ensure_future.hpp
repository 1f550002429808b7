// weft/ensure_future.hpp - ensure_future(awaitable) -> JoinHandle<T>.
//
// asyncio.ensure_future turns "something awaitable" into a Task. Here:
//   Task<T>      is spawned (as spawn() would);
//   JoinHandle<T> is returned as is (the same task, §E 46: given twice, it
//                runs once);
//   Future<T>    is wrapped in a task that awaits it, so a combinator can
//                treat it as a task. Cancelling that task cancels the future,
//                as asyncio cancels a gathered future.
// The combinators (gather, wait, shield, as_completed, wait_for) accept any of
// the three through it.
//
// Threads: on a worker thread only (spawn's rule). Throws RuntimeError
// ("no running event loop") elsewhere, std::invalid_argument for an empty Task.
#pragma once

#include <type_traits>
#include <utility>
#include <variant>
#include <weft/future.hpp>
#include <weft/join_handle.hpp>
#include <weft/task.hpp>

namespace weft {

namespace detail {
template <class A>
struct AwaitableTraits;
template <class T>
struct AwaitableTraits<Task<T>> {
  using value_type = T;
};
template <class T>
struct AwaitableTraits<JoinHandle<T>> {
  using value_type = T;
};
template <class T>
struct AwaitableTraits<Future<T>> {
  using value_type = T;
};

template <class T>
Task<T> await_future(Future<T> f) {
  if constexpr (std::is_void_v<T>) {
    co_await f;
  } else {
    co_return co_await f;
  }
}
}  // namespace detail

/// The value type of a Task<T>, JoinHandle<T> or Future<T>.
template <class A>
using awaitable_value_t = typename detail::AwaitableTraits<std::remove_cvref_t<A>>::value_type;

/// What a combinator stores for a child's value: T, or std::monostate for void.
template <class T>
using value_or_unit_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// Spawns a Task (see the header comment).
template <class T>
JoinHandle<T> ensure_future(Task<T> task, SpawnOptions opts = {}) {
  return spawn(std::move(task), opts);
}
/// Returns the handle itself. Never throws.
template <class T>
JoinHandle<T> ensure_future(JoinHandle<T> handle) noexcept {
  return handle;
}
/// Wraps the future in a task awaiting it.
template <class T>
JoinHandle<T> ensure_future(Future<T> future, SpawnOptions opts = {}) {
  return spawn(detail::await_future(std::move(future)), opts);
}

}  // namespace weft
