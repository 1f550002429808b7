// weft/io/op.hpp - the awaiter behind every single-SQE operation of weft::io.
//
// Op<Prep> is what `sock.recv(buf)`, `file.read_at(buf, off)`, ... return:
// an awaiter that holds the operation's state (weft::detail::IoOpState), so
// awaiting it costs no allocation; the state lives in the awaiting frame and
// the reactor's rule holds (no resume, no destruction before the CQE). It
// must be awaited at once (`co_await sock.recv(buf)`): it refers to the
// buffer and to the socket's descriptor.
//
// A Prep is a small struct with
//   static constexpr const char* kName;        the operation's name in errors
//   void prep(io_uring_sqe*) noexcept;          fills the SQE
//   R result(int res);                          turns a CQE result >= 0 into R
// and lives inside the awaiter, so a Prep may keep data the kernel reads at
// submission (a msghdr, a sockaddr, a statx buffer the kernel fills).
//
// Outcomes (see weft/io/errors.hpp): CancelledError if the task was cancelled
// before the kernel completed the op (a result that completed anyway is
// returned, and the cancel is raised at the next suspension point);
// weft::TimeoutError if the op's timeout ended it; io::throw_error's mapping
// for a negative result.
//
// Threads: await inside a weft task only (RuntimeError otherwise); the op
// runs on the ring of the worker the task runs on when it is awaited.
#pragma once

#include <liburing.h>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <weft/io/buffer.hpp>
#include <weft/io/detail/uring_compat.hpp>
#include <weft/io/errors.hpp>
#include <weft/io_op.hpp>

namespace weft::io::detail {

/// Validates `t` (ValueError if negative) and gives `st` its linked timeout.
void arm_timeout(weft::detail::IoOpState& st, const OpTimeout& t, const char* op);

/// When an op's SQE reaches the kernel: with the worker's other SQEs at
/// the end of its tick (sockets, pipes), or, for File's reads, writes and
/// syncs, when the issuing task's step ends if earlier ones are still out
/// (RuntimeOptions::eager_file_submit).
enum class Submit { with_tick, with_step };

/// `State` is IoOpState, or NotifOpState for the two-CQE operations (see
/// NotifOp).
template <class Prep, class State = weft::detail::IoOpState>
class [[nodiscard]] Op {
 public:
  using result_type = decltype(std::declval<Prep&>().result(0));

  explicit Op(Prep prep, OpTimeout timeout = std::nullopt, Submit submit = Submit::with_tick)
      : prep_(prep) {
    if (timeout) arm_timeout(st_, timeout, Prep::kName);
    st_.file_op = submit == Submit::with_step;
  }
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = weft::detail::io_begin(&st_);
    if (sqe == nullptr) return false;  // a pending cancel: raised by await_resume
    prep_.prep(sqe);
    if constexpr (std::is_same_v<State, weft::detail::NotifOpState>)
      weft::detail::io_expect_notification(&st_);
    weft::detail::io_commit(&st_, sqe, h);
    return true;
  }
  result_type await_resume() {
    if (st_.cancel_taken || st_.cancelled) [[unlikely]]
      weft::detail::throw_cancelled(weft::detail::current_header());
    if (st_.res < 0) [[unlikely]] {
      if (st_.timed_out) throw_timeout(Prep::kName);
      throw_error(-st_.res, Prep::kName);
    }
    return prep_.result(st_.res);
  }

 protected:
  Prep prep_;
  State st_;
};

/// Op for the two-CQE operations (IORING_OP_SEND_ZC): same contract as Op,
/// but the awaiting task resumes only after the notification CQE too, i.e.
/// once the kernel no longer reads the buffer (weft::detail::NotifOpState).
/// After the co_await, notification_result() is the notification's res
/// (with IORING_SEND_ZC_REPORT_USAGE: IORING_NOTIF_USAGE_ZC_COPIED set if
/// the kernel copied the bytes after all, as on loopback).
template <class Prep>
class [[nodiscard]] NotifOp : public Op<Prep, weft::detail::NotifOpState> {
 public:
  using Op<Prep, weft::detail::NotifOpState>::Op;

  /// The notification CQE's res (0 if none came: the request failed before
  /// the kernel took the buffer).
  int notification_result() const noexcept {
    return this->st_.have_notif ? this->st_.notif_res : 0;
  }
  /// After the co_await: whether a notification came (false only when the
  /// request failed before the kernel took the buffer). For tests.
  bool notification_seen() const noexcept { return this->st_.have_notif; }
  /// After the co_await: the kernel copied the bytes after all
  /// (IORING_NOTIF_USAGE_ZC_COPIED; loopback always does).
  bool copied() const noexcept {
    return this->st_.have_notif &&
           (static_cast<unsigned>(this->st_.notif_res) & IORING_NOTIF_USAGE_ZC_COPIED);
  }
};

/// Remaining time until `deadline` for composed operations (send_all, ...):
/// nullopt if there is no deadline, else max(0, deadline - now).
struct Deadline {
  bool set = false;
  std::chrono::steady_clock::time_point at{};
  static Deadline after(const OpTimeout& t, const char* op);
  OpTimeout remaining() const noexcept {
    if (!set) return std::nullopt;
    auto left = at - std::chrono::steady_clock::now();
    if (left < std::chrono::nanoseconds::zero()) left = std::chrono::nanoseconds::zero();
    return std::chrono::duration_cast<std::chrono::nanoseconds>(left);
  }
};

}  // namespace weft::io::detail
