// weft/as_completed.hpp - as_completed(tasks, timeout): tasks in completion
// order (asyncio.as_completed, 3.13's async-iterator form).
//
//   auto gen = weft::as_completed(handles, 1s);
//   while (auto h = co_await gen.next()) use(h->result());
//
// An AsyncGenerator yielding the input JoinHandles themselves (3.13 yields
// the original tasks, §J 75), each once it has finished, in the order they
// finished (§J 73). Duplicates collapse. With a timeout, the handles that
// finished in time are yielded, then next() throws TimeoutError; unfinished
// tasks are not cancelled (§J 74). Task<T>s and Futures are spawned/wrapped
// at the call (ensure_future). Cancelling the consuming task while it waits
// raises CancelledError from next(); the tasks run on.
//
// Threads: call and iterate inside a weft task. Throws std::bad_alloc and
// what ensure_future throws at the call; next() throws TimeoutError,
// CancelledError.
#pragma once

#include <optional>
#include <ranges>
#include <unordered_set>
#include <utility>
#include <vector>
#include <weft/async_generator.hpp>
#include <weft/clock.hpp>
#include <weft/detail/watch.hpp>
#include <weft/gather.hpp>
#include <weft/join_handle.hpp>
#include <weft/loop.hpp>

namespace weft {

namespace detail {
template <class T>
AsyncGenerator<JoinHandle<T>> as_completed_impl(std::vector<JoinHandle<T>> hs,
                                                std::optional<Duration> timeout) {
  WatchRef<> w(new Watch);
  w->reserve(hs.size());
  for (std::size_t i = 0; i < hs.size(); ++i) w->add(hs[i].header(), i);
  TimerHandle timer;
  if (timeout) timer = running_loop().call_later(*timeout, [w] { w->expire(); });
  struct CancelTimer {
    TimerHandle& t;
    ~CancelTimer() { t.cancel(); }
  } guard{timer};
  for (std::size_t k = 0; k < hs.size(); ++k) {
    WatchResult r = co_await watch_until(w.get(), k + 1);
    if (r.cancelled) throw CancelledError(r.cancel_message);
    if (r.timed_out) throw TimeoutError("weft::as_completed: timed out");
    co_yield hs[w->completed(k)];
  }
}
}  // namespace detail

/// See the header comment. `tasks` is a range of JoinHandle<T>, Task<T> or
/// Future<T>.
template <std::ranges::input_range R>
auto as_completed(R&& tasks, std::optional<Duration> timeout = std::nullopt) {
  auto all = detail::to_handles(std::forward<R>(tasks));
  std::unordered_set<const detail::TaskHeader*> seen;
  decltype(all) hs;
  for (auto& h : all)
    if (seen.insert(h.header()).second) hs.push_back(std::move(h));
  return detail::as_completed_impl(std::move(hs), timeout);
}

}  // namespace weft
