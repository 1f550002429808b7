// weft/shield.hpp - shield(task): await a task without passing a cancel on
// (asyncio.shield).
//
//   int v = co_await weft::shield(handle);
//
// Awaiting shield(h) yields h's value or rethrows its exception, and
// CancelledError if h itself ends cancelled (§I 70, 72). Cancelling the task
// that awaits the shield (or the shield's own task, when spawned) raises
// CancelledError in the awaiter at once, while h runs on to completion
// (§I 71). Shielding a task that is already done does not suspend.
//
// Threads: call and await inside a weft task. Throws what ensure_future
// throws at the call; at the await, h's exception, CancelledError,
// std::bad_alloc.
#pragma once

#include <type_traits>
#include <utility>
#include <weft/detail/watch.hpp>
#include <weft/ensure_future.hpp>
#include <weft/join_handle.hpp>
#include <weft/task.hpp>

namespace weft {

namespace detail {
template <class T>
T result_of(JoinHandle<T>& h) {
  if constexpr (std::is_void_v<T>) {
    h.result();
  } else if constexpr (std::is_copy_constructible_v<T> || std::is_reference_v<T>) {
    return h.result();
  } else {
    return std::move(h).result();
  }
}
}  // namespace detail

/// See the header comment.
template <class T>
Task<T> shield(JoinHandle<T> h) {
  if (!h.done()) {
    detail::WatchRef<> w(new detail::Watch);
    w->add(h.header(), 0);
    detail::WatchResult r = co_await detail::watch_until(w.get(), 1);
    if (r.cancelled) throw CancelledError(r.cancel_message);
  }
  co_return detail::result_of(h);
}

/// Shields a Task (spawned now) or a Future (wrapped, see ensure_future).
template <class A>
requires(!std::is_base_of_v<TaskRef, std::remove_cvref_t<A>>) auto shield(A&& aw) {
  return shield(ensure_future(std::forward<A>(aw)));
}

}  // namespace weft
