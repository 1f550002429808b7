// weft/gather.hpp - gather, gather_settled and Outcome<T> (asyncio.gather).
//
//   auto [a, b] = co_await weft::gather(fetch(1), spawn(fetch(2)));
//   std::vector<int> v = co_await weft::gather(handles);
//   auto outs = co_await weft::gather_settled(handles);   // return_exceptions
//
// Children are Task<T> (spawned at the call, left to right), JoinHandle<T> or
// Future<T> (see ensure_future.hpp). A range of Future<T> (say, the futures
// of jobs submitted to an executor) is waited on directly, without a task per
// future, and wakes the awaiting task once rather than once per completion
// (weft/detail/future_set.hpp); futures given as separate arguments are
// wrapped in tasks. Results come in argument order (§E 40);
// void children give std::monostate. gather raises the first child failure
// as soon as it happens, while the others run on, uncancelled (§E 41); a
// child cancelled on its own makes gather raise CancelledError (§E 43).
// gather_settled waits for every child and returns an Outcome per child
// (value, exception or cancelled, §E 42). The same JoinHandle given twice is
// waited on once and its result repeated (§E 46); gather() with no children
// completes at once (§E 47).
//
// Cancelling the task awaiting a gather cancels every unfinished child, and
// the awaiter gets CancelledError with its message, settled or not (§E 44).
// Errors of children that lose the race to be raised are marked retrieved
// (asyncio's gather does the same), so they are not reported as "never
// retrieved".
//
// Threads: call and await on a worker thread, inside a task. Throws what
// ensure_future throws at the call; at the await, a child's exception,
// CancelledError, or std::bad_alloc.
#pragma once

#include <array>
#include <cstddef>
#include <exception>
#include <ranges>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>
#include <weft/detail/future_set.hpp>
#include <weft/detail/watch.hpp>
#include <weft/ensure_future.hpp>
#include <weft/errors.hpp>
#include <weft/join_handle.hpp>
#include <weft/task.hpp>

namespace weft {

/// How one child of gather_settled ended: a value, an exception, or cancelled.
/// Threads: a plain value; one thread at a time.
template <class T>
class Outcome {
 public:
  using value_type = value_or_unit_t<T>;

  static Outcome from_value(value_type v) { return Outcome(std::in_place_index<0>, std::move(v)); }
  static Outcome from_error(std::exception_ptr e) {
    return Outcome(std::in_place_index<1>, std::move(e));
  }
  static Outcome from_cancel(CancelledError c) {
    return Outcome(std::in_place_index<2>, std::move(c));
  }

  bool has_value() const noexcept { return v_.index() == 0; }
  bool has_error() const noexcept { return v_.index() == 1; }
  bool cancelled() const noexcept { return v_.index() == 2; }
  /// The value; rethrows the error, or throws the CancelledError.
  value_type& value() & {
    check();
    return std::get<0>(v_);
  }
  value_type value() && {
    check();
    return std::move(std::get<0>(v_));
  }
  /// The exception (null unless has_error()).
  std::exception_ptr error() const noexcept { return has_error() ? std::get<1>(v_) : nullptr; }
  /// The cancel message (empty unless cancelled() with a message).
  std::string cancel_message() const { return cancelled() ? std::get<2>(v_).message() : ""; }

