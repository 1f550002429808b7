// weft/wait.hpp - wait(handles, ReturnWhen, timeout) -> {done, pending}
// (asyncio.wait).
//
//   auto [done, pending] = co_await weft::wait(handles, weft::ReturnWhen::FirstCompleted, 50ms);
//
// Waits until every task finished (AllCompleted, the default), one finished
// (FirstCompleted: several finishing together may all be in done), or one
// ended with an exception (FirstException: at once if one already did; a
// cancelled task does not count; with none failing it acts as AllCompleted),
// or the timeout elapsed, whichever comes first (§F 49-52). It never cancels
// the tasks and never raises their errors; a timeout is not an error (§F 50,
// 53). done/pending keep the input order; duplicates collapse (§F 54).
//
// Threads: call and await inside a weft task. Throws at the call ValueError
// for an empty input or a bad ReturnWhen (§F 54); at the await CancelledError
// if the waiting task is cancelled (the tasks run on), std::bad_alloc.
// Passing Task<T>s (not yet spawned) does not compile (asyncio: TypeError).
#pragma once

#include <optional>
#include <ranges>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>
#include <weft/clock.hpp>
#include <weft/detail/watch.hpp>
#include <weft/errors.hpp>
#include <weft/join_handle.hpp>
#include <weft/loop.hpp>
#include <weft/task.hpp>

namespace weft {

enum class ReturnWhen { AllCompleted, FirstCompleted, FirstException };

/// What wait() returns: the handles that finished and those that did not.
template <class H>
struct WaitResult {
  std::vector<H> done;
  std::vector<H> pending;
};

namespace detail {

template <class H>
Task<WaitResult<H>> wait_impl(std::vector<H> hs, ReturnWhen when, std::optional<Duration> timeout) {
  WatchRef<> w(new Watch);
  for (std::size_t i = 0; i < hs.size(); ++i) w->add(hs[i].header(), i);
  TimerHandle timer;
  if (timeout) timer = running_loop().call_later(*timeout, [w] { w->expire(); });
  const std::size_t min = when == ReturnWhen::FirstCompleted ? 1 : WatchWait::kAll;
  WatchResult r =
      co_await watch_until(w.get(), min, false, when == ReturnWhen::FirstException, false);
  timer.cancel();
  if (r.cancelled) throw CancelledError(r.cancel_message);
  WaitResult<H> out;
  for (auto& h : hs) (h.done() ? out.done : out.pending).push_back(std::move(h));
  co_return out;
}

}  // namespace detail

/// See the header comment. `handles` is any range of JoinHandle<T> or TaskRef.
template <std::ranges::input_range R>
auto wait(R&& handles, ReturnWhen when = ReturnWhen::AllCompleted,
          std::optional<Duration> timeout = std::nullopt) {
  using H = std::remove_cvref_t<std::ranges::range_value_t<std::remove_cvref_t<R>>>;
  static_assert(std::is_base_of_v<TaskRef, H>,
                "weft::wait takes spawned tasks (JoinHandle<T> or TaskRef), not Task<T>: spawn "
                "them first (asyncio raises TypeError for coroutines)");
  if (when != ReturnWhen::AllCompleted && when != ReturnWhen::FirstCompleted &&
      when != ReturnWhen::FirstException)
    throw ValueError("weft::wait: invalid return_when value");
  std::vector<H> hs;
  std::unordered_set<const detail::TaskHeader*> seen;
  for (auto&& h : handles) {
    if (!h) throw ValueError("weft::wait: empty handle");
    if (seen.insert(h.header()).second) hs.push_back(h);
  }
  if (hs.empty()) throw ValueError("weft::wait: set of awaitables is empty");
  return detail::wait_impl<H>(std::move(hs), when, timeout);
}

}  // namespace weft