 private:
  template <std::size_t I, class V>
  Outcome(std::in_place_index_t<I> i, V&& v) : v_(i, std::forward<V>(v)) {}
  void check() const {
    if (has_error()) std::rethrow_exception(std::get<1>(v_));
    if (cancelled()) throw std::get<2>(v_);
  }
  std::variant<value_type, std::exception_ptr, CancelledError> v_;
};

namespace detail {

template <class A>
concept WeftAwaitable = requires {
  typename AwaitableTraits<std::remove_cvref_t<A>>::value_type;
};

/// The value of a finished child (copied if possible: the handle may be the
/// caller's; moved out for move-only T).
template <class T>
value_or_unit_t<T> take_value(JoinHandle<T>& h) {
  if constexpr (std::is_void_v<T>) {
    h.result();
    return {};
  } else if constexpr (std::is_copy_constructible_v<T>) {
    return h.result();
  } else {
    return std::move(h).result();
  }
}

/// The value of a done future (std::monostate for void); throws its error or
/// CancelledError.
template <class T>
value_or_unit_t<T> take_value(const Future<T>& f) {
  if constexpr (std::is_void_v<T>) {
    f.result();
    return {};
  } else {
    return f.result();
  }
}

/// A finished child's outcome (a JoinHandle or a done Future).
template <class H, class T = awaitable_value_t<H>>
Outcome<T> take_outcome(H& h) {
  try {
    return Outcome<T>::from_value(take_value(h));
  } catch (const CancelledError& c) {
    return Outcome<T>::from_cancel(c);
  } catch (...) {
    return Outcome<T>::from_error(std::current_exception());
  }
}

/// Raises how the child `t` ended (its exception or CancelledError).
inline void rethrow_outcome(TaskHeader* t) {
  if (std::exception_ptr e = TaskRef(t).exception()) std::rethrow_exception(e);
}

/// Watches `hdrs` (duplicates once) for a gather; returns the watch.
inline WatchRef<> gather_watch(const TaskHeader* const* hdrs, std::size_t n) {
  WatchRef<> w(new Watch);
  w->retrieve_errors();
  std::unordered_map<const TaskHeader*, std::size_t> seen;
  for (std::size_t i = 0; i < n; ++i) {
    if (seen.emplace(hdrs[i], i).second) w->add(const_cast<TaskHeader*>(hdrs[i]), i);
  }
  return w;
}

/// Waits as gather does; throws the first failure / CancelledError.
inline Task<void> gather_wait(WatchRef<> w, bool settled) {
  WatchResult r = co_await watch_until(w.get(), WatchWait::kAll, /*on_failure=*/!settled,
                                       /*on_error=*/false, /*cancel_children=*/true);
  if (r.cancelled) throw CancelledError(r.cancel_message);
}

template <class... T>
Task<std::tuple<value_or_unit_t<T>...>> gather_tuple(JoinHandle<T>... hs) {
  std::array<const TaskHeader*, sizeof...(T)> hdrs{hs.header()...};
  WatchRef<> w = gather_watch(hdrs.data(), hdrs.size());
  co_await gather_wait(w, false);
  if (std::size_t f = w->first_failure(); f != Watch::npos)
    rethrow_outcome(const_cast<TaskHeader*>(hdrs[f]));
  co_return std::tuple<value_or_unit_t<T>...>{take_value(hs)...};
}

template <class... T>
Task<std::tuple<Outcome<T>...>> gather_settled_tuple(JoinHandle<T>... hs) {
  std::array<const TaskHeader*, sizeof...(T)> hdrs{hs.header()...};
  WatchRef<> w = gather_watch(hdrs.data(), hdrs.size());
  co_await gather_wait(w, true);
  co_return std::tuple<Outcome<T>...>{take_outcome(hs)...};
}

template <class T>
Task<std::vector<value_or_unit_t<T>>> gather_vector(std::vector<JoinHandle<T>> hs) {
  std::vector<const TaskHeader*> hdrs;
  hdrs.reserve(hs.size());
  for (auto& h : hs) hdrs.push_back(h.header());
  WatchRef<> w = gather_watch(hdrs.data(), hdrs.size());
  co_await gather_wait(w, false);
  if (std::size_t f = w->first_failure(); f != Watch::npos)
    rethrow_outcome(const_cast<TaskHeader*>(hdrs[f]));
  std::vector<value_or_unit_t<T>> out;
  out.reserve(hs.size());
  for (auto& h : hs) out.push_back(take_value(h));
  co_return out;
}

template <class T>
Task<std::vector<Outcome<T>>> gather_settled_vector(std::vector<JoinHandle<T>> hs) {
  std::vector<const TaskHeader*> hdrs;
  hdrs.reserve(hs.size());
  for (auto& h : hs) hdrs.push_back(h.header());
  WatchRef<> w = gather_watch(hdrs.data(), hdrs.size());
  co_await gather_wait(w, true);
  std::vector<Outcome<T>> out;
  out.reserve(hs.size());
  for (auto& h : hs) out.push_back(take_outcome(h));
  co_return out;
}

template <class E>
inline constexpr bool is_future_v = false;
template <class T>
inline constexpr bool is_future_v<Future<T>> = true;

/// The range's futures, copied (they must all be valid).
template <class T, class R>
std::vector<Future<T>> to_futures(R&& range) {
  std::vector<Future<T>> fs;
  for (auto&& f : range) {
    if (!f.valid()) throw std::invalid_argument("weft::gather: an empty Future in the range");
    fs.push_back(f);
  }
  return fs;
}

/// Waits on every future of `fs` (not empty) with one FutureSet
/// (future_set.hpp): no task per future, one wake. `settled`: wait for all
/// (gather_settled); else also end at the first failure, whose index it
/// returns (FutureSet::npos if none). Throws CancelledError if the waiter was
/// cancelled, even when settled (§E 44); std::bad_alloc.
template <class T>
Task<std::size_t> wait_futures(const std::vector<Future<T>>& fs, bool settled) {
  std::vector<FutureCore*> cores;
  cores.reserve(fs.size());
  for (const auto& f : fs) cores.push_back(FutureAccess::state(f));
  FutureSetRef set(FutureSet::make(cores.data(), cores.size(), settled));
  co_await set.wait();
  if (set->cancelled()) throw CancelledError(set->cancel_message());
  co_return set->first_failure();
}

template <class T>
Task<std::vector<value_or_unit_t<T>>> gather_futures(std::vector<Future<T>> fs) {
  std::vector<value_or_unit_t<T>> out;
  if (fs.empty()) co_return out;  // §E 47
  // The first failure, raised as soon as it happened (§E 41, 43).
  if (std::size_t f = co_await wait_futures(fs, false); f != FutureSet::npos)
    (void)take_value(fs[f]);  // throws
  out.reserve(fs.size());
  for (auto& f : fs) out.push_back(take_value(f));
  co_return out;
}

template <class T>
Task<std::vector<Outcome<T>>> gather_settled_futures(std::vector<Future<T>> fs) {
  std::vector<Outcome<T>> out;
  if (fs.empty()) co_return out;
  co_await wait_futures(fs, true);
  out.reserve(fs.size());
  for (auto& f : fs) out.push_back(take_outcome(f));
  co_return out;
}

/// Turns a range of Tasks / handles / futures into handles (Tasks moved).
template <class R>
auto to_handles(R&& range) {
  using E = std::ranges::range_value_t<std::remove_cvref_t<R>>;
  std::vector<JoinHandle<awaitable_value_t<E>>> hs;
  for (auto&& x : range) {
    if constexpr (std::is_same_v<E, Task<awaitable_value_t<E>>>) {
      hs.push_back(ensure_future(std::move(x)));
    } else {
      hs.push_back(ensure_future(x));
    }
  }
  return hs;
}

}  // namespace detail

/// gather(a, b, ...) -> std::tuple of the values, in argument order.
template <detail::WeftAwaitable... A>
Task<std::tuple<value_or_unit_t<awaitable_value_t<A>>...>> gather(A&&... aws) {
  // A braced list evaluates left to right: children are spawned in order.
  std::tuple<JoinHandle<awaitable_value_t<A>>...> hs{ensure_future(std::forward<A>(aws))...};
  return std::apply([](auto&... h) { return detail::gather_tuple(h...); }, hs);
}

/// gather(range) -> std::vector of the values, in range order. A range of
/// Futures is waited on directly (detail/future_set.hpp: no task per future,
/// one wake-up); it throws std::invalid_argument at the call for an empty
/// Future.
template <std::ranges::input_range R>
requires(!detail::WeftAwaitable<R>) auto gather(R&& range) {
  using E = std::ranges::range_value_t<std::remove_cvref_t<R>>;
  if constexpr (detail::is_future_v<E>) {
    return detail::gather_futures(detail::to_futures<awaitable_value_t<E>>(std::forward<R>(range)));
  } else {
    return detail::gather_vector(detail::to_handles(std::forward<R>(range)));
  }
}

/// gather_settled(a, b, ...) -> std::tuple<Outcome<T>...> once all finished.
template <detail::WeftAwaitable... A>
Task<std::tuple<Outcome<awaitable_value_t<A>>...>> gather_settled(A&&... aws) {
  std::tuple<JoinHandle<awaitable_value_t<A>>...> hs{ensure_future(std::forward<A>(aws))...};
  return std::apply([](auto&... h) { return detail::gather_settled_tuple(h...); }, hs);
}

/// gather_settled(range) -> std::vector<Outcome<T>> once all finished (a
/// range of Futures as gather(range)).
template <std::ranges::input_range R>
requires(!detail::WeftAwaitable<R>) auto gather_settled(R&& range) {
  using E = std::ranges::range_value_t<std::remove_cvref_t<R>>;
  if constexpr (detail::is_future_v<E>) {
    return detail::gather_settled_futures(
        detail::to_futures<awaitable_value_t<E>>(std::forward<R>(range)));
  } else {
    return detail::gather_settled_vector(detail::to_handles(std::forward<R>(range)));
  }
}

}  // namespace weft
